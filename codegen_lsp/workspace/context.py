"""Workspace context for a site's prompt: definitions of the names it mentions, the definitions most
like it (BM25), and recently edited ones, rendered as source with a file header, within a token
budget (``generation.py`` gives it a share of the prompt budget)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..analysis.document import Document
from ..analysis.sites import FunctionSite
from .index import WorkspaceIndex
from .symbols import Symbol

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FROM_IMPORT = re.compile(r"^\s*from\s+[\w.]+\s+import\s+\(?([\w\s,]+)\)?", re.MULTILINE)
_AMBIGUOUS = 3
"""A name defined more often than this in the workspace says too little to pull in a definition."""


@dataclass(frozen=True)
class ContextPiece:
    source: str
    """``definition`` | ``retrieval`` | ``recent``: why it was chosen."""
    symbol: Symbol

    @property
    def label(self) -> str:
        return f"{self.source}:{self.symbol.key}"


def mentioned_names(doc: Document, site: FunctionSite) -> list[str]:
    """Names the site mentions, most telling first: its signature's (types, defaults), its docstring's
    identifiers, then the names the file imports with ``from ... import``."""
    seen: dict[str, None] = {}
    for text in (site.signature, site.docstring):
        for name in _IDENT.findall(text):
            if len(name) > 2 and name not in ("def", "self", "cls", "async", "None", "True", "False"):
                seen.setdefault(name, None)
    head = doc.data[: doc.offset_at(*site.header_start)].decode("utf-8", errors="replace")
    for group in _FROM_IMPORT.findall(head):
        for name in _IDENT.findall(group.replace(" as ", " ")):
            if name != "import":
                seen.setdefault(name, None)
    seen.pop(site.name, None)
    return list(seen)


Search = Callable[..., list[tuple[Symbol, float]]]
"""``search(text, k, exclude, docstring=...)``: a retriever combined with BM25 (``dense.fused_search``);
without one, ``WorkspaceIndex.search`` (BM25) is used."""


def gather(index: WorkspaceIndex, doc: Document, site: FunctionSite, path: str | None, mode: str,
           k: int = 4, search: Search | None = None) -> list[ContextPiece]:
    """Pieces for ``site`` in priority order (``path``: the site's file relative to the index root;
    its own definitions are in the prompt already)."""
    if mode == "off":
        return []
    own = (lambda s: s.path == path) if path else (lambda s: False)
    out: dict[str, ContextPiece] = {}
    if mode in ("definitions", "all"):
        for name in mentioned_names(doc, site):
            found = [s for s in index.named(name) if not own(s)]
            if 0 < len(found) <= _AMBIGUOUS:
                for s in found:
                    out.setdefault(s.key, ContextPiece("definition", s))
    if mode in ("retrieval", "all"):
        query = f"{site.qualname} {site.signature} {site.docstring}"
        ranked = (search(query, k, lambda s: own(s) or s.key in out, docstring=site.docstring) if search
                  else index.search(query, k, lambda s: own(s) or s.key in out))
        for s, _score in ranked:
            out.setdefault(s.key, ContextPiece("retrieval", s))
    if mode == "all":
        for key in reversed(index.recent[-k:]):
            recent = index.get(key)
            if recent is not None and not own(recent):
                out.setdefault(key, ContextPiece("recent", recent))
    return list(out.values())


def render(pieces: list[ContextPiece], count_tokens: Callable[[str], int], budget: int,
           current_path: str | None, file_sep: str = "") -> tuple[str, list[str]]:
    """The pieces that fit in ``budget`` tokens as source under a header naming their file, most
    relevant last (nearest the function), pieces of one file under one header; plus their labels. A
    piece that does not fit whole is shown as its signature and docstring. ``file_sep``: the model's
    file separator token (``PromptConvention.file_sep``), which then heads each file as in the model's
    repository-level training (``<|file_sep|>path``); else a ``# file: path`` comment does."""

    def header(path: str) -> str:
        return f"{file_sep}{path}\n" if file_sep else f"# file: {path}\n"

    chosen: list[tuple[str, ContextPiece]] = []
    used = count_tokens(header(current_path)) if current_path else 0
    for piece in pieces:
        s = piece.symbol
        for text in (s.text, s.signature + (f'\n    """{s.docstring}"""' if s.docstring else "") + "\n    ..."):
            block = text.rstrip() + "\n\n\n"
            cost = count_tokens(header(s.path) + block)
            if used + cost <= budget:
                chosen.append((block, piece))
                used += cost
                break
    if not chosen:
        return "", []
    chosen.reverse()
    out: list[str] = []
    for i, (block, piece) in enumerate(chosen):
        if i == 0 or chosen[i - 1][1].symbol.path != piece.symbol.path:
            out.append(header(piece.symbol.path))
        out.append(block)
    if current_path:
        out.append(header(current_path))
    return "".join(out), [piece.label for _, piece in chosen]


class Workspace:
    """The indexes of the workspace folders, and the context they give a site."""

    def __init__(self, indexes: list[WorkspaceIndex]) -> None:
        self.indexes = indexes
        self.searchers: dict[Path, Search] = {}
        """Per index root, a retriever to use instead of BM25 (set once its embeddings are ready)."""

    def index_for(self, path: Path | None) -> tuple[WorkspaceIndex | None, str | None]:
        """The index whose root holds ``path`` (else the first), and the path relative to it."""
        for index in self.indexes:
            rel = index.relpath(path) if path is not None else None
            if rel is not None:
                return index, rel
        return (self.indexes[0] if self.indexes else None), None

    def context(self, doc: Document, site: FunctionSite, path: Path | None, mode: str,
                count_tokens: Callable[[str], int], budget: int, k: int, file_sep: str = "") -> tuple[str, list[str]]:
        index, rel = self.index_for(path)
        if index is None or budget <= 0:
            return "", []
        pieces = gather(index, doc, site, rel, mode, k, self.searchers.get(index.root))
        return render(pieces, count_tokens, budget, rel, file_sep)
