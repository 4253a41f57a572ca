"""Model prompts for a site: file context, then the function's header exactly as written.

The prompt is raw source text. It holds the file's imports, module-level assignments and other
top-level definitions, the enclosing class header with its nearby members, and finally the
enclosing scopes' headers and the function's decorators, signature and docstring. Context is
trimmed to the token budget (whole definitions shrink to their signatures first, then pieces are
dropped, least relevant first); the scopes and the function's own header are never trimmed.

With ``end_before_newline`` (the default model's convention) the text ends right after the
docstring's closing quotes: the tokenizer merges a newline with the indentation that follows, so
the model must produce ``"\\n    "`` itself. Otherwise the text ends with a newline.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tree_sitter import Node, QueryCursor

from .document import Document, decode
from .queries import load_query
from .sites import FunctionSite, find_sites

_SIMPLE = ("docstring", "import", "assignment")
_SCOPE_LINE = re.compile(rb"(?:async\s+)?(?:def|class)\s")


@dataclass
class Prompt:
    """A prompt and what went into it."""

    text: str
    tokens: int
    """``count_tokens(text)``."""
    budget: int
    end_before_newline: bool
    included: list[str] = field(default_factory=list)
    """Labels of the context pieces kept (``import``, ``member:area``, ``def:helper (signature)``)."""
    dropped: list[str] = field(default_factory=list)
    """Labels of the pieces trimmed away for the budget."""

    @property
    def over_budget(self) -> bool:
        """True when the function's own header alone exceeds the budget."""
        return self.tokens > self.budget


class _Piece:
    """One piece of context; its text is built only if the budget gets that far."""

    def __init__(self, doc: Document, node: Node, kind: str, label: str | None = None) -> None:
        self.doc, self.node, self.kind = doc, node, kind
        self.offset = node.start_byte
        self.label = label or (f"def:{_name(node)}" if kind == "definition" else
                               f"member:{_name(node)}" if kind == "member" else kind)
        self.use_short = False

    @functools.cached_property
    def full(self) -> str:
        return _clean(self.doc.data[_line_start(self.doc, self.node):self.node.end_byte])

    @functools.cached_property
    def short(self) -> str | None:
        return _short_form(self.doc, self.node)

    @property
    def text(self) -> str:
        return self.short if self.use_short and self.short is not None else self.full


def build_prompt(doc: Document, site: FunctionSite, count_tokens: Callable[[str], int], budget: int,
                 end_before_newline: bool = True) -> Prompt:
    """The prompt for ``site``, trimmed to ``budget`` tokens as counted by ``count_tokens``."""
    header, docstring_end = doc.offset_at(*site.header_start), doc.offset_at(*site.docstring_end)
    fn = _function_node(doc, header, docstring_end)
    chain: list[Node | None] = list(_scope_chain(fn)) if fn is not None else []
    chain_texts = [_header_text(doc, node) for node in chain if node is not None]
    if fn is None:
        chain_texts = _textual_chain(doc, site)
        chain = [None] * len(chain_texts)
    # Up to where the body goes: the docstring, plus a comment after it and the user's notes kept
    # above a stub (sites.py), which tell the model what to write.
    target = _clean(doc.data[header:doc.offset_at(*site.edit_start)])
    nodes = [n for n in chain if n is not None]
    innermost_class = next((n for n in reversed(nodes) if n.type == "class_definition"), None)
    outer = nodes[0] if nodes else fn
    pieces = _module_pieces(doc, outer, header) + (_member_pieces(doc, innermost_class, nodes, fn)
                                                 if innermost_class is not None else [])
    order = sorted(pieces, key=lambda p: _priority(p, header))

    def assemble(kept: list[_Piece]) -> str:
        module = sorted((p for p in kept if p.kind != "member"), key=lambda p: p.offset)
        members = sorted((p for p in kept if p.kind == "member"), key=lambda p: p.offset)
        parts = _join(module, "\n\n\n")
        for i, (node, text) in enumerate(zip(chain, chain_texts, strict=True)):
            parts += ("\n\n\n" if parts and i == 0 else "\n" if parts else "") + text
            if node is not None and node is innermost_class and members:
                parts += "\n" + _join(members, "\n\n") + "\n"
        if parts:
            parts += "\n\n\n" if not chain else "\n"
        return parts + target + ("" if end_before_newline else "\n")

    required = count_tokens(assemble([]))
    available = budget - required
    kept: list[_Piece] = []
    for piece in order:  # first pass: in priority order, in short form where there is one
        piece.use_short = piece.short is not None
        cost = count_tokens(piece.text) + 1
        if cost > available:
            break  # strictly by relevance: nothing less relevant jumps the queue
        kept.append(piece)
        available -= cost
    for piece in kept:  # second pass: widen short forms while the budget allows
        if piece.use_short:
            extra = count_tokens(piece.full) - count_tokens(piece.text)
            if extra <= available:
                piece.use_short = False
                available -= extra
    text = assemble(kept)
    tokens = count_tokens(text)
    while tokens > budget and kept:  # the per-piece counts were estimates: drop until it fits
        kept.pop()
        text = assemble(kept)
        tokens = count_tokens(text)
    kept_ids = {id(p) for p in kept}
    return Prompt(text=text, tokens=tokens, budget=budget, end_before_newline=end_before_newline,
                  included=[p.label + (" (signature)" if p.use_short else "") for p in kept],
                  dropped=[p.label for p in order if id(p) not in kept_ids])


def _clean(data: bytes) -> str:
    """Source text with ``\\n`` line ends (what the model was trained on)."""
    return decode(data).replace("\r\n", "\n").replace("\r", "\n")


def _priority(piece: _Piece, target: int) -> tuple[int, int]:
    rank = {"import": 0, "member": 1, "docstring": 2, "assignment": 2, "definition": 3}[piece.kind]
    return rank, abs(piece.offset - target) if rank in (1, 3) else piece.offset


def _join(pieces: list[_Piece], gap: str) -> str:
    out = ""
    for prev, piece in zip([None, *pieces], pieces, strict=False):
        if prev is not None:
            if prev.kind in _SIMPLE and piece.kind in _SIMPLE:
                out += "\n" if prev.kind == piece.kind else "\n\n"
            else:
                out += gap
        out += piece.text
    return out


def _function_node(doc: Document, header: int, end: int) -> Node | None:
    """The ``function_definition`` whose header line starts at byte ``header`` and whose docstring
    ends at byte ``end`` (None where the tree is broken)."""
    node = doc.tree.root_node.named_descendant_for_byte_range(end - 1, end)
    while node is not None and node.type != "function_definition":
        node = node.parent
    if node is None or _line_start(doc, _outer(node)) != header:
        return None
    return node


def _textual_chain(doc: Document, site: FunctionSite) -> list[str]:
    """Header lines of the enclosing scopes found by indentation alone (for broken trees), so
    that an indented function still reads as valid Python."""
    width = len(site.def_indent.encode())
    lines: list[str] = []
    line = site.header_start.line
    while width and line > 0:
        line -= 1
        text = doc.line_bytes(line)
        stripped = text.lstrip(b" \t\f")
        if not stripped or stripped.startswith(b"#") or len(text) - len(stripped) >= width:
            continue
        width = len(text) - len(stripped)
        if _SCOPE_LINE.match(stripped):
            lines.append(_clean(text))
    return lines[::-1]


def _scope_chain(fn: Node) -> list[Node]:
    """Enclosing class and function definitions of ``fn``, outermost first."""
    chain = []
    node = fn.parent
    while node is not None:
        if node.type in ("class_definition", "function_definition"):
            chain.append(node)
        node = node.parent
    return chain[::-1]


def _outer(node: Node) -> Node:
    """The decorated_definition wrapping ``node``, if any."""
    parent = node.parent
    return parent if parent is not None and parent.type == "decorated_definition" else node


def _line_start(doc: Document, node: Node) -> int:
    return doc.line_span(doc.line_of(node.start_byte))[0]


def _header_text(doc: Document, node: Node) -> str:
    """Decorators and header of a scope; a function's docstring too, if it opens the body."""
    end = _colon_end(node)
    body = node.child_by_field_name("body")
    if node.type == "function_definition" and body is not None and body.named_child_count:
        first = body.named_children[0]
        if first.type == "expression_statement" and first.named_children[0].type == "string":
            end = first.end_byte
    return _clean(doc.data[_line_start(doc, _outer(node)):end])


def _colon_end(node: Node) -> int:
    colon = next((c for c in node.children if c.type == ":"), None)
    return colon.end_byte if colon is not None else node.end_byte


def _short_form(doc: Document, node: Node) -> str | None:
    """A definition reduced to its header: ``def f(x) -> int: ...``."""
    inner = node.child_by_field_name("definition") if node.type == "decorated_definition" else node
    if inner is None or inner.type not in ("function_definition", "class_definition"):
        return None
    return _clean(doc.data[_line_start(doc, node):_colon_end(inner)]) + " ..."


def _stub_lines(doc: Document) -> set[int]:
    """Header lines of the other unwritten functions. They are left out of the context: they say
    little beyond their signature, and a prompt full of ``...``/``pass`` bodies makes the model
    answer with another stub (measured on the example project: 2 of 6 sites)."""
    return {s.header_start.line for s in find_sites(doc)}


def _module_pieces(doc: Document, exclude: Node | None, header: int) -> list[_Piece]:
    """Top-level imports, assignments and definitions, except the one holding the site."""
    skip = {exclude.id, _outer(exclude).id} if exclude is not None else set()
    stubs = _stub_lines(doc)
    pieces = []
    cursor = QueryCursor(load_query("context"))
    cursor.set_max_start_depth(0)  # every pattern is rooted at the module: do not search deeper
    for _, captures in cursor.matches(doc.tree.root_node):
        for kind, nodes in captures.items():
            for node in nodes:
                if node.id in skip or node.has_error or doc.line_of(node.start_byte) in stubs or (
                        node.start_byte <= header < node.end_byte):
                    continue
                pieces.append(_Piece(doc, node, kind))
    return pieces


def _member_pieces(doc: Document, cls: Node, chain: list[Node], fn: Node | None) -> list[_Piece]:
    """The members of ``cls`` other than the one holding the target function."""
    body = cls.child_by_field_name("body")
    if body is None:
        return []
    holders = {n.id for n in chain} | {_outer(n).id for n in chain}
    if fn is not None:
        holders |= {fn.id, _outer(fn).id}
    pieces = []
    seen_lines = set()
    stubs = _stub_lines(doc)
    for node in body.named_children:
        line = doc.line_of(node.start_byte)
        if node.id in holders or node.type == "comment" or node.has_error or line in seen_lines or line in stubs:
            continue
        seen_lines.add(line)
        pieces.append(_Piece(doc, node, "member"))
    return pieces


def _name(node: Node) -> str:
    inner = node.child_by_field_name("definition") if node.type == "decorated_definition" else node
    name = inner.child_by_field_name("name") if inner is not None else None
    if name is None:
        return decode((node.text or b"").split(b"\n", 1)[0][:40])
    return decode(name.text or b"")


def build_suffix(doc: Document, site: FunctionSite, count_tokens: Callable[[str], int], budget: int) -> str:
    """The code after the site's body, for fill-in-the-middle prompts: whole lines, nearest first,
    within ``budget`` tokens. It starts with the line break that follows the body (empty at the end
    of the file)."""
    rest = _clean(doc.data[doc.offset_at(*site.edit_end):])
    if budget <= 0 or not rest.strip():
        return ""
    lines = rest.split("\n")
    kept = [lines[0]]
    used = count_tokens(lines[0])
    for line in lines[1:]:
        used += count_tokens("\n" + line)
        if used > budget:
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n"
