"""codegen-lsp: a local language server that writes Python function bodies."""

__version__ = "0.1.0"
