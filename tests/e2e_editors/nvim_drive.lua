-- Headless Neovim session for test_nvim.py, run as `nvim --headless -u nvim_drive.lua` so the main
-- loop (insert mode, CompleteDone) runs. Uses the documented config editors/nvim/codegen_lsp.lua.
--
-- 1. completion: open FILE, put the cursor on the blank line after a docstring in insert mode,
--    request completion, accept the first "⚡ generate body" item with nvim_select_popupmenu_item.
-- 2. ghost text: open INLINE_FILE, ask for a suggestion, take its first word (partial accept), check
--    the rest is still shown, accept the rest; run :CodegenStatus.
-- 3. code action: open STUB_FILE, apply the "Generate body of …" code action.
-- Writes what happened to RESULT (JSON) and quits; the Python side judges it.
--
-- env: REPO, SERVER_CMD (JSON argv), MODEL_PATH, FILE, FILE_LINE, INLINE_FILE, STUB_FILE, STUB_LINE
--      (1-based), RESULT, TIMEOUT_MS

local env = vim.env
local result = { messages = {}, steps = {} }
local started = vim.uv.hrtime()
local timeout_ms = tonumber(env.TIMEOUT_MS) or 120000

local function ms_since(t)
  return math.floor((vim.uv.hrtime() - t) / 1e6)
end

local function finish(err)
  result.error = err
  result.total_ms = ms_since(started)
  local cg = package.loaded.codegen_lsp_test
  result.status = cg and cg.status or nil
  result.statusline = cg and cg.statusline() or nil
  local f = assert(io.open(env.RESULT, 'w'))
  f:write(vim.json.encode(result))
  f:close()
  vim.cmd('qa!')
end

local function fail(msg)
  vim.schedule(function()
    finish(msg)
  end)
end

--- Call on_ok once cond() is true; fail with `what` after `limit` ms. `tick` runs between polls.
local function poll(what, limit, cond, on_ok, tick)
  local t0 = vim.uv.hrtime()
  local function step()
    local ok, value = pcall(cond)
    if not ok then
      return fail(what .. ': ' .. tostring(value))
    end
    if value then
      return on_ok(value)
    end
    if ms_since(t0) > limit then
      return fail('timed out after ' .. limit .. ' ms waiting for ' .. what)
    end
    if tick then
      tick()
    end
    vim.defer_fn(step, 100)
  end
  step()
end

vim.notify = function(msg, level)
  table.insert(result.messages, { msg = msg, level = level })
end

-- Completion events, for the failure report.
result.events = {}
vim.api.nvim_create_autocmd({ 'CompleteDone', 'CompleteChanged', 'InsertLeave', 'TextChangedI', 'TextChangedP' }, {
  callback = function(ev)
    local word = vim.v.completed_item.word
    table.insert(result.events, { ev = ev.event, ms = ms_since(started), word = word, mode = vim.fn.mode() })
  end,
})

-- The documented setting: with Vim's default ('menu') a single match is inserted without a
-- menu and cannot be picked from one.
vim.o.completeopt = 'menuone,noselect,popup'

local cg = dofile(env.REPO .. '/editors/nvim/codegen_lsp.lua')
package.loaded.codegen_lsp_test = cg
cg.setup({
  cmd = vim.json.decode(env.SERVER_CMD),
  settings = { modelPath = env.MODEL_PATH, device = 'cpu', candidates = 1 },
  inline = 'codegen', -- this file's ghost text (0.11 has no native one); partial accept is its own
  inline_auto = false, -- the steps below ask explicitly, so nothing races them
})

local function client_for(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'codegen_lsp' })[1]
end

local function lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)
end

local function code_action_step()
  vim.cmd.stopinsert()
  vim.cmd.edit(vim.fn.fnameescape(env.STUB_FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  local before = lines(bufnr)
  poll('the client to attach to ' .. env.STUB_FILE, 30000, function()
    return client_for(bufnr)
  end, function()
    local t0 = vim.uv.hrtime()
    vim.api.nvim_win_set_cursor(0, { tonumber(env.STUB_LINE), 8 })
    local titles = {}
    local tick = vim.b[bufnr].changedtick
    vim.lsp.buf.code_action({
      apply = true,
      filter = function(action)
        table.insert(titles, action.title)
        return action.title:match('^Generate body') ~= nil
      end,
    })
    poll('the code action to edit the buffer', timeout_ms, function()
      return vim.b[bufnr].changedtick ~= tick and vim.api.nvim_buf_line_count(bufnr) > #before
    end, function()
      -- Let any second part of the edit land before reading the buffer.
      vim.defer_fn(function()
        result.steps.code_action = { titles = titles, lines = lines(bufnr), ms = ms_since(t0) }
        finish(nil)
      end, 300)
    end)
  end)
end

local function inline_step()
  vim.cmd.stopinsert()
  vim.cmd.edit(vim.fn.fnameescape(env.INLINE_FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  poll('the client to attach to ' .. env.INLINE_FILE, 30000, function()
    return client_for(bufnr)
  end, function()
    local t0 = vim.uv.hrtime()
    local line = tonumber(env.FILE_LINE)
    local text = vim.api.nvim_buf_get_lines(bufnr, line - 1, line, true)[1]
    vim.api.nvim_win_set_cursor(0, { line, #text })
    vim.cmd('startinsert!')
    local step = {}
    result.steps.inline = step
    poll('insert mode', 10000, function()
      if vim.fn.mode() ~= 'i' then
        vim.cmd('startinsert!')
        return false
      end
      return true
    end, function()
      -- In insert mode the cursor may sit after the last character (normal mode clamps it).
      vim.api.nvim_win_set_cursor(0, { line, #text })
      step.cursor = vim.api.nvim_win_get_cursor(0)
      step.mode = vim.fn.mode()
      cg.suggest(bufnr)
      poll('ghost text', timeout_ms, function()
        return cg.ghost_text(bufnr) ~= ''
      end, function()
        step.ghost = cg.ghost_text(bufnr)
        step.extmarks = #vim.api.nvim_buf_get_extmarks(bufnr, -1, 0, -1, {})
        assert(cg.accept('word', bufnr), 'accept word')
        step.after_word = lines(bufnr)
        poll('the rest of the suggestion after the partial accept', timeout_ms, function()
          return cg.ghost_text(bufnr) ~= ''
        end, function()
          step.rest = cg.ghost_text(bufnr)
          assert(cg.accept('all', bufnr), 'accept the rest')
          step.lines = lines(bufnr)
          step.ms = ms_since(t0)
          step.status_text = cg.status_text()
          vim.defer_fn(code_action_step, 300)
        end)
      end)
    end)
  end)
end

local function completion_step(bufnr)
  local t0 = vim.uv.hrtime()
  local line = tonumber(env.FILE_LINE)
  local text = vim.api.nvim_buf_get_lines(bufnr, line - 1, line, true)[1]
  vim.api.nvim_win_set_cursor(0, { line, #text })
  vim.cmd('startinsert!')
  local requests = 0
  local last_request = 0
  poll('completion items', timeout_ms, function()
    if vim.fn.mode() ~= 'i' then
      return false
    end
    local items = vim.fn.complete_info({ 'items' }).items
    for i, item in ipairs(items) do
      if item.abbr:find('generate body', 1, true) then
        return { index = i - 1, items = items }
      end
    end
    return false
  end, function(found)
    result.steps.completion_items = vim.tbl_map(function(it)
      local lsp_item = vim.tbl_get(it, 'user_data', 'nvim', 'lsp', 'completion_item')
      return { word = it.word, abbr = it.abbr, menu = it.menu, lsp = lsp_item }
    end, found.items)
    local tick = vim.b[bufnr].changedtick
    vim.api.nvim_select_popupmenu_item(found.index, true, true, {})
    poll('the accepted item to change the buffer', 10000, function()
      return vim.b[bufnr].changedtick ~= tick and vim.fn.pumvisible() == 0
    end, function()
      vim.defer_fn(function()
        result.steps.completion = {
          lines = lines(bufnr),
          cursor = vim.api.nvim_win_get_cursor(0),
          requests = requests,
          ms = ms_since(t0),
        }
        inline_step()
      end, 300)
    end)
  end, function()
    -- (Re-)request while no item is there: the first answer can be empty while the model warms up.
    local idle = vim.fn.complete_info({ 'items' }).items[1] == nil
    if vim.fn.mode() == 'i' and idle and (requests == 0 or ms_since(last_request) > 3000) then
      requests = requests + 1
      last_request = vim.uv.hrtime()
      vim.lsp.completion.get()
    end
  end)
end

vim.schedule(function()
  vim.cmd.edit(vim.fn.fnameescape(env.FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  poll('the client to attach', 30000, function()
    return client_for(bufnr)
  end, function()
    local t0 = vim.uv.hrtime()
    poll('the server to report ready (codegenLsp/status)', timeout_ms, function()
      local s = cg.status
      if s and s.state == 'error' then
        error('server error: ' .. tostring(s.message))
      end
      return s and s.state == 'ready'
    end, function()
      result.steps.ready_ms = ms_since(t0)
      completion_step(bufnr)
    end)
  end)
end)

vim.defer_fn(function()
  finish('overall timeout')
end, 3 * timeout_ms)
