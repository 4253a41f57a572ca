"""Where the runtime looks for model packages when the user names none."""

from __future__ import annotations

import os
from pathlib import Path

ENV_MODEL = "CODEGEN_LSP_MODEL"
DEFAULT_PACKAGE_NAME = "smollm2-135m-instruct"


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
    """An explicit setting wins over the environment, which wins over the default location."""
    if setting:
        return Path(setting).expanduser()
    return default_model_dir()
