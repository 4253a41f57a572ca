"""Tiny real model packages (export + validation, about a second each), built once per session.

Tests that modify a package take ``copy_package`` so the shared ones stay intact.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from export.tiny import build_tiny_package


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_package(arch, int8=False)``: a cached tiny package directory (do not modify it)."""
    built: dict[tuple[str, bool], Path] = {}

    def get(arch: str = "llama", int8: bool = False) -> Path:
        key = (arch, int8)
        if key not in built:
            out = tmp_path_factory.mktemp(f"tiny-{arch}{'-int8' if int8 else ''}") / "pkg"
            built[key] = build_tiny_package(out, arch, int8=int8)
        return built[key]

    return get


@pytest.fixture
def tiny_llama_package(tiny_package: Callable[..., Path]) -> Path:
    return tiny_package("llama")


@pytest.fixture
def tiny_gpt2_package(tiny_package: Callable[..., Path]) -> Path:
    return tiny_package("gpt2")


@pytest.fixture
def copy_package(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a package into this test's temp dir, to corrupt it freely."""

    def copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return copy
