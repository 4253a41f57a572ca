"""CodeFusion (Singh et al., 2023): a diffusion model that writes a function body from its signature
and docstring. Training side only; the runtime engine is ``codegen_lsp/engine/diffusion.py``."""
