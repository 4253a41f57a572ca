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


async def inline_parses_through_the_server(pkg: Path, tmp_path: Path, ready: str) -> None:
    """Start the real ``codegen-lsp serve`` with the package at ``pkg``, ask for inline completions at the
    stub of LIVE_DOC: every offered item must leave a file that parses (whatever the model writes), and
    the server's log must say ``ready`` (the package's own engine was loaded)."""
    from typing import Any

    from pytest_lsp import ClientServerConfig, client_capabilities

    client: Any = await ClientServerConfig(server_command=SERVER_CMD).start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"modelPath": str(pkg), "candidates": 3}))
        uri = (tmp_path / "a.py").as_uri()
        open_doc(client, uri, LIVE_DOC)
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        items = [] if result is None else result.items if isinstance(result, types.InlineCompletionList) else result
        for it in items:
            assert it.range is not None and isinstance(it.insert_text, str)
            ast.parse(apply_edits(LIVE_DOC, [types.TextEdit(range=it.range, new_text=it.insert_text)]))
        logs = [m.message for m in client.log_messages]
        assert any(ready in m for m in logs), logs
        await client.shutdown_session()
    finally:
        await client.stop()
