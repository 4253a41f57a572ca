"""Finding sites where the document's tree is broken, one function window at a time.

Tree-sitter's error recovery can swallow everything after an unclosed bracket or string into one
ERROR node. Inside such damaged spans every ``def`` line is re-parsed on its own: a window from its
decorators to the first line indented at or left of the ``def`` (wrapped in ``if 1:`` when the def
is indented). The same windows serve the live case, where the window ends at the cursor line.
"""

from __future__ import annotations

import dataclasses
import re

from tree_sitter import Node, Parser

from .document import Document, decode
from .queries import new_parser
from .sites import FunctionSite, SiteKind, TreeView, sites_in_tree

_DEF_LINE = re.compile(rb"^[ \t]*(?:async[ \t]+)?def[ \t]", re.MULTILINE)
_SCOPE = re.compile(r"(?:async\s+)?(def|class)\s+(\w+)")
_WRAPPER = b"if 1:\n"
_MAX_WINDOW_LINES = 2000
_MAX_LOOKBACK_LINES = 300


def error_spans(root: Node) -> list[tuple[int, int]]:
    """Byte spans of the damaged parts of a tree: ERROR nodes (with a statement that runs into
    them), and the statements around MISSING nodes. Only subtrees flagged ``has_error`` are
    visited."""
    spans: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error:
            # a statement ending on the line the error starts is suspect too: an unclosed quote
            # closed by a later docstring swallows the code between them into a valid string
            prev = node.prev_sibling
            joined = prev is not None and prev.end_point.row == node.start_point.row
            spans.append((prev.start_byte if prev is not None and joined else node.start_byte, node.end_byte))
            continue
        for i, child in enumerate(node.children):
            if child.is_missing:
                local = node.type not in ("module", "block") or i == 0
                prev = node if local else node.children[i - 1]
                spans.append((prev.start_byte, max(prev.end_byte, child.end_byte)))
            elif child.has_error:
                stack.append(child)
    return spans


def recovered_sites(doc: Document, known_headers: set[int]) -> list[FunctionSite]:
    """Sites found by re-parsing each ``def`` in the damaged spans of ``doc``'s tree, except
    those whose header line is in ``known_headers``."""
    def_lines: set[int] = set()
    for start, end in error_spans(doc.tree.root_node):
        line_start = doc.line_span(doc.line_of(start))[0]
        line_end = doc.line_span(doc.line_of(end))[1]
        for m in _DEF_LINE.finditer(doc.data, line_start, line_end):
            def_lines.add(doc.line_of(m.start()))
    if not def_lines:
        return []
    ordered = sorted(def_lines)
    scopes = scopes_for(doc, ordered)
    parser = new_parser()
    sites = []
    for line in ordered:
        site = window_site(doc, line, scopes=scopes[line], parser=parser)
        if site is not None and site.header_start.line not in known_headers:
            sites.append(site)
    return sites


def window_site(doc: Document, def_line: int, *, end_line: int | None = None,
                kind_if_empty: SiteKind = "empty", scopes: tuple[str, ...] | None = None,
                parser: Parser | None = None, decorators: bool = True) -> FunctionSite | None:
    """The site of the function on ``def_line``, parsed from a window of the document alone.

    The window runs from the decorators (if they spoil the parse: from the ``def``) to
    ``end_line`` (exclusive) or, if None, to the first line indented at or left of the ``def``.
    """
    indent = _indent(doc.line_bytes(def_line))
    first = def_line
    while decorators and first > 0 and doc.line_bytes(first - 1).lstrip().startswith(b"@") and (
            _indent(doc.line_bytes(first - 1)) == indent):
        first -= 1
    end = end_line if end_line is not None else _window_end(doc, def_line, indent)
    if end <= def_line:
        return None
    start_off = doc.line_span(first)[0]
    end_off = doc.line_span(end - 1)[1]
    wrapper = _WRAPPER if indent else b""
    source = wrapper + doc.data[start_off:end_off] + b"\n"
    tree = (parser or new_parser()).parse(source)
    if scopes is None:
        scopes = scopes_for(doc, [def_line])[def_line]
    view = TreeView(doc, start_off - len(wrapper), scopes)
    for site in sites_in_tree(tree.root_node, view, kind_if_empty):
        if site.header_start.line == first:
            return site
    if first != def_line:
        return window_site(doc, def_line, end_line=end_line, kind_if_empty=kind_if_empty,
                           scopes=scopes, parser=parser, decorators=False)
    return None


def live_site(doc: Document, line: int) -> FunctionSite | None:
    """A ``live`` site for a cursor on ``line``: the line above ends a docstring that follows a
    signature, the cursor line is blank or does not parse yet (``return (x +``), and no line after
    it still belongs to that function."""
    if not 0 < line < doc.line_count:
        return None
    above = doc.line_bytes(line - 1).rstrip()
    if not above.endswith((b'"', b"'")):
        return None
    start, end = doc.line_span(line)
    if doc.data[start:end].strip() and not any(
            a <= end and b >= start for a, b in error_spans(doc.tree.root_node)):
        return None  # a line that already parses is written, not being written
    candidates = 0
    for def_line in range(line - 1, max(-1, line - 1 - _MAX_LOOKBACK_LINES), -1):
        if not _DEF_LINE.match(doc.line_bytes(def_line)):
            continue
        site = window_site(doc, def_line, end_line=line, kind_if_empty="live")
        if site is not None and site.docstring_end.line == line - 1 and site.kind == "live":
            if _window_end(doc, line, site.def_indent.encode()) > _next_code_line(doc, line):
                return None  # the function goes on below the cursor line: not being written
            end = doc.line_span(line)[1]
            return dataclasses.replace(site, edit_end=doc.position_at(end))
        candidates += 1
        if candidates >= 5:
            break
    return None


def _indent(line: bytes) -> bytes:
    return line[: len(line) - len(line.lstrip(b" \t\f"))]


def _window_end(doc: Document, def_line: int, indent: bytes) -> int:
    """First line after ``def_line`` whose code sits at or left of ``indent`` (closing brackets and
    comments do not count); the line count if none."""
    last = min(doc.line_count, def_line + _MAX_WINDOW_LINES)
    for line in range(def_line + 1, last):
        text = doc.line_bytes(line)
        stripped = text.lstrip(b" \t\f")
        if not stripped or stripped[:1] in (b")", b"]", b"}", b"#"):
            continue
        ws = text[: len(text) - len(stripped)]
        if not (ws.startswith(indent) and len(ws) > len(indent)):
            return line
    return last


def _next_code_line(doc: Document, line: int) -> int:
    """First line after ``line`` holding code (not blank, not only a comment); the line count
    if none."""
    for nxt in range(line + 1, doc.line_count):
        stripped = doc.line_bytes(nxt).strip()
        if stripped and not stripped.startswith(b"#"):
            return nxt
    return doc.line_count


def scopes_for(doc: Document, def_lines: list[int]) -> dict[int, tuple[str, ...]]:
    """Enclosing class/def names of each of the sorted ``def_lines``, from one forward scan of the
    indentation, starting at the last unindented line above the first of them."""
    top = def_lines[0]
    while top > 0 and (not doc.line_bytes(top).strip() or _indent(doc.line_bytes(top))):
        top -= 1
    stack: list[tuple[int, str]] = []
    wanted = set(def_lines)
    result: dict[int, tuple[str, ...]] = {}
    for line in range(top, def_lines[-1] + 1):
        text = doc.line_bytes(line)
        stripped = text.lstrip(b" \t\f")
        if not stripped or stripped.startswith(b"#"):
            continue
        width = len(text) - len(stripped)
        while stack and stack[-1][0] >= width:
            stack.pop()
        if line in wanted:
            result[line] = tuple(name for _, name in stack)
        m = _SCOPE.match(decode(stripped))
        if m:
            stack.append((width, m.group(2) + (".<locals>" if m.group(1) == "def" else "")))
    return result
