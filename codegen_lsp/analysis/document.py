"""An open document: its text, a tree-sitter tree kept in step with every edit (``tree.edit`` plus
an incremental reparse), and the conversion between LSP positions and byte offsets.

LSP positions are (line, character) where ``character`` counts UTF-16 code units and lines end at
``\\n``, ``\\r\\n`` or ``\\r``. Tree-sitter works in UTF-8 byte offsets; everything in the analysis
layer goes through byte offsets and converts at the edges.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Any, NamedTuple

from tree_sitter import Parser, Point, Tree

from .queries import new_parser

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class Position(NamedTuple):
    """An LSP position: zero-based line and UTF-16 code unit offset within the line."""

    line: int
    character: int


def encode(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates (possible in JSON strings) survive the round trip."""
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    """Inverse of :func:`encode`; invalid bytes become U+FFFD rather than raising."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def line_starts(data: bytes) -> list[int]:
    """Byte offset of the start of every LSP line (line 0 starts at 0)."""
    pattern = _LINE_BREAK if b"\r" in data else re.compile(b"\n")
    return [0, *(m.end() for m in pattern.finditer(data))]


def utf16_length(data: bytes) -> int:
    """Length in UTF-16 code units of the UTF-8 text ``data``."""
    if data.isascii():
        return len(data)
    return len(decode(data).encode("utf-16-le", "surrogatepass")) // 2


def utf16_to_byte_column(line: bytes, character: int) -> int:
    """Byte column within ``line`` (without its terminator) of UTF-16 column ``character``,
    clamped to the line's length as LSP prescribes."""
    if line.isascii():
        return max(0, min(character, len(line)))
    units = 0
    offset = 0
    for ch in decode(line):
        if units >= character:
            return offset
        units += 2 if ord(ch) > 0xFFFF else 1
        offset += len(encode(ch))
    return len(line)


def ts_point(data: bytes, offset: int) -> Point:
    """Tree-sitter point (row counted in ``\\n``, column in bytes) of ``offset`` in ``data``."""
    row = data.count(b"\n", 0, offset)
    column = offset - (data.rfind(b"\n", 0, offset) + 1)
    return Point(row, column)


class Document:
    """The text of one open file and its syntax tree.

    Not thread-safe: take a :meth:`snapshot` before handing the document to a worker thread.
    """

    def __init__(self, data: bytes, version: int = 0, *, parser: Parser | None = None,
                 tree: Tree | None = None, starts: list[int] | None = None) -> None:
        self._parser = parser or new_parser()
        self._data = data
        self._tree = tree if tree is not None else self._parser.parse(data)
        self._starts = starts if starts is not None else line_starts(data)
        self._text: str | None = None
        self.version = version
        """The LSP document version of the current text."""
        self.cache: dict[str, Any] = {}
        """Results derived from this exact text (e.g. the sites), cleared on every change."""
        self.memo: dict[str, Any] = {}
        """Results keyed by the text they depend on (e.g. sites per top-level statement); kept
        across changes, each owner prunes its own entries."""

    @classmethod
    def from_text(cls, text: str, version: int = 0) -> Document:
        """Parse ``text`` from scratch."""
        return cls(encode(text), version)

    @property
    def text(self) -> str:
        """The current text."""
        if self._text is None:
            self._text = decode(self._data)
        return self._text

    @property
    def data(self) -> bytes:
        """The current text as UTF-8 bytes (what the tree's byte offsets index)."""
        return self._data

    @property
    def tree(self) -> Tree:
        """The syntax tree of the current text."""
        return self._tree

    @property
    def line_count(self) -> int:
        return len(self._starts)

    @property
    def newline(self) -> str:
        """The document's line terminator (the first one found; ``\\n`` if none)."""
        m = _LINE_BREAK.search(self._data)
        return m.group().decode() if m else "\n"

    def snapshot(self) -> Document:
        """An independent copy sharing nothing mutable (cheap: bytes are immutable, trees copy)."""
        copy = Document(self._data, self.version, tree=self._tree.copy(), starts=list(self._starts))
        copy.memo = dict(self.memo)
        return copy

    # -- positions ----------------------------------------------------------------------------

    def line_span(self, line: int) -> tuple[int, int]:
        """Byte offsets of the start and end (before the terminator) of ``line``."""
        start = self._starts[line]
        end = self._starts[line + 1] if line + 1 < len(self._starts) else len(self._data)
        if end > start and self._data[end - 1] == 0x0A:
            end -= 1
        if end > start and self._data[end - 1] == 0x0D:
            end -= 1
        return start, end

    def line_start(self, line: int) -> int:
        """Byte offset where ``line`` starts."""
        return self._starts[line]

    def line_bytes(self, line: int) -> bytes:
        start, end = self.line_span(line)
        return self._data[start:end]

    def line_of(self, offset: int) -> int:
        """The line holding byte ``offset``."""
        return bisect_right(self._starts, offset) - 1

    def offset_at(self, line: int, character: int) -> int:
        """Byte offset of an LSP position; positions past a line's end or the last line clamp."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self._data)
        start, end = self.line_span(line)
        return start + utf16_to_byte_column(self._data[start:end], character)

    def position_at(self, offset: int) -> Position:
        """LSP position of byte ``offset``."""
        offset = max(0, min(offset, len(self._data)))
        line = self.line_of(offset)
        return Position(line, utf16_length(self._data[self._starts[line]:offset]))

    # -- edits --------------------------------------------------------------------------------

    def apply_change(self, start_line: int, start_char: int, end_line: int, end_char: int,
                     new_text: str, version: int | None = None) -> None:
        """Replace the LSP range with ``new_text`` and reparse incrementally."""
        a = self.offset_at(start_line, start_char)
        b = self.offset_at(end_line, end_char)
        self.apply_byte_change(min(a, b), max(a, b), encode(new_text), version)

    def apply_byte_change(self, start: int, end: int, new: bytes, version: int | None = None) -> None:
        """Replace bytes ``[start, end)`` with ``new``: edit the old tree, then reparse with it."""
        old = self._data
        data = old[:start] + new + old[end:]
        new_end = start + len(new)
        self._tree.edit(start_byte=start, old_end_byte=end, new_end_byte=new_end,
                        start_point=ts_point(old, start), old_end_point=ts_point(old, end),
                        new_end_point=ts_point(data, new_end))
        self._tree = self._parser.parse(data, self._tree)
        self._starts = _update_starts(self._starts, data, start, end, new_end)
        self._data = data
        self._text = None
        self.cache.clear()
        if version is not None:
            self.version = version

    def replace_all(self, text: str, version: int | None = None) -> None:
        """Full-text sync: reparse from scratch."""
        self._data = encode(text)
        self._tree = self._parser.parse(self._data)
        self._starts = line_starts(self._data)
        self._text = None
        self.cache.clear()
        if version is not None:
            self.version = version


def _update_starts(starts: list[int], data: bytes, start: int, end: int, new_end: int) -> list[int]:
    """Line starts after replacing old bytes ``[start, end)`` by new bytes ``[start, new_end)``.

    A line start ``s`` depends only on bytes ``s-1`` and ``s``, so starts before ``start`` and after
    ``end`` survive (the latter shifted); only ``[start, new_end]`` is rescanned.
    """
    delta = new_end - end
    head = starts[: bisect_left(starts, start)]
    lo = max(start - 1, 0)
    pattern = _LINE_BREAK if b"\r" in data else re.compile(b"\n")
    mid = [m.end() for m in pattern.finditer(data, lo, new_end + 1) if start <= m.end() <= new_end]
    tail = [s + delta for s in starts[bisect_right(starts, end):]]
    if not head:
        head = [0]
        mid = [s for s in mid if s > 0]
    return head + mid + tail
