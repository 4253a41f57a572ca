"""When an automatic inline request may start generating: after an adaptive pause in typing, and
not in the middle of a word inside a string or comment. Explicit requests skip both checks.

Plain functions and a small clock, no LSP types; the inline handler (features/inline.py) calls them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .document import Document

_QUIET_NODES = {"string", "string_content", "comment", "string_start", "string_end"}
_PAUSE_S = 1.5
"""A gap between edits longer than this is a pause, not typing: it does not move the estimate."""
_MIN_WAIT_S = 0.03


def _word_char(b: int) -> bool:
    return chr(b).isalnum() or b == 0x5F or b >= 0x80  # letters, digits, _, any non-ASCII letter


def quiet_spot(doc: Document, line: int, character: int) -> bool:
    """True when the cursor is inside a string or comment right after a word character: the user is
    writing prose or a literal, and a body suggestion there would only get in the way."""
    offset = doc.offset_at(line, character)
    data = doc.data
    if offset == 0 or not _word_char(data[offset - 1]):
        return False
    node = doc.tree.root_node.descendant_for_byte_range(offset - 1, offset - 1)
    while node is not None:
        if node.type in _QUIET_NODES:
            return True
        if node.type == "interpolation":
            return False
        node = node.parent
    if not doc.tree.root_node.has_error:
        return False
    # A string still being typed has no closing quote, so tree-sitter has no string node for it.
    return _open_on_line(data[doc.line_start(doc.line_of(offset)):offset])


def _open_on_line(prefix: bytes) -> bool:
    """Whether the end of ``prefix`` (a line up to the cursor) is inside a quote opened on that line
    or inside a comment."""
    quote: bytes | None = None
    i = 0
    while i < len(prefix):
        ch = prefix[i:i + 1]
        if quote is not None:
            if ch == b"\\":
                i += 1
            elif prefix.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif ch == b"#":
            return True
        elif ch in (b"'", b'"'):
            quote = ch * 3 if prefix.startswith(ch * 3, i) else ch
            i += len(quote) - 1
        i += 1
    return quote is not None


class TypingClock:
    """A per-document estimate of the user's typing pace (an exponential average of the gaps
    between edits), turned into how long an automatic request waits for typing to stop."""

    def __init__(self, now: Callable[[], float] = time.monotonic, weight: float = 0.3) -> None:
        self._now = now
        self._weight = weight
        self._last: dict[str, float] = {}
        self._gap: dict[str, float] = {}

    def edit(self, uri: str) -> None:
        t = self._now()
        last = self._last.get(uri)
        self._last[uri] = t
        if last is None:
            return
        gap = t - last
        if gap > _PAUSE_S:
            return
        old = self._gap.get(uri)
        self._gap[uri] = gap if old is None else (1 - self._weight) * old + self._weight * gap

    def forget(self, uri: str) -> None:
        self._last.pop(uri, None)
        self._gap.pop(uri, None)

    def gap_s(self, uri: str) -> float | None:
        """The typical gap between this document's edits, once there is one."""
        return self._gap.get(uri)

    def wait_s(self, uri: str, max_wait_ms: int) -> float:
        """How long an automatic request should wait: 1.5 typical gaps (a fast typist waits less),
        never more than ``max_wait_ms`` (the setting; 0 = never wait), nor less than 30 ms."""
        cap = max_wait_ms / 1000.0
        if cap <= 0:
            return 0.0
        gap = self._gap.get(uri)
        if gap is None:
            return cap
        return min(cap, max(_MIN_WAIT_S, 1.5 * gap))
