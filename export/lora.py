"""Low-rank adapters (LoRA, Hu et al. 2021) written out by hand: wrap chosen projections, train only
the small A/B matrices, then merge ``W + (alpha / r) * B @ A`` back into the base weights.

Works on ``nn.Linear`` (Llama, Qwen2) and on transformers' GPT-2 ``Conv1D`` (weight stored as
[in, out]). An adapter is a few MB (rank 8 on SmolLM2-135M's attention projections: 0.9 M values),
saved as safetensors plus a JSON header (rank, alpha, targets).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"

DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gpt2": ("c_attn", "attn.c_proj"),
}
"""Attention projections per model_type: enough to adapt style while keeping the adapter small."""


@dataclass
class LoRAConfig:
    """What was adapted and how; stored next to the weights."""

    rank: int = 8
    alpha: float = 16.0
    """Scale of the update is ``alpha / rank``."""
    dropout: float = 0.0
    targets: tuple[str, ...] = ()
    """Module-name suffixes to wrap (``q_proj``, ``attn.c_proj``)."""


class LoRALayer(nn.Module):
    """``base(x) + scale * (dropout(x) @ A^T) @ B^T`` around a frozen Linear or Conv1D."""

    def __init__(self, base: nn.Module, cfg: LoRAConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.base = base
        weight: torch.Tensor = base.weight  # type: ignore[assignment]
        # Linear: [out, in]; GPT-2 Conv1D: [in, out].
        self.transposed = type(base).__name__ == "Conv1D"
        d_in, d_out = (weight.shape[0], weight.shape[1]) if self.transposed else (weight.shape[1], weight.shape[0])
        self.lora_a = nn.Parameter(torch.empty(cfg.rank, d_in, dtype=weight.dtype, device=weight.device))
        self.lora_b = nn.Parameter(torch.zeros(d_out, cfg.rank, dtype=weight.dtype, device=weight.device))
        # B = 0: training starts at the base model.
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5), generator=generator)
        self.scale = cfg.alpha / cfg.rank
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scale

    def delta(self) -> torch.Tensor:
        """The weight update in the base layer's own layout."""
        d = (self.lora_b @ self.lora_a) * self.scale  # [out, in]
        return d.T if self.transposed else d


def _matches(name: str, targets: tuple[str, ...]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def inject(model: nn.Module, cfg: LoRAConfig, seed: int = 0) -> list[str]:
    """Freeze ``model`` and wrap every module whose name ends with a target; returns the names.
    The A matrices are drawn from a generator seeded with ``seed`` (same seed, same adapter)."""
    generator = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        if not _matches(name, cfg.targets) or isinstance(module, LoRALayer):
            continue
        if not hasattr(module, "weight") or module.weight.dim() != 2:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALayer(module, cfg, generator))
        wrapped.append(name)
    if not wrapped:
        raise ValueError(f"no module matches the LoRA targets {list(cfg.targets)}")
    return wrapped


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the A/B matrices, keyed by the wrapped module's name."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if ".lora_" in k}


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing = set(adapter_state(model)) - set(state)
    if missing:
        raise ValueError(f"adapter lacks {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)


@torch.no_grad()
def merge(model: nn.Module) -> int:
    """Fold every adapter into its base weight and unwrap it; returns how many were merged."""
    count = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALayer):
            base = module.base
            weight: torch.Tensor = base.weight  # type: ignore[assignment]
            weight += module.delta().to(weight.dtype)
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, base)
            count += 1
    return count


def save_adapter(model: nn.Module, cfg: LoRAConfig, out_dir: Path, meta: Mapping[str, object]) -> Path:
    """Write ``adapter.safetensors`` (fp16: half the size, ample for a low-rank update) and ``adapter.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.to(torch.float16) for k, v in adapter_state(model).items()}
    save_file(state, str(out_dir / ADAPTER_WEIGHTS))
    header = {"lora": asdict(cfg), **meta}
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
    return out_dir / ADAPTER_WEIGHTS


def read_adapter(out_dir: Path) -> tuple[LoRAConfig, dict[str, torch.Tensor]]:
    header = json.loads((out_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    lora = header["lora"]
    cfg = LoRAConfig(rank=lora["rank"], alpha=lora["alpha"], dropout=lora["dropout"], targets=tuple(lora["targets"]))
    return cfg, load_file(str(out_dir / ADAPTER_WEIGHTS))


class AdapterBaseMismatch(ValueError):
    """A saved adapter applied to weights other than those it was trained on."""


def merge_saved_adapter(model: nn.Module, adapter_dir: Path, base_sha256: str) -> tuple[LoRAConfig, int]:
    """Inject, load (as fp32) and merge the adapter saved in ``adapter_dir`` into ``model``.

    Refuses (``AdapterBaseMismatch``, before touching ``model``) an adapter whose ``adapter.json``
    does not record ``base_sha256`` as its base. Deterministic: the A matrices drawn by ``inject``
    are all overwritten by the saved ones. Returns the adapter's config and the merged layer count.
    """
    header = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    recorded = header.get("base_sha256")
    if recorded != base_sha256:
        raise AdapterBaseMismatch(
            f"{adapter_dir} was trained on base weights {str(recorded)[:12]}, not {base_sha256[:12]}")
    cfg, state = read_adapter(adapter_dir)
    inject(model, cfg)
    load_adapter_state(model, {k: v.float() for k, v in state.items()})
    return cfg, merge(model)


def save_merged(model: torch.nn.Module, base_checkpoint: Path, out: Path) -> Path:
    """An HF checkpoint of the merged fp32 model, with the base's tokenizer files."""
    if out.exists():
        shutil.rmtree(out)
    model.to("cpu").float().save_pretrained(str(out), safe_serialization=True)  # type: ignore[operator]
    for name in TOKENIZER_FILES:
        if (base_checkpoint / name).is_file():
            shutil.copyfile(base_checkpoint / name, out / name)
    return out
