"""Shared fixtures: real model packages built once per session (cached under .cache/)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
sys.path.insert(0, str(REPO))


def _cached_package(name: str, build) -> Path:  # type: ignore[no-untyped-def]
    from codegen_lsp.modelpkg import ModelPackageError, load_package

    path = CACHE / name
    try:
        load_package(path, verify_hashes=True)
        return path
    except ModelPackageError:
        shutil.rmtree(path, ignore_errors=True)
    tmp = CACHE / f"{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    os.replace(tmp, path)
    return path


@pytest.fixture(scope="session")
def tiny_coder_pkg() -> Path:
    """A tiny Llama trained to write simple valid bodies (models/tiny_coder.py), as a real package."""
    from models.tiny_coder import VERSION, build_tiny_coder_package

    return _cached_package(f"tiny-coder-v{VERSION}", build_tiny_coder_package)  # 300 steps: deterministic


@pytest.fixture(scope="session")
def default_pkg() -> Path:
    """The embedded default model; `make test` builds it first (`python -m export default-model`)."""
    from codegen_lsp.modelpkg import ModelPackageError, default_model_dir, load_package

    path = default_model_dir()
    try:
        load_package(path)
    except ModelPackageError as exc:
        pytest.fail(f"default model package unusable ({exc}); run `make model`")
    return path
