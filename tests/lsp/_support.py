"""Helpers for the protocol tests: an independent edit applier and document builders."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from lsprotocol import types

SERVER_CMD = [sys.executable, "-m", "codegen_lsp", "--log-level", "debug", "serve"]

TINY_DOC = '''import os


def get_total(total, value):
    """Return the sum of total and value."""
    pass


def make_score(score, size):
    """Return score multiplied by size."""
    ...
'''

# broken_ratio: the scripted model writes only invalid bodies for it (tests/scripted_rules.py).
PARTIAL_DOC = TINY_DOC + '''

def broken_ratio(total, count):
    """Return total divided by count."""
    pass
'''

LIVE_DOC = '''def check_value(value, size):
    """Return True if value is greater than size."""
    '''


def offset(text: str, pos: types.Position) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(line) for line in lines[: pos.line]) + pos.character  # ASCII test documents


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply non-overlapping edits (bottom-up), written independently of the server's code."""
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        a, b = offset(text, e.range.start), offset(text, e.range.end)
        text = text[:a] + e.new_text + text[b:]
    return text


def parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def open_doc(client, uri: str, text: str, version: int = 1) -> None:  # type: ignore[no-untyped-def]
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )


def uri_for(tmp: Path, name: str = "example.py") -> str:
    return (tmp / name).as_uri()
