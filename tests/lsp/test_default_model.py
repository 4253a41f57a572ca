"""The real server on the embedded default model (the catalog default): what a user gets. Nothing
here depends on what the model writes: whatever it offers must parse, and the prefix cache must
serve a re-request after an edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._raw import RawServer
from ._support import SERVER_CMD, parses

pytestmark = pytest.mark.default_model

DOC = '''import re


def is_palindrome(text: str) -> bool:
    """Return True if text reads the same forwards and backwards, ignoring case."""
    '''


def _apply(text: str, edits: list[dict]) -> str:  # type: ignore[type-arg]
    lines = text.splitlines(keepends=True)

    def off(p: dict) -> int:  # type: ignore[type-arg]
        return sum(len(x) for x in lines[: p["line"]]) + p["character"]

    for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
        a, b = off(e["range"]["start"]), off(e["range"]["end"])
        text = text[:a] + e["newText"] + text[b:]
    return text


def test_default_model_completion_and_prefix_cache(default_pkg: Path) -> None:
    s = RawServer(SERVER_CMD)
    try:
        s.send("initialize", {"processId": None, "capabilities": {},
                              "initializationOptions": {"modelPath": str(default_pkg), "candidates": 2}})
        s.send("initialized", {}, request=False)
        s.send("textDocument/didOpen", {"textDocument": {"uri": "file:///p.py", "languageId": "python",
                                                         "version": 1, "text": DOC}}, request=False)
        pos = {"line": 5, "character": 4}
        rid = s.send("textDocument/completion", {"textDocument": {"uri": "file:///p.py"}, "position": pos})
        items = s.wait_reply(rid, timeout=120)["result"]["items"]
        for item in items:  # how many depends on the model; every one offered must parse
            new = _apply(DOC, [item["textEdit"], *(item.get("additionalTextEdits") or [])])
            assert parses(new), new
            assert new.count("def is_palindrome") == 1
        # Editing the docstring: the new prompt shares everything before the edit, so the prefix
        # cache serves that part and only the rest is prefilled.
        doc_line = DOC.splitlines()[4]
        at = {"line": 4, "character": len(doc_line) - 3}
        s.send("textDocument/didChange", {"textDocument": {"uri": "file:///p.py", "version": 2}, "contentChanges": [
            {"range": {"start": at, "end": at}, "text": " (spaces count)"}]}, request=False)
        rid2 = s.send("textDocument/completion", {"textDocument": {"uri": "file:///p.py"}, "position": pos})
        s.wait_reply(rid2, timeout=120)
        s.send("shutdown")
        s.send("exit", request=False)
        _frames, err, rc = s.finish()
        assert rc == 0
        log = err.decode(errors="replace")
        assert "from prefix cache" in log
        cached = [int(line.split(", ")[-1].split(" from prefix cache")[0])
                  for line in log.splitlines() if "from prefix cache" in line]
        assert len(cached) >= 2 and cached[-1] > 0, log[-2000:]
    finally:
        s.proc.kill()
