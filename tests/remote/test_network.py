"""Which connections the real server process opens, recorded by an audit hook (``_netaudit.py``):
none at all in the default configuration, and only the configured endpoint with the remote backend
(whose failure is one clear message, never a crash)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.lsp._raw import RawServer
from tests.lsp._support import TINY_DOC

from .conftest import audited_server, connections

SECRET = "sk-test-8d2e6a41-never-shown"


def _session(s: RawServer, options: dict[str, Any], sites: int = 2) -> tuple[list[dict[str, Any]], bytes]:
    """Initialize, open TINY_DOC, ask for completions at its stubs, shut down: (replies + frames, stderr)."""
    s.send("initialize", {"processId": None, "capabilities": {}, "initializationOptions": options})
    s.send("initialized", {}, request=False)
    s.send("textDocument/didOpen", {"textDocument": {"uri": "file:///t.py", "languageId": "python", "version": 1,
                                                     "text": TINY_DOC}}, request=False)
    replies = []
    for line in (5, 10)[:sites]:
        rid = s.send("textDocument/completion", {"textDocument": {"uri": "file:///t.py"},
                                                 "position": {"line": line, "character": 4}})
        replies.append(s.wait_reply(rid))
    s.send("shutdown")
    s.send("exit", request=False)
    frames, err, rc = s.finish()
    assert rc == 0
    return replies + frames, err


def test_default_configuration_opens_no_network_connection(scripted_pkg: Path, tmp_path: Path) -> None:
    net = tmp_path / "net.log"
    frames, _ = _session(audited_server(net), {"modelPath": str(scripted_pkg)})
    assert [len(f["result"]["items"]) for f in frames[:2]] == [1, 1]  # bodies were generated
    assert connections(net) == []


def test_remote_backend_connects_only_to_its_endpoint_and_reports_it_down_once(
        closed_port: int, tmp_path: Path) -> None:
    net = tmp_path / "net.log"
    s = audited_server(net, env={"TEAM_KEY": SECRET})
    options = {"modelPath": str(tmp_path / "absent"), "backend": "openai", "localFallback": False,
               "endpoint": f"http://127.0.0.1:{closed_port}/v1", "apiKeyEnv": "TEAM_KEY"}
    frames, err = _session(s, options)
    assert [f["result"]["items"] for f in frames[:2]] == [[], []]  # answered, empty: no crash
    shown = [f["params"] for f in frames if f.get("method") == "window/showMessage"]
    assert shown == [{"type": 1, "message": f"remote backend: http://127.0.0.1:{closed_port}/v1 is unreachable: "
                                            "connection refused"}]
    attempts = connections(net)
    assert attempts and all(a in (f"socket.getaddrinfo ('127.0.0.1', {closed_port})",
                                  f"socket.connect ('127.0.0.1', {closed_port})") for a in attempts), attempts
    assert b"remote backend:" in err and SECRET.encode() not in err  # the debug log names the failure, not the key
    assert all(SECRET not in str(f) for f in frames)
