-- codegen-lsp through nvim-lspconfig's classic API (`require('lspconfig').X.setup`), for Neovim
-- 0.10 and configs built on lspconfig. codegen-lsp is not in lspconfig's server list, so it is
-- registered as a custom server first. On 0.11+ prefer ./codegen_lsp.lua (no plugin needed).
local lspconfig = require('lspconfig')
local configs = require('lspconfig.configs')

if not configs.codegen_lsp then
  configs.codegen_lsp = {
    default_config = {
      cmd = { 'codegen-lsp', 'serve' },
      filetypes = { 'python' },
      root_dir = lspconfig.util.root_pattern('pyproject.toml', 'setup.py', 'setup.cfg', '.git'),
      single_file_support = true,
      init_options = {},
      settings = {},
    },
    docs = { description = 'codegen-lsp: local Python function-body generation (ONNX Runtime).' },
  }
end

local settings = {
  -- modelPath = '/path/to/model-package',
  device = 'auto',
  candidates = 3,
}

lspconfig.codegen_lsp.setup({
  init_options = settings,
  settings = { codegenLsp = settings },
  handlers = {
    -- model, device and last latency; show it in your statusline if you like
    ['codegenLsp/status'] = function(_, result)
      vim.g.codegen_lsp_status = result
    end,
  },
  on_attach = function(client, bufnr)
    if vim.lsp.completion and vim.lsp.completion.enable then -- 0.11+: applies the body on accept
      vim.lsp.completion.enable(true, client.id, bufnr)
    end
    vim.keymap.set('n', '<leader>cg', function()
      vim.lsp.buf.code_action({
        apply = true,
        filter = function(a)
          return a.title:match('^Generate body') ~= nil
        end,
      })
    end, { buffer = bufnr, desc = 'codegen-lsp: generate body' })
  end,
})
