"""The structural knowledge of SAT (Wu et al., 2024): shortest-path distances in the tree-sitter AST
between the leaves of a function body, spread onto the model's subtokens.

A body (``"\\n    return a + b"``, as the corpus stores targets) is parsed under a stub header
(``def _():``); its leaves are the non-empty terminal nodes inside the body. Two leaves are
``depth(i) + depth(j) - 2 * depth(lca)`` edges apart. Each subtoken is mapped to the first leaf its
characters overlap; subtokens made only of whitespace (indentation, newlines) and the end token map to
no leaf, and every pair involving them is masked (NaN).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import tree_sitter_python
from tokenizers import Tokenizer
from tree_sitter import Language, Node, Parser

HEADER = "def _():"


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_python.language()))


def _char_index(text: str) -> np.ndarray:
    """Byte offset -> character offset of ``text`` encoded as UTF-8 (one entry per byte, plus the end)."""
    widths = [len(c.encode("utf-8")) for c in text]
    return np.repeat(np.arange(len(text) + 1), [*widths, 1])


def body_leaves(body: str) -> tuple[np.ndarray, list[list[int]]]:
    """Character spans ``[L, 2]`` (in ``body``) of the body's leaves, in source order, and each leaf's
    path of node ids from the root down to the leaf itself."""
    source = HEADER + body
    data = source.encode("utf-8")
    chars = _char_index(source)
    start = len(HEADER.encode("utf-8"))
    spans: list[tuple[int, int]] = []
    paths: list[list[int]] = []
    counter = 0

    def walk(node: Node, path: list[int]) -> None:
        nonlocal counter
        counter += 1
        here = [*path, counter]
        if node.child_count == 0:
            if node.end_byte > node.start_byte and node.start_byte >= start and data[node.start_byte:node.end_byte].strip():
                spans.append((int(chars[node.start_byte]) - len(HEADER), int(chars[node.end_byte]) - len(HEADER)))
                paths.append(here)
            return
        for child in node.children:
            if child.end_byte > start:
                walk(child, here)

    walk(_parser().parse(data).root_node, [])
    return np.array(spans, dtype=np.int64).reshape(-1, 2), paths


def leaf_distances(paths: list[list[int]]) -> np.ndarray:
    """Tree distance ``[L, L]`` between leaves given their root-to-leaf paths."""
    n = len(paths)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    depth = np.array([len(p) for p in paths])
    width = int(depth.max())
    padded = np.full((n, width), -1, dtype=np.int64)
    for i, p in enumerate(paths):
        padded[i, :len(p)] = p
    same = padded[:, None, :] == padded[None, :, :]
    common = np.cumprod(same, axis=-1).sum(-1)  # length of the shared prefix = depth of the LCA
    common = np.minimum(common, np.minimum.outer(depth, depth))  # padding (-1) matched padding
    return (depth[:, None] + depth[None, :] - 2 * common).astype(np.float32)


def token_leaves(spans: np.ndarray, offsets: list[tuple[int, int]], body: str) -> np.ndarray:
    """The leaf index of every subtoken (``-1``: whitespace only, or outside every leaf)."""
    out = np.full(len(offsets), -1, dtype=np.int64)
    if len(spans) == 0:
        return out
    for t, (s, e) in enumerate(offsets):
        if e <= s or not body[s:e].strip():
            continue
        i = int(np.searchsorted(spans[:, 1], s, side="right"))  # first leaf ending after the token starts
        if i < len(spans) and spans[i, 0] < e:
            out[t] = i
    return out


def token_distances(tokenizer: Tokenizer, body: str, n: int) -> np.ndarray:
    """``D [n, n]`` over the first ``n`` subtokens of ``body`` as ``encode_pair`` lays them out (the
    body's own ids, then the end token, possibly cut): AST distance, NaN where a token has no leaf."""
    enc = tokenizer.encode(body, add_special_tokens=False)
    spans, paths = body_leaves(body)
    leaf = np.full(n, -1, dtype=np.int64)
    mapped = token_leaves(spans, list(enc.offsets), body)[:n]
    leaf[:len(mapped)] = mapped
    dist = leaf_distances(paths)
    out = np.full((n, n), np.nan, dtype=np.float32)
    ok = np.flatnonzero(leaf >= 0)
    if len(ok):
        out[np.ix_(ok, ok)] = dist[np.ix_(leaf[ok], leaf[ok])]
    return out
