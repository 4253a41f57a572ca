"""The engine for ``retriever`` packages: two encoders, docstring query and code, each mapping text to
one unit vector, so that a dot product ranks code for a query (``docs/retrieval.md``).

Graph contract (names in ``manifest.extra['retriever']``): graphs ``query`` and ``code``, each with
inputs ``input_ids`` [B, T] int64 and ``attention_mask`` [B, T] int64 (1 = token, 0 = padding) and the
output ``embedding`` [B, d] float32, L2-normalised. The encoders ignore padding, so a text's vector
does not depend on what it is batched with. Texts are cut to ``max_query_tokens`` /
``max_code_tokens`` tokens; an empty text has the zero vector.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from tokenizers import Tokenizer

from ..modelpkg import ManifestInvalid, ModelPackage
from .generate import open_graphs
from .providers import ProviderChoice

if TYPE_CHECKING:
    from .kinds import EngineOptions

log = logging.getLogger(__name__)

GRAPHS = ("query", "code")
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "embedding"
BATCH_SIZE = 64
"""Texts per graph run: large enough to amortise the call, small enough to bound padding and memory."""


class RetrieverEngine:
    """A loaded retriever package: ``embed_queries`` and ``embed_code`` return [n, d] float32 unit rows."""

    role = "retriever"

    def __init__(self, package: ModelPackage, choice: ProviderChoice, options: EngineOptions) -> None:
        self.package = package
        self.manifest = m = package.manifest
        self.threads = options.threads or 1
        self.variant = v = package.choose_variant(choice.provider, options.variant)
        spec = m.extra.get("retriever")
        if not isinstance(spec, dict):
            raise ManifestInvalid(package.root, "extra.retriever is missing: not a retriever package")
        try:
            self.dim = int(spec["embedding_dim"])
            self.max_tokens = {"query": int(spec["max_query_tokens"]), "code": int(spec["max_code_tokens"])}
            self.pad_id = int(spec.get("pad_id", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestInvalid(package.root, f"extra.retriever: {exc!r}") from exc
        self.sessions = open_graphs(package, v, GRAPHS, self.threads, choice, {g: (INPUTS, (OUTPUT,)) for g in GRAPHS})
        self.tokenizer = Tokenizer.from_file(str(package.path(m.tokenizer)))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.info: dict[str, Any] = {
            "model": m.name, "kind": m.kind, "architecture": m.architecture,
            "provider": self.sessions["query"].get_providers()[0].removesuffix("ExecutionProvider").lower(),
            "reason": choice.reason, "variant": v.name, "graph": "+".join(GRAPHS), "threads": self.threads,
            "embedding_dim": self.dim, "max_query_tokens": self.max_tokens["query"],
            "max_code_tokens": self.max_tokens["code"],
        }
        log.info("retriever engine ready: %s", self.info)

    # -- text -> ids ---------------------------------------------------------------------------
    def encode(self, texts: list[str], which: str) -> list[list[int]]:
        """Token ids per text as the ``which`` encoder reads them (cut to its maximum length)."""
        limit = self.max_tokens[which]
        return [e.ids[:limit] for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def _embed(self, texts: list[str], which: str, batch_size: int = BATCH_SIZE) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        ids = self.encode(texts, which)
        # Similar lengths together: less padding. Padding never changes a vector, so order is free.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        sess = self.sessions[which]
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(1, max(len(ids[i]) for i in rows))
            input_ids = np.full((len(rows), width), self.pad_id, np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for r, i in enumerate(rows):
                input_ids[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = 1
            (emb,) = sess.run([OUTPUT], {"input_ids": input_ids, "attention_mask": mask})
            out[rows] = emb
        # The graph normalises already; again here so that every row is a unit vector or zero.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 1e-12)
        return out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """[n, d] float32 unit vectors of natural-language queries (docstrings, first paragraph best)."""
        return self._embed(texts, "query")

    def embed_code(self, texts: list[str]) -> np.ndarray:
        """[n, d] float32 unit vectors of code (a function's signature and body, docstring left out)."""
        return self._embed(texts, "code")
