"""Shared helpers of the real-editor tests (paths, a setup step that fails with its output)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ARTIFACTS = Path(os.environ.get("CODEGEN_LSP_ARTIFACTS", ROOT / ".cache" / "artifacts"))
CODE_SERVER_CACHE = Path(os.environ.get("CODE_SERVER_CACHE", ROOT / ".cache" / "code-server"))


def as_text(out: str | bytes | None) -> str:
    """subprocess output that may be missing or (after a timeout) bytes."""
    if out is None:
        return ""
    return out.decode(errors="replace") if isinstance(out, bytes) else out


def run_or_fail(cmd: list[str], what: str, timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a setup step; on failure, fail the test with the step's own output."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        pytest.fail(f"{what}: {exc}")
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what}: timed out after {timeout} s\n{as_text(exc.stdout)}\n{as_text(exc.stderr)}")
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def is_stub(body: list[ast.stmt]) -> bool:
    """``pass``, ``...`` or ``raise NotImplementedError`` only (after a docstring): what the default-model
    editor tests refuse as a generated body."""
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                           and s.value.value is Ellipsis)
               or (isinstance(s, ast.Raise) and "NotImplementedError" in ast.unparse(s)) for s in body)
