-- Minimal codegen-lsp config for Neovim 0.11+, in the `lsp/` runtimepath format: put this file in
-- ~/.config/nvim/lsp/codegen_lsp.lua and call `vim.lsp.enable('codegen_lsp')` in init.lua.
-- For commands, keymaps and the status line, use ../codegen_lsp.lua instead.
--
-- Accepting the "⚡ generate body" completion inserts the body through the item's
-- additionalTextEdits, which only vim.lsp.completion applies, so enable it on attach:
--
--   vim.api.nvim_create_autocmd('LspAttach', { callback = function(ev)
--     local client = vim.lsp.get_client_by_id(ev.data.client_id)
--     if client and client.name == 'codegen_lsp' then
--       vim.lsp.completion.enable(true, client.id, ev.buf)
--     end
--   end })
--   vim.o.completeopt = 'menuone,noselect,popup'   -- a single item still shows a menu
return {
  cmd = { 'codegen-lsp', 'serve' }, -- or { '/path/to/.venv/bin/python', '-m', 'codegen_lsp', 'serve' }
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', 'setup.py', 'setup.cfg', '.git' },
  init_options = {
    -- modelPath = '/path/to/model-package',  -- default: the embedded default model
    device = 'auto', -- 'auto' | 'cpu' | 'cuda'
    candidates = 3,
    maxTokens = 160,
    temperature = 0.2,
  },
}
