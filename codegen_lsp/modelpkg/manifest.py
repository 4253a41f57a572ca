"""The model package manifest: the one document the runtime reads to use a model.

A package is a directory holding ``manifest.json`` plus the files it lists. The manifest carries
everything the engine needs (shapes, tensor names, special tokens, prompt conventions) so that the
engine never guesses, and the provenance and validation results recorded at export time. Every
field is documented on its dataclass; ``docs/model-package.md`` renders the same text.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

FORMAT_NAME = "codegen-lsp-model"
FORMAT_VERSION = 2
"""2: a variant may hold several named graphs (``Variant.graphs``); kind is open-ended (an engine
registry decides). Version 1 manifests read unchanged."""
SUPPORTED_VERSIONS = (1, 2)
MANIFEST_FILE = "manifest.json"

ModelKind = str
"""``causal-lm``, ``char-rnn``, ``diffusion``, ...: any name; the runtime's engine registry
(``codegen_lsp/engine/kinds.py``) refuses one it has no engine for."""
Provider = Literal["cpu", "cuda"]


@dataclass
class FileEntry:
    """One file of the package, checked on load."""

    path: str
    """Path relative to the package directory (forward slashes)."""
    size: int
    """Exact size in bytes; a different size means a truncated or replaced file."""
    sha256: str
    """Hex digest, checked by ``verify(full=True)`` (``make model``, ``codegen-lsp check``)."""


@dataclass
class Quantization:
    """How the weights were compressed, if at all."""

    method: Literal["none", "matmulnbits"] = "none"
    """``matmulnbits``: weight-only block quantization of MatMul weights (com.microsoft.MatMulNBits)."""
    bits: int = 0
    """Bits per weight for ``matmulnbits`` (8 for the CPU variant)."""
    block_size: int = 0
    """Weights per quantization block (32)."""
    accuracy_level: int = 0
    """MatMulNBits accuracy level: 4 computes activations as int8 on CPU."""


@dataclass
class IONames:
    """Graph tensor names. ``{i}`` in a pattern stands for the layer index."""

    input_ids: str = "input_ids"
    attention_mask: str = "attention_mask"
    position_ids: str | None = "position_ids"
    """None when the graph derives positions itself (e.g. rotary embedding inside attention)."""
    past_key: str = "past_key_values.{i}.key"
    past_value: str = "past_key_values.{i}.value"
    present_key: str = "present.{i}.key"
    present_value: str = "present.{i}.value"
    logits: str = "logits"
    kv_layout: Literal["BNSH"] = "BNSH"
    """Cache tensors are [batch, kv_heads, sequence, head_size]."""
    past_present_share_buffer: bool = False
    """True when past and present may be bound to one preallocated [B, H, max_len, D] buffer
    (GroupQueryAttention graphs); the attention mask then spans the valid prefix only."""
    logits_last_only: bool = False
    """True when the graph returns logits for the last position only: [batch, 1, vocab]."""

    def input_names(self, num_layers: int) -> list[str]:
        names = [self.input_ids, self.attention_mask]
        if self.position_ids:
            names.append(self.position_ids)
        for i in range(num_layers):
            names += [self.past_key.format(i=i), self.past_value.format(i=i)]
        return names

    def output_names(self, num_layers: int) -> list[str]:
        names = [self.logits]
        for i in range(num_layers):
            names += [self.present_key.format(i=i), self.present_value.format(i=i)]
        return names


@dataclass
class Variant:
    """One ONNX graph of the model, built for one execution provider."""

    name: str
    """Short id, also the subdirectory holding the graph: ``cpu-int8``, ``cuda-fp16``, ``fp32``."""
    provider: Provider
    """Execution provider the variant is built and tuned for."""
    graph: str = ""
    """ONNX file, relative to the package directory (kinds with one graph)."""
    graphs: dict[str, str] = field(default_factory=dict)
    """Named ONNX files (format 2; kinds with several graphs, e.g. diffusion's ``encoder``,
    ``denoiser``, ``decoder``), relative to the package directory."""
    external_data: list[str] = field(default_factory=list)
    """Weight files the graph references (ONNX external data), relative to the package directory."""
    dtype: Literal["fp32", "fp16"] = "fp32"
    """Floating-point type of activations, logits and the KV cache."""
    quantization: Quantization = field(default_factory=Quantization)
    builder: str = "torch.onnx"
    """What produced the graph: ``torch.onnx`` (generic exporter) or ``onnxruntime-genai`` (fused)."""
    io: IONames = field(default_factory=IONames)
    validation: dict[str, Any] = field(default_factory=dict)
    """Results of export-time validation against PyTorch (tolerances, max errors, greedy parity);
    ``{"status": "skipped", "reason": ...}`` where the provider was not available at export time."""

    def graph_files(self) -> dict[str, str]:
        """Every graph of the variant by name (the single ``graph`` is named ``model``)."""
        return {**({"model": self.graph} if self.graph else {}), **self.graphs}


@dataclass
class SpecialTokens:
    """Token ids the engine needs."""

    eos: list[int]
    """Ids that end generation."""
    bos: int | None = None
    """Id to prepend when ``PromptConvention.add_bos``."""
    pad: int | None = None
    """Id used to pad batches (left padding); falls back to the first eos id."""


@dataclass
class PromptConvention:
    """How a prompt must end so the model continues it the way the engine expects."""

    template: Literal["raw", "fim"] = "raw"
    """``raw``: the prompt is the source text itself (no chat template). ``fim``: fill-in-the-middle,
    ``fim_prefix + code before the body + fim_suffix + code after the function + fim_middle``; the
    model writes the body and ends it with an eos token."""
    fim_prefix: str = ""
    """The model's FIM marker tokens (``template: fim``), as text the tokenizer maps to one special
    token each: ``<|fim_prefix|>`` (Qwen2.5-Coder, StarCoder: ``<fim_prefix>``, DeepSeek-Coder:
    ``<｜fim▁begin｜>``)."""
    fim_suffix: str = ""
    """``<|fim_suffix|>`` (DeepSeek-Coder: ``<｜fim▁hole｜>``)."""
    fim_middle: str = ""
    """``<|fim_middle|>`` (DeepSeek-Coder: ``<｜fim▁end｜>``)."""
    file_sep: str = ""
    """The model's file separator token for repository-level prompts (Qwen2.5-Coder: ``<|file_sep|>``),
    as text its tokenizer maps to one token: workspace context from other files is then headed by
    ``file_sep + path`` as in the model's repository-level training, instead of a ``# file:`` comment."""
    suffix_tokens: int = 256
    """Most tokens of code after the function given as the FIM suffix (whole lines, nearest first)."""
    end_before_newline: bool = True
    """The tokenizer merges a newline with the following indentation, so the prompt ends right after
    the docstring's closing quotes and the model produces the newline and indent itself. A prompt that
    ends with a bare newline makes the model start at column 0."""
    add_bos: bool = False
    """Prepend ``SpecialTokens.bos``."""


@dataclass
class Provenance:
    """Where the weights came from and what built the package."""

    source: str
    """Checkpoint the weights came from (file name or directory)."""
    source_sha256: str | None
    """Digest of the source file (for a directory: of its weight files, sorted and concatenated)."""
    license: str
    """Licence of the weights, e.g. ``Apache-2.0``."""
    exporter_version: str
    created: str
    """ISO-8601 UTC time of the export."""
    notes: str = ""


@dataclass
class Manifest:
    """Top-level manifest. Shapes describe the model; variants hold the graphs."""

    name: str
    kind: ModelKind
    """``causal-lm`` (decoder with KV cache), ``char-rnn`` (stateful LSTM), ``diffusion``."""
    architecture: str
    """Architecture family as registered in the exporter: ``llama``, ``gpt2``, ..."""
    tokenizer: str
    """Hugging Face ``tokenizers`` JSON file, relative to the package directory."""
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_size: int
    hidden_size: int
    vocab_size: int
    context_length: int
    """Maximum positions the model was trained for; prompts are trimmed to fit."""
    special_tokens: SpecialTokens
    prompt: PromptConvention
    provenance: Provenance
    variants: list[Variant]
    files: list[FileEntry]
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """Kind-specific fields (e.g. the char-RNN alphabet)."""

    def variant_for(self, provider: Provider) -> Variant | None:
        for v in self.variants:
            if v.provider == provider:
                return v
        return None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"


class FieldError(ValueError):
    """A manifest field is missing or has the wrong type; the message holds the JSON path."""


T = TypeVar("T")


def _check(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise FieldError(f"{where}: expected an object")
        return from_dict(tp, value, where)
    if origin is Literal:
        if value not in args:
            raise FieldError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list,):
        if not isinstance(value, list):
            raise FieldError(f"{where}: expected a list")
        return [_check(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict,):
        if not isinstance(value, dict):
            raise FieldError(f"{where}: expected an object")
        return value
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check(inner[0], value, where)
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise FieldError(f"{where}: expected an integer, got {value!r}")
    if tp is bool and not isinstance(value, bool):
        raise FieldError(f"{where}: expected true/false, got {value!r}")
    if tp is str and not isinstance(value, str):
        raise FieldError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "manifest") -> T:
    """Build ``cls`` from JSON data, checking every field's type; unknown keys are ignored so a
    newer minor exporter can add fields without breaking older runtimes."""
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        path = f"{where}.{f.name}"
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FieldError(f"{path}: required field is missing")
            continue
        kwargs[f.name] = _check(hints[f.name], data[f.name], path)
    return cls(**kwargs)
