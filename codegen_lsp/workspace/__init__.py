"""The workspace side of retrieval: what the server knows about code already in the user's files
(a BM25 index over functions, the fallback when no retriever model is installed)."""

from .bm25 import BM25, code_tokens

__all__ = ["BM25", "code_tokens"]
