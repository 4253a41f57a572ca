"""Mean reciprocal rank the CodeSearchNet way: the held-out pairs, in a fixed shuffled order, are cut
into chunks of 1000 (an incomplete last chunk is dropped); each query ranks the 1000 codes of its
chunk, its own code among 999 distractors. Ties count against the query (rank = number of codes
scoring at least as high as the right one), so a scorer that gives everything 0 gets 1/1000.

Scorers: an exported ``retriever`` package through the runtime engine, a checkpoint through PyTorch
(model selection during training), and BM25 (``codegen_lsp.workspace.bm25``) as the reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codegen_lsp.workspace.bm25 import BM25, code_tokens
from models.retrieval.data import load_pairs, shuffled

CHUNK = 1000
SEED = 0

Embed = Callable[[list[str]], np.ndarray]


def reciprocal_ranks(scores: np.ndarray) -> np.ndarray:
    """scores [n, n], row i = query i against codes 0..n-1, the right code on the diagonal ->
    1 / rank per query, rank = #codes scoring >= the right one (pessimistic on ties)."""
    right = np.diag(scores)[:, None]
    ranks = (scores >= right).sum(axis=1)
    return 1.0 / ranks


def chunks(n: int, size: int = CHUNK, seed: int = SEED) -> list[list[int]]:
    """Index lists of the full chunks of a shuffled range(n); with fewer than ``size`` items, one
    chunk of all (small corpora, tests)."""
    order = shuffled(n, seed)
    if n < size:
        return [order] if n > 1 else []
    return [order[i:i + size] for i in range(0, n - size + 1, size)]


def mrr_embeddings(embed_queries: Embed, embed_code: Embed, queries: list[str], codes: list[str],
                   size: int = CHUNK, seed: int = SEED) -> dict[str, Any]:
    rr: list[np.ndarray] = []
    for idx in chunks(len(queries), size, seed):
        q = embed_queries([queries[i] for i in idx])
        c = embed_code([codes[i] for i in idx])
        rr.append(reciprocal_ranks(q.astype(np.float64) @ c.astype(np.float64).T))
    return _summary(rr, size)


def bm25_scores(queries: list[str], codes: list[str]) -> np.ndarray:
    """[n, n] BM25 scores of each query against an index of the given codes (0: no shared term)."""
    index = BM25()
    for j, code in enumerate(codes):
        index.add(str(j), code_tokens(code))
    out = np.zeros((len(queries), len(codes)))
    for i, query in enumerate(queries):
        slots, vals = index.scores(code_tokens(query))
        # Slots equal insertion order here: a fresh index with no removals fills slots 0..n-1.
        out[i, slots] = vals
    return out


def mrr_bm25(queries: list[str], codes: list[str], size: int = CHUNK, seed: int = SEED) -> dict[str, Any]:
    rr = [reciprocal_ranks(bm25_scores([queries[i] for i in idx], [codes[i] for i in idx]))
          for idx in chunks(len(queries), size, seed)]
    return _summary(rr, size)


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit deviation (a constant row becomes zeros)."""
    centred = scores - scores.mean(axis=1, keepdims=True)
    std = centred.std(axis=1, keepdims=True)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0)


def mrr_fused(embed_queries: Embed, embed_code: Embed, queries: list[str], codes: list[str],
              weight: float = 1.0, size: int = CHUNK, seed: int = SEED) -> dict[str, Any]:
    """BM25 and embedding scores combined per query: z(bm25) + weight * z(dot)."""
    rr: list[np.ndarray] = []
    for idx in chunks(len(queries), size, seed):
        qs, cs = [queries[i] for i in idx], [codes[i] for i in idx]
        dense = embed_queries(qs).astype(np.float64) @ embed_code(cs).astype(np.float64).T
        rr.append(reciprocal_ranks(zscore_rows(bm25_scores(qs, cs)) + weight * zscore_rows(dense)))
    return _summary(rr, size)


def _summary(rr: list[np.ndarray], size: int) -> dict[str, Any]:
    allrr = np.concatenate(rr) if rr else np.zeros(0)
    return {"mrr": float(allrr.mean()) if len(allrr) else float("nan"),
            "chunk_mrr": [round(float(r.mean()), 4) for r in rr], "queries": int(len(allrr)),
            "chunks": len(rr), "chunk_size": min(size, len(rr[0])) if rr else 0,
            "top1": float((allrr == 1.0).mean()) if len(allrr) else float("nan")}


def evaluate(corpus: Path, split: str, pkg: Path | None = None, bm25: bool = False,
             threads: int = 1, fuse: float | None = None) -> dict[str, Any]:
    """MRR of a package (through ``load_retriever``) or of BM25 on ``corpus/<split>.jsonl``; with
    ``fuse``, of the package's scores added to BM25's with that weight (both z-scored per query)."""
    queries, codes = load_pairs(corpus, split)
    t0 = time.perf_counter()
    if bm25:
        res = mrr_bm25(queries, codes)
        res["scorer"] = "bm25 (k1 1.2, b 0.75)"
    else:
        from codegen_lsp.engine.kinds import load_retriever

        if pkg is None:
            raise ValueError("give a package or bm25")
        engine = load_retriever(pkg, threads=threads)
        if fuse is None:
            res = mrr_embeddings(engine.embed_queries, engine.embed_code, queries, codes)
            res["scorer"] = f"{engine.info['model']} ({engine.info['architecture']})"
        else:
            res = mrr_fused(engine.embed_queries, engine.embed_code, queries, codes, fuse)
            res["scorer"] = f"z(bm25) + {fuse:g} * z({engine.info['model']})"
    res.update(split=split, seconds=round(time.perf_counter() - t0, 1), pairs=len(queries))
    return res
