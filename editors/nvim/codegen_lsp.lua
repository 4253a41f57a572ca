-- codegen-lsp for Neovim 0.11+ (built-in vim.lsp.config / vim.lsp.enable; no plugins needed).
--
-- Use it from your init.lua, either by copying this file to ~/.config/nvim/lua/codegen_lsp.lua:
--
--   require('codegen_lsp').setup({ settings = { device = 'cpu', candidates = 3 } })
--
-- or straight from a checkout:
--
--   dofile('/path/to/codegen-lsp/editors/nvim/codegen_lsp.lua').setup({})
--
-- What you get in Python buffers:
--   * completion: an item "⚡ generate body" (<C-x><C-o>, or automatically with autotrigger = true).
--     Accepting it inserts the whole body; vim.lsp.completion must be enabled for the buffer
--     (done here), because plain 'omnifunc' does not apply the item's additionalTextEdits.
--   * code actions "Generate body of …" / "Generate bodies for all stubs in file" (gra, or
--     vim.lsp.buf.code_action()).
--   * :CodegenGenerateBody (body of the function at the cursor), :CodegenGenerateAll (every stub).
--   * require('codegen_lsp').statusline(): model, device, last latency or what is running.
--   * :CodegenStatus (model, device, latency, running jobs), :CodegenCancel (cancel them).
--   * ghost text (inline suggestions): on Neovim 0.12+ the built-in vim.lsp.inline_completion;
--     otherwise (0.11) this file's own, with partial accept. Insert-mode keys (keymaps = true):
--       <M-\\> suggest now   <M-l> accept   <M-w> accept word   <M-j> accept line
--       <M-]> / <M-[> next / previous candidate   <C-]> dismiss
--     Accepting a word or line keeps the rest: the server continues the same suggestion.
--   * acceptance statistics for `codegen-lsp stats` (local only): shown / partly / wholly accepted.

local M = {}

--- Defaults mirror the server's (codegen_lsp/config.py); only what you pass is sent.
--- @class codegen_lsp.Settings
--- @field modelPath? string    model package directory (default: the embedded default model)
--- @field device? 'auto'|'cpu'|'cuda'
--- @field candidates? integer  bodies sampled per function (1..8)
--- @field maxTokens? integer   most tokens per body (8..1024)
--- @field temperature? number  0..2
--- @field topP? number
--- @field timeBudgetMs? integer
--- @field enableCompletion? boolean
--- @field enableInline? boolean
--- @field enableCodeActions? boolean
--- @field logLevel? 'debug'|'info'|'warning'|'error'
--- @field workspaceContext? 'off'|'definitions'|'retrieval'|'all'  workspace code in prompts (indexes the root)
--- @field contextShare? number   share of the prompt budget for workspace context (0..0.8)
--- @field contextItems? integer  most retrieved definitions (1..16)
--- @field debounceMs? integer    longest pause an automatic suggestion waits for (0..2000, adaptive)

--- @class codegen_lsp.Opts
--- @field cmd? string[]                 how to start the server (default: discovered, see find_cmd)
--- @field settings? codegen_lsp.Settings
--- @field autotrigger? boolean          complete on the server's trigger characters (default false)
--- @field keymaps? boolean              <leader>cg / <leader>cG, and the ghost-text keys (default true)
--- @field inline? 'auto'|'native'|'codegen'|false  ghost text: native (0.12+), this file's, or none
---                                      ('auto', the default: native where Neovim has it)
--- @field inline_auto? boolean          suggest while typing, not only on <M-\\> (default true)
--- @field filetypes? string[]

M.status = nil --- @type {state: string, model: string?, device: string?, lastLatencyMs: number?, message: string?}?

--- The server command: the project's .venv (codegen-lsp script, else python -m codegen_lsp), else
--- `codegen-lsp` on PATH.
--- @param start? string directory to search upwards from (default: cwd)
--- @return string[]
function M.find_cmd(start)
  local root = vim.fs.root(start or vim.fn.getcwd(), '.venv')
  if root then
    local bin = vim.fs.joinpath(root, '.venv', 'bin')
    if vim.fn.executable(vim.fs.joinpath(bin, 'codegen-lsp')) == 1 then
      return { vim.fs.joinpath(bin, 'codegen-lsp'), 'serve' }
    end
    if vim.fn.executable(vim.fs.joinpath(bin, 'python')) == 1 then
      return { vim.fs.joinpath(bin, 'python'), '-m', 'codegen_lsp', 'serve' }
    end
  end
  return { 'codegen-lsp', 'serve' }
end

--- For your statusline: `set statusline+=%{v:lua.require'codegen_lsp'.statusline()}`.
function M.statusline()
  local s = M.status
  if not s then
    return ''
  end
  if s.state == 'loading' then
    return 'codegen: loading'
  elseif s.state == 'busy' then
    return 'codegen: ' .. tostring(s.message or 'working')
  elseif s.state == 'error' then
    return 'codegen: error'
  end
  local parts = { s.model and vim.fs.basename(s.model) or 'codegen', s.device }
  if type(s.lastLatencyMs) == 'number' then
    table.insert(parts, string.format('%d ms', s.lastLatencyMs))
  end
  return table.concat(vim.tbl_filter(function(p)
    return p ~= nil and p ~= vim.NIL
  end, parts), ' · ')
end

local function on_status(_, result)
  M.status = result
  if result and result.state == 'error' and result.message then
    vim.notify('codegen-lsp: ' .. result.message, vim.log.levels.ERROR)
  end
  vim.api.nvim_exec_autocmds('User', { pattern = 'CodegenLspStatus', modeline = false })
  vim.cmd.redrawstatus({ bang = true })
end

local function exec(bufnr, command, arguments)
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'codegen_lsp' })[1]
  if not client then
    vim.notify('codegen-lsp is not attached to this buffer', vim.log.levels.WARN)
    return
  end
  client:exec_cmd({ title = command, command = command, arguments = arguments }, { bufnr = bufnr })
end

--- Generate the body of the function at the cursor (the server applies the edit).
function M.generate_body(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'codegen_lsp' })[1]
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
  local character = vim.str_utfindex(line, client and client.offset_encoding or 'utf-16', col, false)
  exec(bufnr, 'codegen-lsp.generateBody', { vim.uri_from_bufnr(bufnr), row - 1, character })
end

--- Generate bodies for every stub in the buffer.
function M.generate_all(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  exec(bufnr, 'codegen-lsp.generateAllInFile', { vim.uri_from_bufnr(bufnr) })
end

-- Work-done progress of this server (generate all, code actions), for :CodegenStatus/:CodegenCancel.
M.jobs = {} --- @type table<string|integer, {title: string?, message: string?, percentage: integer?, cancellable: boolean?}>

local function on_progress(err, result, ctx)
  local v = result and result.value
  if type(v) == 'table' and result.token ~= nil then
    if v.kind == 'end' then
      M.jobs[result.token] = nil
    else
      local job = M.jobs[result.token] or {}
      job.title = v.title or job.title
      job.message = v.message or job.message
      job.percentage = v.percentage or job.percentage
      if v.cancellable ~= nil then
        job.cancellable = v.cancellable
      end
      M.jobs[result.token] = job
    end
  end
  return vim.lsp.handlers['$/progress'](err, result, ctx) -- keeps vim.lsp.status() working
end

--- Cancel every cancellable job the server is running (window/workDoneProgress/cancel).
function M.cancel()
  local client = vim.lsp.get_clients({ name = 'codegen_lsp' })[1]
  local n = 0
  for token, job in pairs(M.jobs) do
    if client and job.cancellable then
      client:notify('window/workDoneProgress/cancel', { token = token })
      n = n + 1
    end
  end
  vim.notify(n > 0 and ('codegen-lsp: cancelling ' .. n .. ' job(s)') or 'codegen-lsp: nothing to cancel')
end

--- One text for :CodegenStatus.
function M.status_text()
  local s = M.status or {}
  local out = {
    'codegen-lsp: ' .. tostring(s.state or 'not started'),
    'model: ' .. tostring(s.model or '-') .. '   device: ' .. tostring(s.device or '-'),
    'last generation: ' .. (type(s.lastLatencyMs) == 'number' and string.format('%d ms', s.lastLatencyMs) or '-'),
  }
  if s.message and s.message ~= vim.NIL then
    table.insert(out, tostring(s.message))
  end
  for _, job in pairs(M.jobs) do
    table.insert(out, string.format('running: %s%s%s', job.message or job.title or '?',
      job.percentage and string.format(' (%d%%)', job.percentage) or '',
      job.cancellable and ' — :CodegenCancel' or ''))
  end
  return table.concat(out, '\n')
end

-- The ghost text lives next to this file (codegen_lsp_inline.lua): required when both were copied to
-- lua/, else loaded from this file's directory.
local function load_inline()
  local ok, mod = pcall(require, 'codegen_lsp_inline')
  if ok then
    return mod
  end
  local here = debug.getinfo(1, 'S').source:gsub('^@', '')
  return dofile(vim.fs.joinpath(vim.fs.dirname(here), 'codegen_lsp_inline.lua'))
end
local inline = load_inline()

--- Ghost text (0.11 path): ask now, accept ('all' | 'word' | 'line'), cycle, dismiss, current text.
M.suggest = inline.suggest
M.accept = inline.accept
M.cycle = inline.cycle
M.dismiss = inline.dismiss
M.ghost_text = inline.ghost_text

--- @param opts? codegen_lsp.Opts
function M.setup(opts)
  opts = opts or {}
  local settings = opts.settings or {}
  vim.lsp.config('codegen_lsp', {
    cmd = opts.cmd or M.find_cmd(),
    filetypes = opts.filetypes or { 'python' },
    root_markers = { 'pyproject.toml', 'setup.py', 'setup.cfg', '.git' },
    -- The server reads initializationOptions at start and workspace/didChangeConfiguration later.
    init_options = settings,
    settings = { codegenLsp = settings },
    handlers = { ['codegenLsp/status'] = on_status, ['$/progress'] = on_progress },
  })
  vim.lsp.enable('codegen_lsp')

  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('codegen_lsp', { clear = true }),
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if not client or client.name ~= 'codegen_lsp' then
        return
      end
      -- Applies the completion item's edits on accept (the body arrives as additionalTextEdits).
      vim.lsp.completion.enable(true, client.id, ev.buf, { autotrigger = opts.autotrigger or false })
      vim.api.nvim_buf_create_user_command(ev.buf, 'CodegenGenerateBody', function()
        M.generate_body(ev.buf)
      end, { desc = 'codegen-lsp: generate the body of the function at the cursor' })
      vim.api.nvim_buf_create_user_command(ev.buf, 'CodegenGenerateAll', function()
        M.generate_all(ev.buf)
      end, { desc = 'codegen-lsp: generate bodies for all stubs in the file' })
      vim.api.nvim_buf_create_user_command(ev.buf, 'CodegenStatus', function()
        vim.notify(M.status_text())
      end, { desc = 'codegen-lsp: model, device, latency and running jobs' })
      vim.api.nvim_buf_create_user_command(ev.buf, 'CodegenCancel', function()
        M.cancel()
      end, { desc = 'codegen-lsp: cancel the running generate jobs' })
      local mode = inline.mode(opts)
      if mode == 'native' and not pcall(vim.lsp.inline_completion.enable, true, { bufnr = ev.buf }) then
        mode = 'codegen' -- an API that changed shape: fall back to this plugin's ghost text
      end
      if mode == 'codegen' then
        inline.attach(ev.buf, opts)
      end
      if opts.keymaps ~= false then
        vim.keymap.set('n', '<leader>cg', M.generate_body, { buffer = ev.buf, desc = 'Generate body' })
        vim.keymap.set('n', '<leader>cG', M.generate_all, { buffer = ev.buf, desc = 'Generate all bodies' })
      end
    end,
  })
end

return M
