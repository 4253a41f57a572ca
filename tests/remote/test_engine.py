"""The language server against a real OpenAI-compatible engine: llama.cpp's server (llama-cpp-python)
on 127.0.0.1 serving the default model's GGUF. Opt-in: ``make test-remote`` (first run: builds
llama-cpp-python, ~6 min on 2 cores, and fetches the GGUF if absent).

What a model writes is not asserted (only that what is offered was generated and parses); the
engine's own log is the witness that a cancelled stream is dropped and that requests reached it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import converters, types

from tests.lsp._raw import RawServer
from tests.lsp._support import SERVER_CMD, TINY_DOC, apply_edits, parses

from ._engine import LlamaServer, default_gguf

pytestmark = pytest.mark.remote

KEY_ENV = "CODEGEN_TEST_ENGINE_KEY"
LONG_DOC = '''def state_capitals():
    """Return a dict mapping each of the 50 US state names to the name of its capital city."""
    pass
'''
"""A body that takes hundreds of tokens whatever the model writes: a cancel lands mid-stream."""


@pytest.fixture(scope="module")
def gguf() -> Path:
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"llama-cpp-python[server] is not installed ({exc}); run `make test-remote`")
    return default_gguf()


def _engine(gguf: Path, log: Path) -> LlamaServer:
    engine = LlamaServer(gguf, log, api_key=secrets.token_hex(16))
    try:
        engine.wait_ready()
    except BaseException:
        engine.stop()
        raise
    return engine


@pytest.fixture(scope="module")
def engine(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = _engine(gguf, tmp_path_factory.mktemp("engine") / "llama.log")
    yield server
    server.stop()


def _start(engine: LlamaServer, tmp_path: Path, docs: dict[str, str], **options: Any) -> RawServer:
    s = RawServer(SERVER_CMD, env={**os.environ, KEY_ENV: engine.api_key})
    opts = {"modelPath": str(tmp_path / "no-local-package"), "backend": "openai", "endpoint": engine.url,
            "apiKeyEnv": KEY_ENV, "localFallback": False, "timeBudgetMs": 60000, **options}
    s.send("initialize", {"processId": None, "capabilities": {}, "initializationOptions": opts})
    s.send("initialized", {}, request=False)
    for uri, text in docs.items():
        s.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                         "text": text}}, request=False)
    return s


def _complete(s: RawServer, uri: str, line: int) -> int | None:
    return s.send("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}})


def _finish(s: RawServer) -> tuple[list[dict[str, Any]], str]:
    s.send("shutdown")
    s.send("exit", request=False)
    frames, err, rc = s.finish(timeout=60)
    assert rc == 0, err.decode(errors="replace")[-2000:]
    return frames, err.decode(errors="replace")


def _applied(text: str, item: dict[str, Any]) -> str:
    conv = converters.get_converter()
    edits = [item["textEdit"], *(item.get("additionalTextEdits") or [])]
    return apply_edits(text, [conv.structure(e, types.TextEdit) for e in edits])


def test_bodies_are_generated_checked_and_offered_through_the_engine(engine: LlamaServer, tmp_path: Path) -> None:
    posts = engine.log_text().count("POST /v1/completions")
    s = _start(engine, tmp_path, {"file:///t.py": TINY_DOC}, candidates=2, temperature=0.7, maxTokens=48)
    replies = [s.wait_reply(_complete(s, "file:///t.py", line), timeout=300) for line in (5, 10)]
    frames, log = _finish(s)
    items = [item for r in replies for item in r["result"]["items"]]
    assert items, "no body offered for two one-line functions"
    assert all(parses(_applied(TINY_DOC, item)) for item in items)
    ready = [f["params"]["message"] for f in frames if f.get("method") == "codegenLsp/status"
             and f["params"]["state"] == "ready"]
    assert ready and f"on {engine.url}" in ready[0]
    assert not [f for f in frames if f.get("method") == "window/showMessage"]
    # probe + greedy and sampled candidate for each site, all through the engine
    assert engine.log_text().count("POST /v1/completions") >= posts + 1 + 2 * 2
    assert log.count(" valid of 2 in ") == 2


def test_cancel_mid_stream_drops_the_engine_connection(engine: LlamaServer, tmp_path: Path) -> None:
    s = _start(engine, tmp_path, {"file:///long.py": LONG_DOC}, candidates=1, maxTokens=600, timeBudgetMs=60000)
    try:
        s.wait_reply(s.send("workspace/executeCommand", {"command": "codegen-lsp.reloadModel"}), timeout=120)
        before = engine.log_text()
        rid = _complete(s, "file:///long.py", 2)
        # uvicorn logs the POST when the streamed response starts: the engine is at work on it
        engine.wait_log("POST /v1/completions", before.count("POST /v1/completions") + 1)
        s.send("$/cancelRequest", {"id": rid}, request=False)
        reply = s.wait_reply(rid, timeout=60)
        assert reply.get("error", {}).get("code") == -32800, reply  # cancelled, not finished
        engine.wait_log("Disconnected from client", before.count("Disconnected from client") + 1, timeout=60)
    finally:
        _finish(s)


def test_engine_killed_mid_session_gives_a_clear_status_and_no_crash(gguf: Path, tmp_path: Path) -> None:
    engine = _engine(gguf, tmp_path / "llama.log")
    try:
        s = _start(engine, tmp_path, {"file:///long.py": LONG_DOC, "file:///t.py": TINY_DOC}, candidates=1,
                   maxTokens=600, timeBudgetMs=60000)
        s.wait_reply(s.send("workspace/executeCommand", {"command": "codegen-lsp.reloadModel"}), timeout=120)
        posts = engine.log_text().count("POST /v1/completions")
        rid = _complete(s, "file:///long.py", 2)
        engine.wait_log("POST /v1/completions", posts + 1)
        engine.kill()
        assert s.wait_reply(rid, timeout=60)["result"]["items"] == []
        again = s.wait_reply(_complete(s, "file:///t.py", 5), timeout=60)  # still serving
        assert again["result"]["items"] == []
        frames, _ = _finish(s)
    finally:
        engine.stop()
    shown = [f["params"] for f in frames if f.get("method") == "window/showMessage"]
    assert len(shown) == 1 and shown[0]["type"] == 1, shown
    assert shown[0]["message"].startswith(f"remote backend: {engine.url} ")
    states = [f["params"]["state"] for f in frames if f.get("method") == "codegenLsp/status"]
    assert states[-1] == "error"
