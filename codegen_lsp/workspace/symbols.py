"""The definitions of one Python file, as the workspace index stores them: top-level functions and
classes, and the methods of top-level classes, each with its signature, docstring and source."""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from ..analysis.document import decode
from ..analysis.queries import new_parser

MAX_SOURCE_BYTES = 4000
"""A definition longer than this keeps its header and docstring only (``text`` is then truncated
at a line boundary): the prompt shows definitions, not whole modules."""


@dataclass(frozen=True)
class Symbol:
    """One definition in a workspace file."""

    path: str
    """Path relative to the workspace root, with forward slashes."""
    qualname: str
    """``func``, ``Class``, ``Class.method``."""
    kind: str
    """``function`` | ``class`` | ``method``."""
    line: int
    """0-based line of the ``def``/``class`` (or its first decorator)."""
    signature: str
    """``def name(args) -> ret:`` / ``class Name(Base):`` as written (one line per line of source)."""
    docstring: str
    text: str
    """The definition's source (at most ``MAX_SOURCE_BYTES``)."""

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]

    @property
    def key(self) -> str:
        return f"{self.path}::{self.qualname}"


def _docstring(block: Node | None) -> str:
    if block is None or not block.named_children:
        return ""
    first = block.named_children[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        raw = decode(first.named_children[0].text or b"")
        return raw.strip("rRbBuUfF").strip("\"'").strip()
    return ""


def _header(data: bytes, node: Node) -> str:
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    return decode(data[node.start_byte:end]).rstrip()


def _source(data: bytes, start: int, end: int, header: str, doc: str) -> str:
    text = decode(data[start:end])
    if len(text.encode("utf-8")) <= MAX_SOURCE_BYTES:
        return text
    short = header + ("\n    " + '"""' + doc + '"""' if doc else "") + "\n    ..."
    return short


def extract(path: str, data: bytes) -> list[Symbol]:
    """Every top-level function and class of ``data`` (a Python file) and the methods of its classes."""
    tree = new_parser().parse(data)
    out: list[Symbol] = []

    def visit(node: Node, scope: str) -> None:
        outer = node
        if node.type == "decorated_definition":
            inner = node.child_by_field_name("definition")
            if inner is None:
                return
            node = inner
        if node.type not in ("function_definition", "class_definition"):
            return
        name_node = node.child_by_field_name("name")
        if name_node is None:
            return
        name = decode(name_node.text or b"")
        body = node.child_by_field_name("body")
        doc = _docstring(body)
        header = _header(data, node)
        kind = "class" if node.type == "class_definition" else ("method" if scope else "function")
        qual = f"{scope}.{name}" if scope else name
        out.append(Symbol(path, qual, kind, outer.start_point.row, header, doc,
                          _source(data, outer.start_byte, outer.end_byte, header, doc)))
        if kind == "class" and not scope and body is not None:
            for child in body.named_children:
                visit(child, qual)

    for child in tree.root_node.named_children:
        visit(child, "")
    return out
