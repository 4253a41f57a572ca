"""One declarative spec per exportable architecture: how to read its HF config, the graph's tensor
names and dynamic axes, the opset, and the tolerances its exports are validated against.

Adding an architecture means adding a spec here and a tiny random model in ``export/tiny.py``;
``tests/export/test_specs.py`` fails when a registered spec has no tiny model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from codegen_lsp.modelpkg import IONames

from .errors import ExportError, UnsupportedArchitecture

VariantKind = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class Tolerance:
    """When an exported graph counts as reproducing PyTorch (see ``export/validate.py``).

    A logits element passes when ``|ort - torch| <= atol + rtol * |torch| + scale_rtol * std(torch)``.
    A greedy step passes when both pick the same token, or when PyTorch's logits for the two picks
    are within ``tie_margin`` (a near-tie that the allowed logits error can legitimately flip).
    """

    atol: float
    rtol: float
    tie_margin: float
    min_greedy_agreement: float = 1.0
    """Fraction of teacher-forced greedy steps that must pick PyTorch's token (ties count as agreeing)."""
    scale_rtol: float = 0.0
    """Allowed error in units of the reference tensor's standard deviation: quantization error
    follows the scale of the whole logits row, not each element's magnitude."""


# fp32: ORT's fused kernels reorder float sums; measured max errors: tiny models ~1e-5,
# SmolLM2-135M 6e-5 prefill / 1.5e-4 decode (logits up to 32). 1e-3 + 1e-3*|x| catches any real bug
# (a weight scaled by 1.05 moves logits by >0.1) without flaking on large vocabularies.
FP32 = Tolerance(atol=1e-3, rtol=1e-3, tie_margin=2e-3)
# fp16 (weights, activations, KV cache): ~3 significant digits per op. SmolLM2-135M on the CPU
# provider: max 0.029 prefill / 0.056 decode, greedy 128/128 (not yet measured on CUDA).
FP16 = Tolerance(atol=0.1, rtol=2e-2, tie_margin=0.1)
# int8 weight-only, block 32, accuracy level 4 (activations quantized to int8 inside MatMulNBits).
# Measured max logits error: tiny models 0.09 (0.03 std); SmolLM2-135M 1.2 prefill / 2.1 decode
# (0.42 std of a logits row, values up to 32). The logits bound (1 std) is a sanity bound that a
# broken graph exceeds; the real criterion is greedy parity: 90% of teacher-forced steps must pick
# PyTorch's token, near-ties (torch margin <= 0.5) counting as agreement. SmolLM2-135M: 126 + 2 ties
# of 128; tiny models: 128/128.
INT8 = Tolerance(atol=0.0, rtol=0.1, tie_margin=0.5, min_greedy_agreement=0.9, scale_rtol=1.0)


@dataclass(frozen=True)
class ConfigKeys:
    """HF config attribute names for each shape; the first one present wins."""

    num_layers: tuple[str, ...] = ("num_hidden_layers", "n_layer")
    num_heads: tuple[str, ...] = ("num_attention_heads", "n_head")
    num_kv_heads: tuple[str, ...] = ("num_key_value_heads",)
    """Falls back to ``num_heads`` (multi-head attention) when absent or null."""
    head_size: tuple[str, ...] = ("head_dim",)
    """Falls back to ``hidden_size // num_heads`` when absent or null."""
    hidden_size: tuple[str, ...] = ("hidden_size", "n_embd")
    vocab_size: tuple[str, ...] = ("vocab_size",)
    context_length: tuple[str, ...] = ("max_position_embeddings", "n_positions", "n_ctx")


@dataclass(frozen=True)
class ModelShape:
    """The shapes a manifest records, read from one HF config through a spec."""

    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_size: int
    hidden_size: int
    vocab_size: int
    context_length: int


def _first(config: Any, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    return None


@dataclass(frozen=True)
class ArchSpec:
    """Everything the generic exporter needs to know about one architecture family."""

    name: str
    """Registry key, written to ``manifest.architecture``."""
    model_types: tuple[str, ...]
    """HF ``config.model_type`` values this spec exports."""
    keys: ConfigKeys = field(default_factory=ConfigKeys)
    position_ids_input: bool = True
    """Whether the graph takes ``position_ids`` (both GPT-2's learned and Llama's rotary positions do)."""
    opset: int = 17
    tolerances: Mapping[str, Tolerance] = field(
        default_factory=lambda: MappingProxyType({"fp32": FP32, "fp16": FP16, "int8": INT8})
    )

    def io_names(self) -> IONames:
        """Tensor names of the standard past/present graph (the optimum / transformers.js convention)."""
        return IONames(position_ids="position_ids" if self.position_ids_input else None)

    def input_names(self, num_layers: int) -> list[str]:
        return self.io_names().input_names(num_layers)

    def output_names(self, num_layers: int) -> list[str]:
        return self.io_names().output_names(num_layers)

    def dynamic_axes(self, num_layers: int) -> dict[str, dict[int, str]]:
        """Batch, new-token, past and total (past + new) lengths are all dynamic; KV is BNSH."""
        io = self.io_names()
        axes: dict[str, dict[int, str]] = {
            io.input_ids: {0: "batch", 1: "sequence"},
            io.attention_mask: {0: "batch", 1: "total_sequence"},
            io.logits: {0: "batch", 1: "sequence"},
        }
        if io.position_ids:
            axes[io.position_ids] = {0: "batch", 1: "sequence"}
        for i in range(num_layers):
            for name in (io.past_key, io.past_value):
                axes[name.format(i=i)] = {0: "batch", 2: "past_sequence"}
            for name in (io.present_key, io.present_value):
                axes[name.format(i=i)] = {0: "batch", 2: "total_sequence"}
        return axes

    def tolerance(self, kind: VariantKind) -> Tolerance:
        return self.tolerances[kind]

    def read_shape(self, config: Any) -> ModelShape:
        """Read layers, heads, sizes and context length; raises ``ExportError`` naming a missing key."""
        k = self.keys
        values = {
            "num_layers": _first(config, k.num_layers),
            "num_heads": _first(config, k.num_heads),
            "hidden_size": _first(config, k.hidden_size),
            "vocab_size": _first(config, k.vocab_size),
            "context_length": _first(config, k.context_length),
        }
        missing = [name for name, v in values.items() if v is None]
        if missing:
            raise ExportError(f"{self.name}: config lacks {missing} (looked for {k})")
        heads = values["num_heads"]
        hidden = values["hidden_size"]
        assert heads is not None and hidden is not None
        return ModelShape(
            num_layers=values["num_layers"] or 0,
            num_heads=heads,
            num_kv_heads=_first(config, k.num_kv_heads) or heads,
            head_size=_first(config, k.head_size) or hidden // heads,
            hidden_size=hidden,
            vocab_size=values["vocab_size"] or 0,
            context_length=values["context_length"] or 0,
        )


SPECS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(name="gpt2", model_types=("gpt2",)),
        ArchSpec(name="llama", model_types=("llama",)),
        ArchSpec(name="qwen2", model_types=("qwen2",)),
    )
}


def spec_for_config(config: Any) -> ArchSpec:
    """The spec exporting ``config.model_type``; ``UnsupportedArchitecture`` lists what is registered."""
    model_type = getattr(config, "model_type", None)
    for spec in SPECS.values():
        if model_type in spec.model_types:
            return spec
    known = sorted(t for s in SPECS.values() for t in s.model_types)
    raise UnsupportedArchitecture(f"model_type {model_type!r} has no export spec (registered: {known})")
