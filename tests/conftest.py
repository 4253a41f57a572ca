"""Shared fixtures: real model packages built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def scripted_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted model (export/scripted.py) with tests/scripted_rules.py: a real package whose
    text is exact on every machine and thread count. Built in about a second."""
    from export.scripted import build_scripted_package
    from tests.scripted_rules import RULES

    return build_scripted_package(tmp_path_factory.mktemp("scripted") / "pkg", RULES)


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
