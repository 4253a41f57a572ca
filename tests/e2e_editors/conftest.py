"""Fixtures for the real-editor tests: the model package, the server command, a built .vsix and
code-server. A prerequisite that cannot be built or installed fails the test with the reason."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import ARTIFACTS, CODE_SERVER_CACHE, ROOT, VENV_BIN, run_or_fail


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def editor_model_dir(request: pytest.FixtureRequest, scripted_pkg: Path) -> Path:
    """The scripted model package (tests/conftest.py): it writes the bodies tests/scripted_rules.py
    gives for these tests' docstrings, the same on every machine. A test parametrized indirectly
    with ``"default"`` gets the embedded default model instead (what users run; such a test asserts
    only what holds for any model the server serves: a body that parses and is not a stub)."""
    if getattr(request, "param", "scripted") == "default":
        path: Path = request.getfixturevalue("default_pkg")
        return path
    return scripted_pkg


@pytest.fixture(scope="session")
def server_command() -> list[str]:
    exe = VENV_BIN / "codegen-lsp"
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: install the project (make install)")
    return [str(exe), "serve"]


@pytest.fixture(scope="session")
def vsix() -> Path:
    """Build and package the extension with its own Makefile (npm ci, lint-free build, vsce)."""
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed; the VS Code extension cannot be built")
    run_or_fail(["make", "-C", str(ROOT / "vscode-client"), "package"], "building the .vsix", timeout=600)
    out = ROOT / "vscode-client" / "dist" / "codegen-lsp.vsix"
    if not out.is_file():
        pytest.fail(f"vsce did not produce {out}")
    return out


@pytest.fixture(scope="session")
def code_server_bin() -> Path:
    """code-server, Chromium and playwright-core, installed by scripts/setup-code-server.sh."""
    run_or_fail(
        ["bash", str(ROOT / "scripts" / "setup-code-server.sh")],
        "scripts/setup-code-server.sh",
        timeout=900,
        env={**os.environ, "CODE_SERVER_CACHE": str(CODE_SERVER_CACHE)},
    )
    return CODE_SERVER_CACHE / "node_modules" / ".bin" / "code-server"


@pytest.fixture
def xdg_home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Editor config/data/state/cache under a temp dir, so the user's setup never leaks in."""
    env = {}
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        d = tmp_path / "xdg" / name.lower()
        d.mkdir(parents=True)
        env[f"XDG_{name}_HOME"] = str(d)
    yield env
