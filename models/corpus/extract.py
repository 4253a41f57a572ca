"""Cut (prompt, target) pairs out of Python source with tree-sitter, CodeSearchNet style.

A function qualifies when it opens with a docstring whose first paragraph has a few words, its body
has ``MIN_BODY_LINES..MAX_BODY_LINES`` lines of code (not blank, not comment-only), it parses without errors, and it is neither a
test nor a dunder method. Rejections are counted by reason so the build can report them.
"""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources

import tree_sitter_python
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from models.prompt_format import PromptFormatError, cut

MIN_DOC_WORDS = 3
MAX_DOC_WORDS = 256
MAX_DOC_LINES = 60
MIN_BODY_LINES = 3
MAX_BODY_LINES = 60
MAX_PROMPT_CHARS = 4000


@dataclass
class FunctionPair:
    """One extracted function; ``prompt``/``target`` follow ``models.prompt_format``."""

    name: str
    signature: str
    """The definition as written, decorators included, up to the colon that opens the body."""
    docstring: str
    """The docstring's value, cleaned with ``inspect.cleandoc``."""
    prompt: str
    target: str
    line: int
    """1-based line of the definition (first decorator) in the file."""


@cache
def _language() -> Language:
    return Language(tree_sitter_python.language())


@cache
def _query() -> Query:
    text = resources.files("models.corpus").joinpath("queries/functions.scm").read_text(encoding="utf-8")
    return Query(_language(), text)


def _docstring_value(literal: str) -> str | None:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return inspect.cleandoc(value) if isinstance(value, str) else None


def _reject(func: Node, doc_node: Node, source: bytes) -> str | None:
    """Why a function is not admitted, or None. Cheap checks first."""
    name_node = func.child_by_field_name("name")
    name = name_node.text.decode("utf-8", "replace") if name_node and name_node.text else ""
    if name.lower().startswith("test"):
        return "test_function"
    if name.startswith("__") and name.endswith("__"):
        return "dunder"
    if func.has_error:
        return "parse_error"
    body = func.child_by_field_name("body")
    if body is None or len(body.named_children) < 2:
        return "body_lines"
    newline = source.find(b"\n", doc_node.end_byte)
    if newline < 0 or source[doc_node.end_byte : newline].strip():
        return "code_after_docstring"
    return None


def extract_pairs(text: str, rejects: Counter[str] | None = None) -> list[FunctionPair]:
    """All qualifying functions of one file (``text`` with ``\\n`` line endings)."""
    rejects = rejects if rejects is not None else Counter()
    source = text.encode("utf-8")
    if len(source) != len(text):  # tree-sitter offsets are bytes; map them back only when needed
        byte_to_char = _byte_to_char_map(text)
    else:
        byte_to_char = None
    tree = Parser(_language()).parse(source)
    out: list[FunctionPair] = []
    for _, caps in QueryCursor(_query()).matches(tree.root_node):
        func, doc_node = caps["func"][0], caps["doc"][0]
        reason = _reject(func, doc_node, source)
        if reason:
            rejects[reason] += 1
            continue
        outer = func.parent if func.parent is not None and func.parent.type == "decorated_definition" else func
        line_start = source.rfind(b"\n", 0, outer.start_byte) + 1
        if source[line_start : outer.start_byte].strip():
            rejects["not_at_line_start"] += 1
            continue
        doc_text = source[doc_node.start_byte : doc_node.end_byte].decode("utf-8")
        doc = _docstring_value(doc_text)
        if doc is None:
            rejects["docstring_not_literal"] += 1
            continue
        words = doc.split("\n\n", 1)[0].split()
        if not MIN_DOC_WORDS <= len(words) <= MAX_DOC_WORDS or doc.count("\n") >= MAX_DOC_LINES:
            rejects["docstring_length"] += 1
            continue

        def at(b: int) -> int:
            return byte_to_char[b] if byte_to_char is not None else b

        try:
            pair = cut(text, at(line_start), at(doc_node.end_byte), at(func.end_byte))
        except PromptFormatError:
            rejects["format"] += 1
            continue
        # Comment-only lines do not count: a body must hold MIN_BODY_LINES lines of code.
        body_lines = sum(1 for ln in pair.target.split("\n") if ln.strip() and not ln.lstrip().startswith("#"))
        if not MIN_BODY_LINES <= body_lines <= MAX_BODY_LINES:
            rejects["body_lines"] += 1
            continue
        if len(pair.prompt) > MAX_PROMPT_CHARS:
            rejects["prompt_length"] += 1
            continue
        body = func.child_by_field_name("body")
        assert body is not None
        sig = text[at(line_start) : at(body.start_byte)].rstrip()
        name_node = func.child_by_field_name("name")
        name = name_node.text.decode("utf-8") if name_node and name_node.text else ""
        out.append(FunctionPair(name, sig, doc, pair.prompt, pair.target, outer.start_point.row + 1))
        rejects["kept"] += 1
    return out


def _byte_to_char_map(text: str) -> list[int]:
    """Index = byte offset into ``text.encode()``, value = character offset."""
    mapping: list[int] = []
    for i, ch in enumerate(text):
        mapping.extend([i] * len(ch.encode("utf-8")))
    mapping.append(len(text))
    return mapping
