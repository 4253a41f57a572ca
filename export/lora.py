"""Low-rank adapters (LoRA, Hu et al. 2021) through ``peft``: attach adapters to chosen projections,
save and load them in the PEFT format (``adapter_config.json`` + ``adapter_model.safetensors``, loadable
by ``peft.PeftModel.from_pretrained``), and merge them into the base weights with peft's own merge.

Next to the two PEFT files an adapter directory holds ``training.json``: what it was trained on
(``base_sha256``), for how long, and its validation losses. The weights are stored as fp16 (half the
size, ample for a low-rank update); loading is strict: a missing or an unexpected key is an error.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
TRAINING_RECORD = "training.json"

DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gpt2": ("c_attn", "attn.c_proj"),
}
"""Attention projections per model_type: enough to adapt style while keeping the adapter small."""


class AdapterKeyMismatch(ValueError):
    """A saved adapter whose tensors do not match the adapted modules one for one."""


class AdapterBaseMismatch(ValueError):
    """A saved adapter applied to weights other than those it was trained on."""


@dataclass
class LoRAConfig:
    """What was adapted and how (becomes a ``peft.LoraConfig``)."""

    rank: int = 8
    alpha: float = 16.0
    """Scale of the update is ``alpha / rank``."""
    dropout: float = 0.0
    targets: tuple[str, ...] = ()
    """Module-name suffixes to wrap (``q_proj``, ``attn.c_proj``)."""

    def to_peft(self, model_type: str) -> Any:
        from peft import LoraConfig

        # GPT-2's Conv1D stores its weight as [in, out]: peft's fan_in_fan_out.
        # peft annotates lora_alpha as int but stores and scales by any number (the committed adapter: 16.0).
        return LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,  # type: ignore[arg-type]
                          target_modules=list(self.targets), fan_in_fan_out=model_type == "gpt2", bias="none")

    @classmethod
    def from_peft(cls, cfg: Any) -> LoRAConfig:
        return cls(rank=int(cfg.r), alpha=float(cfg.lora_alpha), dropout=float(cfg.lora_dropout),
                   targets=tuple(sorted(cfg.target_modules)))


def attach(model: nn.Module, cfg: LoRAConfig, seed: int = 0) -> Any:
    """Freeze ``model`` and wrap every module whose name ends with a target (``peft.get_peft_model``;
    ``model`` itself is modified in place). The A matrices are drawn from ``seed``: same seed, same
    adapter. Returns the ``PeftModel``."""
    from peft import get_peft_model

    if not cfg.targets:
        raise ValueError("no LoRA targets given")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            peft_model = get_peft_model(model, cfg.to_peft(str(getattr(model.config, "model_type", ""))))
        except ValueError as exc:
            raise ValueError(f"no module matches the LoRA targets {list(cfg.targets)}: {exc}") from exc
    return peft_model


def adapter_state(peft_model: Any) -> dict[str, torch.Tensor]:
    """The adapter's tensors under PEFT's file keys (``base_model.model.<module>.lora_A.weight``)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}


def load_adapter_state(peft_model: Any, state: Mapping[str, torch.Tensor]) -> None:
    """Load ``state`` into the attached adapter; every key must match (``AdapterKeyMismatch``)."""
    from peft import set_peft_model_state_dict

    expected = set(adapter_state(peft_model))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise AdapterKeyMismatch(f"adapter does not fit the model: {len(missing)} missing (e.g. {missing[:2]}), "
                                 f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    result = set_peft_model_state_dict(peft_model, dict(state))
    unplaced = sorted(getattr(result, "unexpected_keys", []))
    if unplaced:
        raise AdapterKeyMismatch(f"peft did not place {unplaced[:3]}")


def lora_layers(model: nn.Module) -> int:
    from peft.tuners.lora import LoraLayer

    return sum(1 for m in model.modules() if isinstance(m, LoraLayer))


@torch.no_grad()
def merge(peft_model: Any) -> tuple[nn.Module, int]:
    """Fold every adapter into its base weight (``merge_and_unload``); returns the plain model (the
    same object that was passed to ``attach``) and how many layers were merged."""
    count = lora_layers(peft_model)
    return peft_model.merge_and_unload(safe_merge=True), count


def save_adapter(peft_model: Any, out_dir: Path, record: Mapping[str, object]) -> Path:
    """Write the PEFT files (weights as fp16) and ``training.json``; returns the weights file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(peft_model.peft_config["default"], out_dir)
    state = {k: v.to(torch.float16) for k, v in adapter_state(peft_model).items()}
    save_file(state, str(out_dir / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    (out_dir / TRAINING_RECORD).write_text(json.dumps(dict(record), indent=2) + "\n", encoding="utf-8")
    return out_dir / ADAPTER_WEIGHTS


def write_config(peft_config: Any, out_dir: Path) -> None:
    """``adapter_config.json`` as peft writes it, but byte-stable: peft keeps ``target_modules`` as a
    set, whose order would follow the interpreter's hash seed."""
    data = {k: sorted(v) if isinstance(v, set) else v for k, v in peft_config.to_dict().items()}
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    (out_dir / ADAPTER_CONFIG).write_text(text, encoding="utf-8")


def read_adapter(adapter_dir: Path) -> tuple[LoRAConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, tensors as fp32, training record) of a saved adapter directory."""
    from peft import PeftConfig

    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (adapter_dir / name).is_file():
            raise FileNotFoundError(f"{adapter_dir}: no {name} (not a PEFT adapter directory)")
    cfg = LoRAConfig.from_peft(PeftConfig.from_pretrained(str(adapter_dir)))
    record_path = adapter_dir / TRAINING_RECORD
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    return cfg, {k: v.float() for k, v in load_file(str(adapter_dir / ADAPTER_WEIGHTS)).items()}, record


def load_adapter(model: nn.Module, adapter_dir: Path) -> tuple[Any, LoRAConfig, dict[str, Any]]:
    """Attach and strictly load a saved adapter (not merged yet): (peft model, config, record)."""
    cfg, state, record = read_adapter(adapter_dir)
    peft_model = attach(model, cfg)
    load_adapter_state(peft_model, state)
    return peft_model, cfg, record


def merge_saved_adapter(model: nn.Module, adapter_dir: Path, base_sha256: str) -> tuple[LoRAConfig, int]:
    """Attach, load (as fp32) and merge the adapter saved in ``adapter_dir`` into ``model`` in place.

    Refuses (``AdapterBaseMismatch``, before touching ``model``) an adapter whose ``training.json``
    does not record ``base_sha256`` as its base. Deterministic: the A matrices drawn by ``attach``
    are all overwritten by the saved ones. Returns the adapter's config and the merged layer count.
    """
    record_path = adapter_dir / TRAINING_RECORD
    recorded = json.loads(record_path.read_text(encoding="utf-8")).get("base_sha256") if record_path.is_file() else None
    if recorded != base_sha256:
        raise AdapterBaseMismatch(
            f"{adapter_dir} was trained on base weights {str(recorded)[:12]}, not {base_sha256[:12]}")
    peft_model, cfg, _ = load_adapter(model, adapter_dir)
    _, layers = merge(peft_model)
    return cfg, layers


def save_merged(model: torch.nn.Module, base_checkpoint: Path, out: Path) -> Path:
    """An HF checkpoint of the merged fp32 model, with the base's tokenizer files."""
    if out.exists():
        shutil.rmtree(out)
    model.to("cpu").float().save_pretrained(str(out), safe_serialization=True)  # type: ignore[operator]
    for name in TOKENIZER_FILES:
        if (base_checkpoint / name).is_file():
            shutil.copyfile(base_checkpoint / name, out / name)
    return out
