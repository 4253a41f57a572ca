"""Generation sites: functions with a signature and a docstring whose body is still to be written.

A site is found by the ``sites`` query (a function whose block opens with a docstring) and then
classified by what follows the docstring:

``empty``  nothing (comments at or left of the ``def`` column do not count);
``stub``   only ``pass``, ``...``, ``raise NotImplementedError[(...)]`` and ``# TODO`` comments
           (other comments may sit among them: the user's notes. Those before the first stub item
           stay where they are; later ones are written back at the start of the new body. All of
           them go into the prompt; only the stub items and ``# TODO`` markers are replaced);
``live``   only from :func:`site_at`: the cursor is on the line right after the docstring, that line
           is blank or holds the start of a body that does not parse yet, the function is not an
           ``empty`` site (e.g. the tree around it is broken), and nothing of it follows that line.

Parts of a broken document that tree-sitter could not parse are searched again one function at a
time (see ``recovery.py``), so an unclosed bracket or string elsewhere hides no site.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node

from .document import Document, Position, decode
from .queries import load_query

SiteKind = Literal["stub", "empty", "live"]

_TODO = re.compile(rb"#\s*TODO\b", re.IGNORECASE)
_BLANK = re.compile(rb"[ \t\f]*")


@dataclass(frozen=True)
class FunctionSite:
    """A function whose body the model may write. Positions are LSP positions in the text the site
    was found in; they go stale with the next edit (find the sites again)."""

    name: str
    qualname: str
    """Python's ``__qualname__``: ``Class.method``, ``outer.<locals>.inner``."""
    signature: str
    """``def``/``async def`` through the colon, as in the file (may span lines)."""
    docstring: str
    """The docstring's source text between the quotes (escapes not processed)."""
    body_indent: str
    """Indentation of the docstring line, which every top-level body statement must repeat."""
    def_indent: str
    """Indentation of the ``def`` line."""
    is_async: bool
    kind: SiteKind
    replace_start: Position
    """Start of the text the body replaces: the first stub statement or comment, or (``empty``,
    ``live``) the end of the docstring."""
    replace_end: Position
    """End of the replaced stub text; equals ``replace_start`` for ``empty`` and ``live``."""
    docstring_end: Position
    """Just after the docstring's closing quotes."""
    header_start: Position
    """Column 0 of the first decorator line, or of the ``def`` line."""
    edit_start: Position
    """Start of the range :func:`grammar.body_edit` replaces with a newline plus the body: the end of
    the docstring line's content (after a trailing comment, if any), or of the user's comment lines
    kept above a stub. The prompt and the grammar check's stand-in end here too."""
    edit_end: Position
    """End of that range: the end of the stub, of a whitespace-only line right after the docstring,
    or (``live``) of the line being typed."""
    kept_comments: tuple[str, ...] = ()
    """The user's comments among or after the stub items (``stub`` sites), as written (``# ...``):
    the replaced range holds them, so the body starts with them again (and the model sees them)."""

    def contains_line(self, line: int) -> bool:
        """True when ``line`` is in the header, docstring, stub or the replaced lines."""
        return self.header_start.line <= line <= max(self.edit_end.line, self.replace_end.line)


@dataclass(frozen=True)
class TreeView:
    """Maps nodes of a tree parsed from a window of the document back to the document: a node's
    document offset is its own offset plus ``delta``; ``scopes`` are the enclosing names outside
    the window (for the qualname)."""

    doc: Document
    delta: int = 0
    scopes: tuple[str, ...] = ()


def find_sites(doc: Document) -> list[FunctionSite]:
    """Every ``stub`` and ``empty`` site of the document, in document order.

    Cached per text; across edits, the sites of each top-level statement are memoized by its
    text (plus the line after it), so after an edit only the statements it touched are searched
    again and the rest are shifted into place.
    """
    cached = doc.cache.get("sites")
    if cached is None:
        from .recovery import recovered_sites

        found = {s.header_start.line: s for s in _sites_by_statement(doc)}
        if doc.tree.root_node.has_error:
            # error recovery may re-nest what follows the damage: trust indentation for the names
            found = _requalify(doc, found)
            for site in recovered_sites(doc, set(found)):
                found.setdefault(site.header_start.line, site)
        cached = doc.cache["sites"] = sorted(found.values(), key=lambda s: s.header_start)
    return list(cached)


def _sites_by_statement(doc: Document) -> list[FunctionSite]:
    """Sites under each top-level statement, memoized by the statement's text and the line after
    it (which decides ``edit_end``). Sites hold no byte offsets, so a statement that only moved
    needs its lines shifted, and one that did not move is reused as is."""
    memo: dict[bytes, tuple[int, list[FunctionSite]]] = doc.memo.get("site_statements", {})
    fresh: dict[bytes, tuple[int, list[FunctionSite]]] = {}
    sites: list[FunctionSite] = []
    view = TreeView(doc)
    data = doc.data
    rows_are_lines = b"\r" not in data  # tree-sitter counts rows in \n only
    for node in doc.tree.root_node.named_children:
        if node.type == "comment":
            continue
        line = node.start_point.row if rows_are_lines else doc.line_of(node.start_byte)
        after = (node.end_point.row if rows_are_lines else doc.line_of(node.end_byte)) + 2
        key = data[doc.line_start(line):doc.line_start(after) if after < doc.line_count else len(data)]
        hit = memo.get(key) if not node.has_error else None
        if hit is None:
            found = sites_in_tree(node, view)
        elif hit[0] == line:
            found = hit[1]
        else:
            found = [_shifted(s, line - hit[0]) for s in hit[1]]
        if not node.has_error:
            fresh[key] = (line, found)
        sites += found
    doc.memo["site_statements"] = fresh
    return sites


_POSITION_FIELDS = ("replace_start", "replace_end", "docstring_end", "header_start", "edit_start", "edit_end")


def _shifted(site: FunctionSite, lines: int) -> FunctionSite:
    """``site`` moved down by ``lines`` lines (columns never change).

    Built by copying the instance dict: a frozen dataclass's ``__init__`` costs several times
    more, and after a line is inserted every later site of a 10k-line file is shifted."""
    fields = dict(site.__dict__)
    for name in _POSITION_FIELDS:
        line, character = fields[name]
        fields[name] = Position(line + lines, character)
    moved = object.__new__(FunctionSite)
    moved.__dict__.update(fields)
    return moved


def _requalify(doc: Document, found: dict[int, FunctionSite]) -> dict[int, FunctionSite]:
    from .recovery import scopes_for

    if not found:
        return found
    scopes = scopes_for(doc, sorted({s.header_start.line for s in found.values()}))
    out = {}
    for key, site in found.items():
        qualname = ".".join((*scopes[site.header_start.line], site.name))
        out[key] = site if qualname == site.qualname else dataclasses.replace(site, qualname=qualname)
    return out


def site_at(doc: Document, line: int, character: int) -> FunctionSite | None:
    """The site the cursor is in: inside its header, docstring or stub, or on the line right after
    its docstring; otherwise a ``live`` site if the cursor line follows a docstring."""
    del character  # sites are line-granular; kept for the LSP-shaped signature
    inside = [s for s in find_sites(doc) if s.contains_line(line) or _after_docstring(doc, s, line)]
    if inside:
        return max(inside, key=lambda s: s.header_start)
    from .recovery import live_site

    return live_site(doc, line)


def _after_docstring(doc: Document, site: FunctionSite, line: int) -> bool:
    return line == site.docstring_end.line + 1 and line < doc.line_count and (
        _BLANK.fullmatch(doc.line_bytes(line)) is not None)


def sites_in_tree(root: Node, view: TreeView, kind_if_empty: SiteKind = "empty") -> list[FunctionSite]:
    """Sites among the query matches under ``root``."""
    from tree_sitter import QueryCursor

    sites = []
    for _, captures in QueryCursor(load_query("sites")).matches(root):
        site = site_from_function(captures["function"][0], captures["docstring"][0], view, kind_if_empty)
        if site is not None:
            sites.append(site)
    return sites


def site_from_function(fn: Node, docstring: Node, view: TreeView,
                       kind_if_empty: SiteKind = "empty") -> FunctionSite | None:
    """Classify one function whose block opens with ``docstring``; None when it is no site."""
    doc, delta = view.doc, view.delta
    data = doc.data
    if any(n is not None and n.has_error for n in (
            fn.child_by_field_name("name"), fn.child_by_field_name("parameters"),
            fn.child_by_field_name("return_type"), fn.child_by_field_name("type_parameters"),
            docstring)):
        return None
    prefix = docstring.children[0].text or b""
    if re.search(rb"[fFbBtT]", prefix):
        return None  # f-strings, byte strings and templates are not docstrings
    statement = docstring.parent
    block = statement.parent if statement is not None else None
    if statement is None or block is None:
        return None
    def_off = fn.start_byte + delta
    def_line = doc.line_of(def_off)
    def_indent = data[doc.line_span(def_line)[0]:def_off]
    doc_off = statement.start_byte + delta
    doc_line = doc.line_of(doc_off)
    body_indent = data[doc.line_span(doc_line)[0]:doc_off]
    if not (_BLANK.fullmatch(def_indent) and _BLANK.fullmatch(body_indent)
            and body_indent.startswith(def_indent) and len(body_indent) > len(def_indent)):
        return None  # one-line definitions and odd layouts
    body = _classify_body(doc, block.named_children[1:], delta, len(def_indent),
                          doc.line_of(docstring.end_byte + delta))
    if body is None:
        return None
    kind, first, last, trailing_comment_end, kept = body
    if kind == "empty":
        kind = kind_if_empty
    docstring_end = docstring.end_byte + delta
    edit_start = max(docstring_end, trailing_comment_end)
    if kind == "stub":
        replace_start, replace_end, edit_end = first, last, last
    else:
        replace_start = replace_end = docstring_end
        edit_end = _whitespace_line_after(doc, edit_start)
    header = fn.parent if fn.parent is not None and fn.parent.type == "decorated_definition" else fn
    header_offset = doc.line_span(doc.line_of(header.start_byte + delta))[0]
    colon = next((c for c in fn.children if c.type == ":"), None)
    signature = data[def_off:(colon.end_byte if colon else fn.start_byte) + delta]
    return FunctionSite(
        name=decode(fn.child_by_field_name("name").text or b""),  # type: ignore[union-attr]
        qualname=_qualname(fn, view.scopes),
        signature=decode(signature),
        docstring=decode(data[docstring.children[0].end_byte + delta:docstring.children[-1].start_byte + delta]),
        body_indent=decode(body_indent), def_indent=decode(def_indent),
        is_async=fn.children[0].type == "async", kind=kind,
        replace_start=doc.position_at(replace_start), replace_end=doc.position_at(replace_end),
        docstring_end=doc.position_at(docstring_end), header_start=doc.position_at(header_offset),
        edit_start=doc.position_at(edit_start), edit_end=doc.position_at(edit_end),
        kept_comments=tuple(kept) if kind == "stub" else (),
    )


def _classify_body(doc: Document, rest: Sequence[Node], delta: int, def_column: int,
                   docstring_line: int) -> tuple[SiteKind, int, int, int, list[str]] | None:
    """(kind, first, last, trailing comment end, the user's comments inside the replaced range) for the
    block after the docstring, or None."""
    first = last = trailing = -1
    stub = other_comment = False
    kept: list[str] = []
    for node in rest:
        start, end = node.start_byte + delta, node.end_byte + delta
        line = doc.line_of(start)
        if node.type == "comment":
            if line == docstring_line:
                trailing = end
                continue
            if start - doc.line_span(line)[0] <= def_column:
                continue  # a comment at the def's column or left of it belongs to what follows
            if _TODO.match(node.text or b""):
                stub = True
            else:
                other_comment = True
                if first < 0:  # the user's notes before the stub stay: the body goes after them
                    trailing = end
                    continue
                kept.append(decode(node.text or b"").rstrip())
        elif _is_stub_statement(node) and line != docstring_line:
            stub = True
        else:
            return None
        first = start if first < 0 else first
        last = end
    if not stub:
        return None if other_comment else ("empty", -1, -1, trailing, [])
    return "stub", first, last, trailing, kept


def _is_stub_statement(node: Node) -> bool:
    if node.type == "pass_statement":
        return True
    if node.type == "expression_statement":
        return node.named_child_count == 1 and node.named_children[0].type == "ellipsis"
    if node.type == "raise_statement" and node.named_child_count == 1:
        exc = node.named_children[0]
        if exc.type == "call":
            exc = exc.child_by_field_name("function") or exc
        return exc.type == "identifier" and exc.text == b"NotImplementedError"
    return False


def _whitespace_line_after(doc: Document, offset: int) -> int:
    """End of the next line if it holds only (some) whitespace, else ``offset``: the blank
    indented line an editor leaves after the docstring is superseded by the body."""
    line = doc.line_of(offset) + 1
    if line >= doc.line_count:
        return offset
    start, end = doc.line_span(line)
    return end if end > start and _BLANK.fullmatch(doc.data[start:end]) else offset


def _qualname(fn: Node, scopes: tuple[str, ...]) -> str:
    names: list[str] = []
    node = fn.parent
    while node is not None:
        if node.type in ("function_definition", "class_definition"):
            name = node.child_by_field_name("name")
            suffix = ".<locals>" if node.type == "function_definition" else ""
            names.append(decode(name.text or b"" if name is not None else b"?") + suffix)
        node = node.parent
    name_node = fn.child_by_field_name("name")
    parts = [*scopes, *reversed(names), decode(name_node.text or b"") if name_node else "?"]
    return ".".join(parts)
