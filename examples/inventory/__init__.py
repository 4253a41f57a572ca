"""A small example project with stubbed functions for `make run` / `codegen-lsp generate`."""
