"""Cancellation and supersession in the real server: a queued request cancelled with
$/cancelRequest answers RequestCancelled, a newer request for the same document replaces an older
one, and the server keeps serving afterwards."""

from __future__ import annotations

from pathlib import Path

from ._raw import RawServer
from ._support import LIVE_DOC, SERVER_CMD

STUBS = "".join(f'def get_value{i}(value, size):\n    """Return value multiplied by size."""\n    pass\n\n\n'
                for i in range(40))


def _start(pkg: Path) -> RawServer:
    s = RawServer(SERVER_CMD)
    s.send("initialize", {"processId": None, "capabilities": {}, "initializationOptions": {"modelPath": str(pkg)}})
    s.send("initialized", {}, request=False)
    for uri, text in (("file:///stubs.py", STUBS), ("file:///live.py", LIVE_DOC)):
        s.send("textDocument/didOpen",
               {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}, request=False)
    return s


def _complete(s: RawServer) -> int | None:
    return s.send("textDocument/completion",
                  {"textDocument": {"uri": "file:///live.py"}, "position": {"line": 2, "character": 4}})


def _resolve_all(s: RawServer) -> int | None:
    return s.send("codeAction/resolve", {
        "title": "Generate bodies for all stubs in file (40)", "kind": "refactor.rewrite.codegen",
        "data": {"uri": "file:///stubs.py", "version": 1, "line": -1, "all": True}})


def test_cancel_request_while_queued_behind_other_work(scripted_pkg: Path) -> None:
    s = _start(scripted_pkg)
    try:
        # Occupy the inference worker: resolving "all stubs" generates 40 bodies. A second one queues
        # its sites behind the first's (explicit work is first come, first served).
        busy = _resolve_all(s)
        rid = _resolve_all(s)
        s.send("$/cancelRequest", {"id": rid}, request=False)
        reply = s.wait_reply(rid)
        assert reply.get("error", {}).get("code") == -32800, reply
        done = s.wait_reply(busy, timeout=120)
        edits = done["result"]["edit"]["documentChanges"][0]["edits"]
        assert len(edits) == 40
        after = s.wait_reply(_complete(s))
        assert after["result"]["items"], "the server keeps serving after a cancellation"
    finally:
        s.proc.kill()


def test_newer_request_for_the_same_document_is_answered(scripted_pkg: Path) -> None:
    # Which of two back-to-back requests is superseded depends on timing (the older may already be
    # done); tests/lsp/test_scheduler.py pins the rule down. Here: both answered, the newer with items.
    s = _start(scripted_pkg)
    try:
        busy = _resolve_all(s)
        old, new = _complete(s), _complete(s)
        old_reply, new_reply = s.wait_reply(old), s.wait_reply(new)
        assert isinstance(old_reply["result"]["items"], list)
        assert new_reply["result"]["items"]
        s.wait_reply(busy, timeout=120)
    finally:
        s.proc.kill()


def test_interactive_requests_never_cut_a_generate_all_short(scripted_pkg: Path) -> None:
    s = _start(scripted_pkg)
    try:
        busy = _resolve_all(s)
        # Inline/completion requests on the same file while it runs (VS Code sends them on cursor moves).
        for line in (2, 7, 12, 17):
            s.send("textDocument/completion", {"textDocument": {"uri": "file:///stubs.py"},
                                               "position": {"line": line, "character": 4}})
        done = s.wait_reply(busy, timeout=120)
        assert len(done["result"]["edit"]["documentChanges"][0]["edits"]) == 40
    finally:
        s.proc.kill()
