"""Turning model continuations into function bodies that are guaranteed to parse.

Body form: the lines after the docstring, each with its full indentation, ``\\n`` line ends, no
leading newline and no trailing newline. :func:`normalize_continuation` turns raw model text (which
starts with ``"\\n"`` when the prompt ended right after the docstring) into that form.

A body is checked in a small stand-in for its context: the function's decorators, signature and
docstring as in the file (under ``if 1:`` when the def is indented, which makes any indentation
legal for it), then the body. The stand-in is parsed by tree-sitter (no ERROR or MISSING node) and
by CPython's parser (``ast.parse``; tree-sitter accepts some things CPython does not, such as
``print x`` or ``0777``), and must hold exactly the one function: a dedented line would fall
outside it. Only parsing happens; generated code is never compiled or executed.
"""

from __future__ import annotations

import ast
import codeop
import threading
from dataclasses import dataclass

from tree_sitter import Node, Parser

from .document import Document, Position, decode, encode
from .queries import new_parser
from .sites import FunctionSite

_INCOMPLETE_FLAGS: int = getattr(codeop, "PyCF_ALLOW_INCOMPLETE_INPUT", 0)
_DONT_IMPLY_DEDENT: int = getattr(codeop, "PyCF_DONT_IMPLY_DEDENT", 0x200)
_WRAPPER = "if 1:\n"
_MAX_PREFIX_TRIES = 12
_local = threading.local()


@dataclass(frozen=True)
class BodyCheck:
    """The verdict on one body."""

    ok: bool
    """The whole body is valid and non-trivial."""
    body: str | None
    """The body if ok, else the longest valid non-trivial prefix of whole statements, else None."""
    reason: str
    """Why the whole body was refused (empty when ok)."""

    @property
    def truncated(self) -> bool:
        return self.body is not None and not self.ok


@dataclass(frozen=True)
class Candidate:
    """A checked body ready to offer."""

    body: str
    score: float
    truncated: bool = False
    """The model's text went bad part-way; ``body`` is its longest valid prefix."""
    partial: bool = False
    """Decoding was stopped (time budget, token limit) before the model finished: the body parses
    but may be incomplete. Ranked below finished bodies."""


def _parser() -> Parser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = new_parser()
    return parser


def _split(raw_text: str) -> list[str]:
    """Lines of a continuation, without the rest of the docstring line when the text starts
    with a line break (the ``end_before_newline`` form)."""
    text = raw_text.replace("\r\n", "\n").replace("\r", "\n")
    first = text.find("\n")
    if first >= 0 and not text[:first].strip():
        text = text[first + 1:]
    return text.split("\n")


def _dedented(line: str, def_indent: str) -> bool:
    """A non-blank line not indented deeper than the ``def`` ends the function."""
    ws = line[: len(line) - len(line.lstrip(" \t\f"))]
    return bool(line.strip()) and not (ws.startswith(def_indent) and len(ws) > len(def_indent))


def continuation_complete(site: FunctionSite, raw_text: str) -> bool:
    """True once the model has written a non-blank line dedented to or past the ``def``: the
    body is over (truncate there; :func:`normalize_continuation` does)."""
    return any(_dedented(line, site.def_indent) for line in _split(raw_text))


def normalize_continuation(site: FunctionSite, raw_text: str) -> str:
    """Raw model continuation to body form: line ends normalized, leading blank lines and the
    stop rule's dedented tail removed, trailing blank lines dropped. Idempotent on bodies."""
    lines: list[str] = []
    for line in _split(raw_text):
        if not lines and not line.strip():
            continue
        if _dedented(line, site.def_indent):
            break
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    if lines:
        lines[-1] = lines[-1].rstrip()
    return "\n".join(lines)


def _header(doc: Document, site: FunctionSite) -> str:
    """The stand-in's text before the body: wrapper, decorators, signature, docstring."""
    data = doc.data[doc.offset_at(*site.header_start):doc.offset_at(*site.edit_start)]
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n")
    return (_WRAPPER if site.def_indent else "") + text


def _first_error(node: Node) -> Node | None:
    """The first ERROR or MISSING node under ``node`` in document order."""
    while True:
        if node.is_error or node.is_missing:
            return node
        child = next((c for c in node.children if c.has_error or c.is_missing), None)
        if child is None:
            return node if node.has_error else None
        node = child


def _verdict(header: str, body: str) -> tuple[int | None, str, bool]:
    """(first bad body line or None, reason, trivial) for ``body`` under ``header``.

    The bad line bounds the prefix search: CPython's is precise (an unclosed bracket is reported
    where it opens); tree-sitter's is used only where CPython accepts and tree-sitter does not.
    """
    source = f"{header}\n{body}\n"
    base = header.count("\n") + 1
    n_lines = body.count("\n") + 1
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        line = getattr(e, "lineno", None) or base + n_lines
        return max(line - 1 - base, 0), f"line {max(line - base, 1)}: {getattr(e, 'msg', None) or e}", False
    root = _parser().parse(encode(source)).root_node
    if root.has_error:
        bad = _first_error(root)
        row = bad.start_point.row - base if bad is not None else -1
        what = f"missing {bad.type}" if bad is not None and bad.is_missing else "syntax error"
        return (row if row >= 0 else n_lines), f"tree-sitter: {what} at body line {row + 1}", False
    container: list[ast.stmt] = module.body
    if header.startswith(_WRAPPER):
        wrapper = module.body[0] if len(module.body) == 1 else None
        container = wrapper.body if isinstance(wrapper, ast.If) and not wrapper.orelse else []
    if len(container) != 1 or not isinstance(container[0], ast.FunctionDef | ast.AsyncFunctionDef):
        fn = next(n for n in ast.walk(module) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        end = (fn.end_lineno or base) - base  # the first body line past the function's end
        return max(end, 0), "the body leaves the function (wrong indentation)", False
    return None, "", all(_trivial(s) for s in container[0].body[1:])


def _trivial(statement: ast.stmt) -> bool:
    """``pass``, ``...``, a bare string or ``raise NotImplementedError``: not worth offering."""
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return statement.value.value is Ellipsis or isinstance(statement.value.value, str)
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        exc = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _statement_starts(lines: list[str], body_indent: str) -> list[int]:
    """Indices of lines that open a top-level body statement (the prefix boundaries)."""
    n = len(body_indent)
    return [i for i, line in enumerate(lines)
            if line.startswith(body_indent) and line[n:n + 1].strip() and line[n] != "#"]


def check_body(doc: Document, site: FunctionSite, body: str) -> BodyCheck:
    """Accept ``body`` (body form; leading blank lines are tolerated) if it parses in place and is
    not trivial; otherwise offer its longest valid, non-trivial prefix of whole statements."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    lines = body.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return BodyCheck(False, None, "empty body")
    first_code = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
    if first_code and not (first_code.startswith(site.body_indent)
                           and not first_code[len(site.body_indent):][:1].isspace()):
        return BodyCheck(False, None, "the first statement is not at the docstring's indentation")
    header = _header(doc, site)
    body = "\n".join(lines)
    error_line, reason, trivial = _verdict(header, body)
    if error_line is None:
        return BodyCheck(not trivial, None if trivial else body, "trivial body" if trivial else "")
    tries = 0
    for end in sorted({*_statement_starts(lines, site.body_indent), error_line}, reverse=True):
        if end == 0 or end > error_line or tries >= _MAX_PREFIX_TRIES:
            continue
        tries += 1
        prefix = "\n".join(lines[:end]).rstrip("\n \t")
        bad, _, trivial = _verdict(header, prefix)
        if bad is None:
            return BodyCheck(False, None if trivial else prefix, reason)
    return BodyCheck(False, None, reason)


def _dedup_key(body: str) -> str:
    return "\n".join(line.rstrip() for line in body.split("\n"))


def rank_candidates(doc: Document, site: FunctionSite, candidates: list[tuple[str, float]]) -> list[Candidate]:
    """Check each (raw continuation or body, model score); keep the valid bodies (or their valid
    prefixes), one per distinct text with its best score, best first (whole bodies before
    truncated ones at equal score)."""
    return rank_with_refusals(doc, site, candidates)[0]


def rank_with_refusals(
    doc: Document, site: FunctionSite, candidates: list[tuple[str, float]], cut_short: list[bool] | None = None
) -> tuple[list[Candidate], list[str]]:
    """:func:`rank_candidates` plus, for every candidate that yielded no body at all, why the
    grammar check refused it (in candidate order), so a caller can tell the user. ``cut_short``
    marks candidates whose decoding was stopped before the model finished (partial bodies)."""
    best: dict[str, Candidate] = {}
    refused: list[str] = []
    for i, (text, score) in enumerate(candidates):
        verdict = check_body(doc, site, normalize_continuation(site, text))
        if verdict.body is None:
            refused.append(verdict.reason or "trivial body")
            continue
        key = _dedup_key(verdict.body)
        partial = bool(cut_short and cut_short[i])
        if key not in best or (partial, -score) < (best[key].partial, -best[key].score):
            best[key] = Candidate(verdict.body, score, verdict.truncated, partial)
    return sorted(best.values(), key=lambda c: (c.partial, -c.score, c.truncated)), refused


class IncrementalBodyCheck:
    """Grammar-constrained decoding: ``viable(text_so_far)`` at each newline says whether the
    candidate can still become a valid body; stop sampling it when it says False.

    Only whole lines are judged. CPython's parser runs in its "incomplete input" mode (the one the
    REPL uses to decide whether to print ``...``), so an open block (``if x:``), an open bracket or
    string, a ``try:`` still waiting for ``except`` all stay viable, while a line that no
    continuation can repair (``x = = 1``, a bad dedent, an unterminated one-line string) is not.
    On Pythons without that mode (3.10) only the indentation of the first line is judged.
    """

    def __init__(self, doc: Document, site: FunctionSite) -> None:
        self._doc = doc
        self._site = site
        self._header = _header(doc, site)

    def viable(self, raw_text_so_far: str) -> bool:
        site = self._site
        if continuation_complete(site, raw_text_so_far):
            return check_body(self._doc, site, normalize_continuation(site, raw_text_so_far)).body is not None
        lines = _split(raw_text_so_far)[:-1]  # the last line is still being written
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            return True
        first_code = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
        if first_code and not (first_code.startswith(site.body_indent)
                               and not first_code[len(site.body_indent):][:1].isspace()):
            return False
        if not _INCOMPLETE_FLAGS:
            return True
        source = self._header + "\n" + "\n".join(lines) + "\n"
        flags = ast.PyCF_ONLY_AST | _INCOMPLETE_FLAGS | _DONT_IMPLY_DEDENT
        try:
            compile(source, "<candidate>", "exec", flags, dont_inherit=True)
        except SyntaxError as e:
            return "incomplete input" in str(e.msg) or type(e).__name__ == "_IncompleteInputError"
        except (ValueError, RecursionError, MemoryError):
            return False
        return True


def body_edit(doc: Document, site: FunctionSite, body: str) -> tuple[Position, Position, str]:
    """The text edit that puts ``body`` in place: (start, end, new text), new text being the
    document's line break plus the body with the document's line breaks."""
    newline = doc.newline
    return site.edit_start, site.edit_end, newline + body.replace("\n", newline)


def splice(doc: Document, site: FunctionSite, body: str) -> str:
    """The document text with ``body`` in place."""
    _, _, new_text = body_edit(doc, site, body)
    data = doc.data
    start, end = doc.offset_at(*site.edit_start), doc.offset_at(*site.edit_end)
    return decode(data[:start] + encode(new_text) + data[end:])
