"""VS Code (code-server 4.100.3 = VS Code 1.100.3) with the packaged extension, driven by headless
Chromium: type a function signature and docstring, take the ghost text's first word with Ctrl+Right
(partial accept), accept the rest with Tab, save, and check that the saved file holds the whole body
and that the acceptance stats counted it; then run the extension's "Generate Bodies for All Stubs in
File" command on a second file."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import CODE_SERVER_CACHE, is_stub, run_or_fail

HERE = Path(__file__).resolve().parent
STUB_SOURCE = 'def scale(value, size):\n    """Return value multiplied by size."""\n\n\ndef keep(x):\n    return x\n'
SIGNATURE = "def add(a, b):"
DOCSTRING = '"""Return the sum of a and b."""'

# Settings that keep the run deterministic: no suggest widget competing for Tab, no AI/chat
# features, no quote auto-closing while typing the docstring.
EDITOR_SETTINGS = {
    "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
    "editor.suggestOnTriggerCharacters": False,
    "editor.inlineSuggest.enabled": True,
    "editor.autoClosingQuotes": "never",
    "editor.autoClosingBrackets": "never",
    "editor.autoSurround": "never",
    "chat.disableAIFeatures": True,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "git.enabled": False,
    "files.autoSave": "off",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"code-server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"code-server did not answer {url}/healthz in {timeout} s:\n{log.read_text()[-4000:]}")


@pytest.fixture
def code_server(
    tmp_path: Path,
    code_server_bin: Path,
    vsix: Path,
    server_command: list[str],
    editor_model_dir: Path,
    xdg_home: dict[str, str],
    artifacts_dir: Path,
) -> Iterator[tuple[str, Path]]:
    """A code-server with the extension installed and settings pointing at the real server; yields
    (url, workspace). Stopped as a whole process group (its file watcher is a child)."""
    user_data, extensions, workspace = tmp_path / "user-data", tmp_path / "extensions", tmp_path / "ws"
    for d in (user_data / "User", extensions, workspace):
        d.mkdir(parents=True)
    settings = {
        **EDITOR_SETTINGS,
        "codegenLsp.serverCommand": server_command,
        "codegenLsp.modelPath": str(editor_model_dir),
        "codegenLsp.device": "cpu",
        "codegenLsp.candidates": 1,
        "codegenLsp.trace.server": "messages",
        "codegenLsp.logLevel": "debug",
    }
    (user_data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
    env = {**os.environ, **xdg_home}
    common = [str(code_server_bin), "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    run_or_fail([*common, "--install-extension", str(vsix)], "installing the .vsix into code-server", 120, env=env)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = artifacts_dir / "code-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *common,
                "--bind-addr", f"127.0.0.1:{port}",
                "--auth", "none",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--ignore-last-opened",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_healthy(url, proc, log)
        yield url, workspace
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _keep_extension_log(user_data, artifacts_dir)


def _keep_extension_log(user_data: Path, artifacts_dir: Path) -> None:
    """Copy the extension's output channel (server stderr and LSP trace) next to the screenshot."""
    for f in sorted(user_data.glob("logs/**/*codegen-lsp*.log")):
        (artifacts_dir / "vscode-codegen-lsp.log").write_bytes(f.read_bytes())


def _has_generated_body(source: str, name: str) -> bool:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            body = node.body
            has_doc = bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            return len(body) > (1 if has_doc else 0)
    return False


def _wait_for_stats(cache_home: Path, timeout: float = 20) -> dict[str, dict[str, object]]:
    """The server writes its counts a moment after the events (and at exit): poll the file."""
    path = cache_home / "codegen-lsp" / "stats.json"
    deadline = time.monotonic() + timeout
    models: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        if path.is_file():
            models = json.loads(path.read_text()).get("models", {})
            if any(int(m.get("accepted", 0)) >= 1 for m in models.values()):  # type: ignore[call-overload]
                break
        time.sleep(0.2)
    return models


def _drive(url: str, workspace: Path, target: Path, screenshot: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run vscode_drive.js: type SIGNATURE and DOCSTRING into ``target``, take the ghost text, save."""
    return run_or_fail(
        ["node", str(HERE / "vscode_drive.js")],
        "driving code-server with Chromium",
        timeout=300,
        env={
            **os.environ,
            "CODE_SERVER_URL": url,
            "WORKSPACE": str(workspace),
            "FILE_NAME": target.name,
            "CHROMIUM": "/usr/bin/chromium",
            "PLAYWRIGHT_CORE": str(CODE_SERVER_CACHE / "node_modules" / "playwright-core"),
            "SCREENSHOT": str(screenshot),
            "SIGNATURE": SIGNATURE,
            "DOCSTRING": DOCSTRING,
            **extra,
        },
    )


@pytest.mark.editor
def test_vscode_cycles_between_candidates(code_server: tuple[str, Path], artifacts_dir: Path) -> None:
    """Three candidates asked for (workspace setting); the scripted model writes two different bodies:
    Alt+] must replace the ghost text with the other one, and Tab accepts what is shown."""
    url, workspace = code_server
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "settings.json").write_text(json.dumps({"codegenLsp.candidates": 3}))
    target = workspace / "check.py"
    target.write_text("")
    signature, docstring = "def check_value(value, size):", '"""Return True if value is greater than size."""'
    proc = _drive(url, workspace, target, artifacts_dir / "vscode-cycle.png", CYCLE="1",
                  SIGNATURE=signature, DOCSTRING=docstring)
    saved = target.read_text()
    print(f"\n{proc.stderr}\n--- saved check.py ---\n{saved}")
    bodies = ["    return value > size", "    if value > size:\n        return True\n    return False"]
    assert saved.rstrip("\n") in [f"{signature}\n    {docstring}\n{b}" for b in bodies], saved
    shown = [line for line in proc.stderr.splitlines() if "ghost text" in line]
    assert len(shown) >= 2 and shown[0] != shown[1], shown  # (the drive also waits for the change)


@pytest.mark.editor
@pytest.mark.default_model
@pytest.mark.parametrize("editor_model_dir", ["default"], indirect=True)
def test_vscode_default_model_ghost_text_is_a_real_body(code_server: tuple[str, Path], artifacts_dir: Path) -> None:
    """The same editor flow on the model users run: whatever it writes, the accepted ghost text must
    make a file that parses, with a function body that is not a stub."""
    url, workspace = code_server
    target = workspace / "demo.py"
    target.write_text("")
    started = time.monotonic()
    proc = _drive(url, workspace, target, artifacts_dir / "vscode-default-model.png")
    saved = target.read_text()
    print(f"\nvscode drive (default model): {time.monotonic() - started:.1f} s\n{proc.stderr}\n--- saved ---\n{saved}")
    try:
        tree = ast.parse(saved)
    except SyntaxError as exc:
        pytest.fail(f"the saved file does not parse ({exc}):\n{saved}")
    assert saved.startswith(f"{SIGNATURE}\n    {DOCSTRING}\n"), saved
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "add"]
    assert len(func.body) > 1 and not is_stub(func.body), f"no real body after the docstring:\n{saved}"


@pytest.mark.editor
def test_vscode_inline_body_is_accepted_and_saved(
    code_server: tuple[str, Path], artifacts_dir: Path, xdg_home: dict[str, str]
) -> None:
    url, workspace = code_server
    target = workspace / "demo.py"
    target.write_text("")
    stub = workspace / "stubs.py"
    stub.write_text(STUB_SOURCE)
    started = time.monotonic()
    proc = _drive(url, workspace, target, artifacts_dir / "vscode.png", STUB_NAME=stub.name, PARTIAL_ACCEPT="1")
    elapsed = time.monotonic() - started
    saved = target.read_text()
    print(f"\nvscode drive: {elapsed:.1f} s\n{proc.stderr}\n--- saved demo.py ---\n{saved}")
    try:
        ast.parse(saved)
    except SyntaxError as exc:
        pytest.fail(f"the saved file does not parse ({exc}):\n{saved}")
    assert saved.startswith(f"{SIGNATURE}\n    {DOCSTRING}\n"), saved
    assert _has_generated_body(saved, "add"), f"no body after the docstring:\n{saved}"
    # The scripted model writes exactly this: the word taken with Ctrl+Right plus the rest after it.
    assert saved.rstrip("\n") == f"{SIGNATURE}\n    {DOCSTRING}\n    return a + b", saved

    filled = stub.read_text()
    print(f"--- saved stubs.py (Generate Bodies for All Stubs in File) ---\n{filled}")
    try:
        ast.parse(filled)
    except SyntaxError as exc:
        pytest.fail(f"stubs.py does not parse after generating bodies ({exc}):\n{filled}")
    assert _has_generated_body(filled, "scale"), f"no body generated for scale:\n{filled}"
    assert filled.endswith("def keep(x):\n    return x\n"), filled

    stats = _wait_for_stats(Path(xdg_home["XDG_CACHE_HOME"]))
    print(f"--- acceptance stats ---\n{json.dumps(stats, indent=1)}")
    assert len(stats) == 1, stats
    (counts,) = stats.values()
    assert counts["accepted"] == 1 and counts["partially_accepted"] == 1, counts
    assert counts["chars_kept"] == len("return a + b"), counts
