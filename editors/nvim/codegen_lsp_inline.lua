-- Ghost text for codegen-lsp in Neovim without vim.lsp.inline_completion (0.11), with partial
-- accept (word, line) and candidate cycling; loaded by codegen_lsp.lua (keep the two files together).
--
-- One suggestion per buffer, shown with an extmark after the cursor. The item's text from its range
-- start to the cursor is already in the buffer (the prefix); the rest is the ghost. Accepting a word
-- or a line inserts it and asks again: the server continues the same suggestion without generating.
-- Shown / partly accepted / accepted are reported for the local acceptance stats (`codegen-lsp stats`).

local M = {}

local ns = vim.api.nvim_create_namespace('codegen_lsp_inline')
local ghosts = {} --- @type table<integer, table>
local requests = {} --- @type table<integer, integer>  in-flight inlineCompletion request per buffer
local shown_ids = {}

local function client_of(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'codegen_lsp' })[1]
end

local function item_text(item)
  return type(item.insertText) == 'table' and item.insertText.value or item.insertText or ''
end

local function item_id(item)
  return item.command and item.command.arguments and item.command.arguments[1] or nil
end

--- The current item's text, what of it is in the buffer already, and the rest (nil if it no longer fits).
local function split_item(bufnr, g)
  local item = g.items[g.index]
  local text, prefix = item_text(item), ''
  if item.range then
    local srow = item.range.start.line
    local line = vim.api.nvim_buf_get_lines(bufnr, srow, srow + 1, false)[1] or ''
    local ok, scol = pcall(vim.str_byteindex, line, g.encoding, item.range.start.character, false)
    scol = ok and scol or #line
    prefix = table.concat(vim.api.nvim_buf_get_text(bufnr, srow, scol, g.row, g.col, {}), '\n')
  end
  if text:sub(1, #prefix) ~= prefix then
    return nil
  end
  return item, prefix, text:sub(#prefix + 1)
end

--- Clear the ghost text of `bufnr`.
function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  ghosts[bufnr] = nil
end

local function render(bufnr, g)
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local item, _, rest = split_item(bufnr, g)
  if not item or rest == '' then
    ghosts[bufnr] = nil
    return
  end
  local lines = vim.split(rest, '\n', { plain = true })
  local mark = { virt_text = { { lines[1], 'Comment' } }, virt_text_pos = 'inline', hl_mode = 'combine' }
  if #lines > 1 then
    mark.virt_lines = vim.tbl_map(function(l)
      return { { l, 'Comment' } }
    end, vim.list_slice(lines, 2))
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, g.row, g.col, mark)
  g.tick = vim.b[bufnr].changedtick
  local id = item_id(item)
  local client = vim.lsp.get_client_by_id(g.client_id)
  if id and client and not shown_ids[id] then
    shown_ids[id] = true
    client:notify('codegenLsp/didShowCompletion', { item = item })
  end
end

--- What the ghost text of `bufnr` shows now ('' if none); for statuslines and tests.
function M.ghost_text(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local g = ghosts[bufnr]
  if not g or not g.items then
    return ''
  end
  local _, _, rest = split_item(bufnr, g)
  return rest or ''
end

--- Ask the server for a suggestion at the cursor (or `pos`, {row, col} 0-based bytes); `automatic`:
--- typing-triggered (the server waits for a pause and stays quiet inside words in strings), else it
--- answers at once.
function M.suggest(bufnr, automatic, pos)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = client_of(bufnr)
  if not client then
    return
  end
  if requests[bufnr] then
    client:cancel_request(requests[bufnr])
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = pos and pos[1] or cursor[1] - 1, pos and pos[2] or cursor[2]
  local text = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local ok, character = pcall(vim.str_utfindex, text, client.offset_encoding, col, false)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = ok and character or col },
    context = { triggerKind = automatic and 2 or 1 },
  }
  local tick = vim.b[bufnr].changedtick
  local request_id --- @type integer?
  local _
  _, request_id = client:request('textDocument/inlineCompletion', params, function(err, result)
    if requests[bufnr] == request_id then
      requests[bufnr] = nil
    end
    if err or not result or not vim.api.nvim_buf_is_valid(bufnr) or vim.b[bufnr].changedtick ~= tick then
      return
    end
    local items = result.items or result
    if #items == 0 then
      return M.dismiss(bufnr)
    end
    local g = { client_id = client.id, encoding = client.offset_encoding, items = items, index = 1,
      row = row, col = col }
    ghosts[bufnr] = g
    render(bufnr, g)
  end, bufnr)
  requests[bufnr] = request_id
end

--- Show the next (`step` = 1) or previous (-1) candidate.
function M.cycle(step, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local g = ghosts[bufnr]
  if g and g.items then
    g.index = (g.index - 1 + step) % #g.items + 1
    render(bufnr, g)
  end
end

--- Where the item's range ends when that is after the cursor (a stub it replaces), else nil.
local function range_end_after_cursor(bufnr, g, item)
  local e = item.range and item.range['end']
  if not e then
    return nil
  end
  local line = vim.api.nvim_buf_get_lines(bufnr, e.line, e.line + 1, false)[1] or ''
  local ok, col = pcall(vim.str_byteindex, line, g.encoding, e.character, false)
  col = ok and col or #line
  if e.line > g.row or (e.line == g.row and col > g.col) then
    return e.line, col
  end
  return nil
end

local function part_of(rest, how)
  if how == 'word' then
    return rest:match('^[\n \t]*[%w_]+') or rest:match('^[\n \t]*[^%w_%s]+') or rest
  elseif how == 'line' then
    local line = rest:match('^[^\n]+') or rest:match('^\n[^\n]*')
    return line or rest
  end
  return rest
end

--- Accept the ghost text: 'all' (default), 'word' or 'line'. A partial accept keeps the rest
--- (asked again, the server continues the same suggestion). Returns false when there is none.
function M.accept(how, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local g = ghosts[bufnr]
  if not g or not g.items then
    return false
  end
  local item, prefix, rest = split_item(bufnr, g)
  if not item or rest == '' then
    return false
  end
  -- An item that also replaces text after the cursor (a stub) is taken whole: half of it would
  -- leave the stub in place.
  local erow, ecol = range_end_after_cursor(bufnr, g, item)
  local part = erow and rest or part_of(rest, how or 'all')
  local lines = vim.split(part, '\n', { plain = true })
  M.dismiss(bufnr)
  vim.api.nvim_buf_set_text(bufnr, g.row, g.col, erow or g.row, ecol or g.col, lines)
  local col = (#lines == 1 and g.col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { g.row + #lines, col })
  local client = vim.lsp.get_client_by_id(g.client_id)
  if not client then
    return true
  end
  if part == rest then
    if item.command then
      client:exec_cmd(item.command, { bufnr = bufnr }) -- the server counts the accept
    else
      client:notify('codegenLsp/didAcceptCompletion', { item = item })
    end
  else
    client:notify('codegenLsp/didPartiallyAcceptCompletion', { item = item, acceptedLength = #prefix + #part })
    M.suggest(bufnr, false, { g.row + #lines - 1, col })
  end
  return true
end

--- Ghost text and its insert-mode keys for `bufnr`.
function M.attach(bufnr, opts)
  local group = vim.api.nvim_create_augroup('codegen_lsp_inline_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd('TextChangedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      local g = ghosts[bufnr]
      if g and g.tick and g.tick ~= vim.b[bufnr].changedtick then
        M.dismiss(bufnr)
      end
      if opts.inline_auto ~= false and not ghosts[bufnr] and vim.fn.pumvisible() == 0 then
        M.suggest(bufnr, true)
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
    end,
  })
  if opts.keymaps ~= false then
    local function map(lhs, fn, desc)
      vim.keymap.set('i', lhs, fn, { buffer = bufnr, desc = 'codegen-lsp: ' .. desc })
    end
    map('<M-\\>', function() M.suggest(bufnr) end, 'suggest now')
    map('<M-l>', function() M.accept('all', bufnr) end, 'accept suggestion')
    map('<M-w>', function() M.accept('word', bufnr) end, 'accept next word')
    map('<M-j>', function() M.accept('line', bufnr) end, 'accept next line')
    map('<M-]>', function() M.cycle(1, bufnr) end, 'next suggestion')
    map('<M-[>', function() M.cycle(-1, bufnr) end, 'previous suggestion')
    map('<C-]>', function() M.dismiss(bufnr) end, 'dismiss suggestion')
  end
end

--- Which ghost text to use: Neovim's own (0.12+) where it has one, unless told otherwise.
function M.mode(opts)
  local want = opts.inline == nil and 'auto' or opts.inline
  if want == false then
    return nil
  end
  local native = vim.lsp.inline_completion ~= nil
  if want == 'native' or (want == 'auto' and native) then
    return native and 'native' or 'codegen'
  end
  return 'codegen'
end

return M
