"""Workspace context in the real server: with ``workspaceContext`` on, the workspace folder is indexed
in the background (requests are answered meanwhile), and a site's prompt gets the definitions it
mentions from other files; a save re-indexes the file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from export.scripted import Rule, build_scripted_package
from tests.workspace.test_index import HEADER, MAIN, _workspace

from ._raw import RawServer
from ._support import SERVER_CMD


def _wait_for(s: RawServer, text: bytes, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while text not in bytes(s._err):
        assert time.monotonic() < end, f"never logged {text!r}: {bytes(s._err)[-2000:]!r}"
        time.sleep(0.05)


def test_the_server_indexes_the_workspace_and_uses_it_in_prompts(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    pkg = build_scripted_package(tmp_path / "pkg", [Rule(MAIN[:MAIN.index("\n    pass")], ["\n    return items[0]"])])
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    s = RawServer(SERVER_CMD, env=env)
    try:
        uri = (root / "shop" / "main.py").as_uri()
        s.send("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {},
                              "workspaceFolders": [{"uri": root.as_uri(), "name": "ws"}],
                              "initializationOptions": {"modelPath": str(pkg), "workspaceContext": "definitions"}})
        s.send("initialized", {}, request=False)
        s.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                         "text": MAIN}}, request=False)
        _wait_for(s, b"workspace index " + str(root).encode())
        line = HEADER.count("\n") + 4
        rid = s.send("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}})
        assert s.wait_reply(rid)["result"]["items"]
        _wait_for(s, b"workspace context ['definition:shop/money.py::parse_amount', 'definition:shop/money.py::Money']")
        # A new helper saved in another file is indexed and reaches the next prompt.
        (root / "shop" / "tax.py").write_text("def vat(cents: int) -> int:\n    return cents // 5\n")
        s.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": (root / "shop" / "tax.py").as_uri(), "type": 1}]},
               request=False)
        s.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
            {"text": MAIN.replace("list[Money]", "list[Money], vat")}]}, request=False)
        time.sleep(0.5)
        rid = s.send("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}})
        s.wait_reply(rid)
        _wait_for(s, b"'definition:shop/tax.py::vat'")
    finally:
        s.proc.kill()
