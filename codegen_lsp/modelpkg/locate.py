"""Where the runtime looks for model packages when the user names none."""

from __future__ import annotations

import os
from pathlib import Path

ENV_MODEL = "CODEGEN_LSP_MODEL"
DEFAULT_PACKAGE_NAME = "qwen2.5-coder-0.5b-instruct"
"""The catalog's default entry (``catalog.DEFAULT_NAME``; a test keeps the two equal)."""


def data_home() -> Path:
    """Per-user data directory (XDG on Linux/macOS, %LOCALAPPDATA% on Windows)."""
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "codegen-lsp"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "codegen-lsp"


def default_model_dir() -> Path:
    """The embedded default package: ``$CODEGEN_LSP_MODEL`` if set, else the data home."""
    env = os.environ.get(ENV_MODEL)
    if env:
        return Path(env).expanduser()
    return data_home() / "models" / DEFAULT_PACKAGE_NAME


def resolve_model_dir(setting: str | os.PathLike[str] | None) -> Path:
    """An explicit setting wins over the environment, which wins over the default location.

    A setting that is a catalog name (``qwen2.5-coder-1.5b-instruct``) and not an existing path
    means that entry's installed package."""
    if setting:
        path = Path(setting).expanduser()
        if not path.exists() and isinstance(setting, str):
            from .catalog import catalog_entry, installed_dir

            if catalog_entry(setting) is not None:
                return installed_dir(setting)
        return path
    return default_model_dir()
