"""Dense retrieval over the workspace index with a ``retriever`` package: every definition's code
embedded once (in the index thread), queries embedded per request, cosine top-k."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .index import WorkspaceIndex
from .symbols import Symbol


def code_of(symbol: Symbol) -> str:
    """What the code encoder was trained on: the definition without its docstring."""
    text = symbol.text
    if symbol.docstring:
        at = text.find(symbol.docstring)
        if at >= 0:  # drop the docstring's literal, quotes included
            start = max(text.rfind('"""', 0, at), text.rfind("'''", 0, at), text.rfind('"', 0, at), text.rfind("'", 0, at))
            end = at + len(symbol.docstring)
            close = text[end:end + 3]
            end += 3 if close in ('"""', "'''") else 1
            if start >= 0:
                text = text[:start] + text[end:]
    return text


class DenseIndex:
    """Embeddings of an index's definitions, kept in step with it by :meth:`sync`."""

    def __init__(self, index: WorkspaceIndex, retriever: Any, batch: int = 128) -> None:
        self.index = index
        self.retriever = retriever
        self.batch = batch
        self._keys: list[str] = []
        self._matrix = np.zeros((0, 0), np.float32)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def sync(self, cancel: threading.Event | None = None) -> int:
        """Embed the definitions the index holds that are not embedded yet and drop those it lost;
        returns how many were embedded. Runs in the index thread."""
        symbols = {s.key: s for s in self.index.symbols()}
        with self._lock:
            keep = [i for i, k in enumerate(self._keys) if k in symbols]
            keys = [self._keys[i] for i in keep]
            matrix = self._matrix[keep] if len(self._matrix) else self._matrix
        todo = [k for k in symbols if k not in set(keys)]
        rows = [matrix] if len(matrix) else []
        for at in range(0, len(todo), self.batch):
            if cancel is not None and cancel.is_set():
                todo = todo[:at]
                break
            rows.append(self.retriever.embed_code([code_of(symbols[k]) for k in todo[at:at + self.batch]]))
        with self._lock:
            self._keys = keys + todo
            self._matrix = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
        return len(todo)

    def top(self, text: str, k: int, exclude: Callable[[Symbol], bool] | None = None) -> list[tuple[Symbol, float]]:
        with self._lock:
            keys, matrix = self._keys, self._matrix
        if not keys:
            return []
        query = self.retriever.embed_queries([text])[0]
        scores = matrix @ query
        out: list[tuple[Symbol, float]] = []
        for i in np.argsort(-scores)[: k + 16]:
            sym = self.index.get(keys[int(i)])
            if sym is not None and not (exclude and exclude(sym)):
                out.append((sym, float(scores[int(i)])))
            if len(out) == k:
                break
        return out
