"""Merged fine-tuned weights -> a validated model package, through the existing exporters.

``fused``: onnxruntime-genai's builder, exactly as the default model is built (``export/fused.py``:
packed QKV, GroupQueryAttention, last-position logits; ``cpu-int8`` and ``cuda-fp16``), so a
fine-tuned SmolLM2 is a drop-in replacement of the default package. ``generic``: the torch.onnx
exporter (``export/package_writer.export_causal_lm``), for every architecture in ``export/specs.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from codegen_lsp.modelpkg import (
    Provenance,
    load_package,
)

ExportPath = Literal["auto", "fused", "generic"]
FUSED_ARCHITECTURES = {"llama", "qwen2"}
"""Model types the genai builder handles that ``export/specs.py`` also registers."""


def choose_path(model_type: str, path: ExportPath) -> Literal["fused", "generic"]:
    if path == "auto":
        return "fused" if model_type in FUSED_ARCHITECTURES else "generic"
    return path


def export_generic(model: Any, checkpoint: Path, out: Path, name: str, license: str, notes: str,
                   int8: bool, steps: int = 16) -> Path:
    from export.package_writer import ExportOptions, Source, export_causal_lm

    options = ExportOptions(out_dir=out, name=name, license=license, weight_int8=int8, steps=steps,
                            threads=torch.get_num_threads(), notes=notes)
    return export_causal_lm(model.to("cpu").float().eval(), checkpoint / "tokenizer.json", Source.of(checkpoint),
                            options)


def export_fused(model: Any, checkpoint: Path, out: Path, name: str, license: str, notes: str,
                 cuda: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """The default model's recipe (``export/fused_package.build_fused_package``) on a checkpoint
    directory, staged next to ``out`` and swapped in once it verifies."""
    from export.fused_package import Plan, build_fused_package

    plan: Plan = (("cpu-int8", "int8", "cpu"), ("cuda-fp16", "fp16", "cuda")) if cuda else (("cpu-int8", "int8", "cpu"),)
    provenance = Provenance(source=str(checkpoint), source_sha256=None, license=license, exporter_version="",
                            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), notes=notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        build_fused_package(model.to("cpu").float().eval(), checkpoint, stage, name=name,
                            provenance=provenance, plan=plan, extra=extra)
        load_package(stage, verify_hashes=True)
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out
