"""Turn a PyTorch causal LM plus its tokenizer.json into a validated model package directory.

``export_causal_lm`` exports the fp32 graph, derives the requested variants (``cpu-int8``,
``cuda-fp16``), validates each against PyTorch, and only then moves the files into the package and
writes the manifest, so a failed export never leaves a manifest pointing at unvalidated graphs.
``add_variants`` lets another builder (the fused onnxruntime-genai path) add graphs to a package.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort
import torch
import transformers
from tokenizers import Tokenizer

from codegen_lsp.engine.session import KVDims
from codegen_lsp.modelpkg import (
    MANIFEST_FILE,
    Manifest,
    PromptConvention,
    Provenance,
    Quantization,
    SpecialTokens,
    Variant,
    check_io_names,
    file_entries,
    sha256_file,
    write_manifest,
)
from codegen_lsp.modelpkg.manifest import FieldError, from_dict

from .errors import ExportError, ProviderUnavailable
from .quantize import INT8, convert_fp16, quantize_int8
from .specs import ArchSpec, ModelShape, VariantKind, spec_for_config
from .torch_export import export_fp32, graph_io
from .validate import PROMPTS, RuntimeStepper, check_graph, open_session, validate_causal_lm

TOKENIZER_FILE = "tokenizer.json"
MAX_CONTEXT = 2048


def causal_lm_manifest(name: str, spec: ArchSpec, shape: ModelShape, tokens: SpecialTokens,
                       convention: PromptConvention, provenance: Provenance, variants: list[Variant],
                       context_cap: int, extra: dict[str, Any] | None = None) -> Manifest:
    """The manifest of a ``causal-lm`` package (files are filled in when it is written). The engine
    sizes prompts and KV buffers from ``context_length``: a 32k window would ask ONNX Runtime for a
    32k-position attention on a long file (and ~350 MiB of KV per sequence at 8k), so it is capped at
    ``context_cap``; the trained window stays in ``extra``."""
    return Manifest(
        name=name, kind="causal-lm", architecture=spec.name, tokenizer=TOKENIZER_FILE,
        num_layers=shape.num_layers, num_attention_heads=shape.num_heads, num_kv_heads=shape.num_kv_heads,
        head_size=shape.head_size, hidden_size=shape.hidden_size, vocab_size=shape.vocab_size,
        context_length=min(shape.context_length, context_cap), special_tokens=tokens, prompt=convention,
        provenance=provenance, variants=variants, files=[],
        extra={"trained_context_length": shape.context_length, **(extra or {})},
    )
"""Most positions a package records (same cap as export/catalog.py)."""
GRAPH_FILE = "model.onnx"
_EOS_NAMES = ("</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<eos>")


@dataclass
class ExportOptions:
    """What to build; mirrors the ``causal-lm`` command line."""

    out_dir: Path
    name: str
    license: str = "unknown"
    dtype: Literal["fp32", "fp16"] = "fp32"
    """``fp16`` adds a ``cuda-fp16`` variant next to the CPU one."""
    weight_int8: bool = False
    """Build ``cpu-int8``; it replaces ``fp32`` as the CPU variant unless ``keep_fp32``."""
    keep_fp32: bool = False
    steps: int = 32
    """Greedy decode steps validated per prompt."""
    prompts: Sequence[str] = PROMPTS
    threads: int = 0
    """Intra-op threads for validation sessions (0: ORT's default; tiny models run best on 1)."""
    notes: str = ""
    fim: tuple[str, str, str] | None = None
    """Prefix, suffix and middle markers: the package declares a fill-in-the-middle prompt."""


@dataclass
class Source:
    """Where the weights came from, for provenance."""

    path: Path
    sha256: str | None = None

    @classmethod
    def of(cls, path: Path) -> Source:
        """Hash a file, or a directory's weight files sorted by name and concatenated."""
        if path.is_file():
            return cls(path, sha256_file(path))
        weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".gguf"))
        if not weights:
            return cls(path, None)
        import hashlib

        h = hashlib.sha256()
        for p in weights:
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        return cls(path, h.hexdigest())


@dataclass
class BuiltVariant:
    """A variant validated in the staging directory, with the files it owns there."""

    variant: Variant
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def exporter_version() -> str:
    try:
        ours = importlib.metadata.version("codegen-lsp")
    except importlib.metadata.PackageNotFoundError:
        ours = "0+unknown"
    return (
        f"codegen-lsp {ours} (torch {torch.__version__}, transformers {transformers.__version__}, "
        f"onnxruntime {ort.__version__})"
    )


def special_tokens(model: Any, tokenizer: Tokenizer, vocab_size: int) -> SpecialTokens:
    """eos/bos/pad from the HF config and generation config, else from well-known token names."""
    eos: list[int] = []
    for cfg in (model.config, getattr(model, "generation_config", None)):
        value = getattr(cfg, "eos_token_id", None)
        for i in value if isinstance(value, list) else [value]:
            if isinstance(i, int) and 0 <= i < vocab_size and i not in eos:
                eos.append(i)
    # A raw-text prompt ends at the end of a document, which chat-tuned configs do not list as eos.
    end_of_text = tokenizer.token_to_id("<|endoftext|>")
    if eos and end_of_text is not None and end_of_text < vocab_size and end_of_text not in eos:
        eos.append(end_of_text)
    if not eos:
        eos = [i for n in _EOS_NAMES if (i := tokenizer.token_to_id(n)) is not None and i < vocab_size][:1]
    if not eos:
        raise ExportError("no end-of-sequence token in the config or the tokenizer; cannot stop generation")
    bos = getattr(model.config, "bos_token_id", None)
    pad = getattr(model.config, "pad_token_id", None)
    valid = lambda i: i if isinstance(i, int) and 0 <= i < vocab_size else None  # noqa: E731
    return SpecialTokens(eos=eos, bos=valid(bos), pad=valid(pad))


FILE_SEPARATORS = ("<|file_sep|>",)
"""Repository-level file separator tokens of known code models (Qwen2.5-Coder)."""


def prompt_convention(tokenizer: Tokenizer, bos: int | None) -> PromptConvention:
    """``end_before_newline`` when some token holds a newline plus indentation (BPE merges of
    "\\n    "); ``add_bos`` when the tokenizer's post-processor prepends ``bos`` itself; ``file_sep``
    when the vocabulary has a repository-level file separator as one token."""
    ids = tokenizer.encode('    """Doc."""\n    return x\n        y = 1', add_special_tokens=False).ids
    merges = any("\n " in tokenizer.decode([i], skip_special_tokens=False) for i in ids)
    with_special = tokenizer.encode("x", add_special_tokens=True).ids
    add_bos = bos is not None and len(with_special) > 0 and with_special[0] == bos
    file_sep = next((m for m in FILE_SEPARATORS if tokenizer.token_to_id(m) is not None
                     and len(tokenizer.encode(m, add_special_tokens=False).ids) == 1), "")
    return PromptConvention(end_before_newline=merges, add_bos=add_bos, file_sep=file_sep)


def with_fim(convention: PromptConvention, fim: tuple[str, str, str] | None) -> PromptConvention:
    """The convention with a fill-in-the-middle template, when ``fim`` names the three markers."""
    if fim is None:
        return convention
    prefix, suffix, middle = fim
    return replace(convention, template="fim", fim_prefix=prefix, fim_suffix=suffix, fim_middle=middle)


def prompt_ids(tokenizer: Tokenizer, prompts: Iterable[str], convention: PromptConvention,
               bos: int | None, max_len: int) -> list[list[int]]:
    out = []
    for text in prompts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if convention.add_bos and bos is not None:
            ids = [bos, *ids]
        out.append(ids[-max_len:])
    return out


def _session(graph: Path, provider: str, threads: int) -> tuple[Any, str]:
    """A session on the variant's provider; a CUDA-only variant without a usable GPU is validated on
    the CPU provider instead (fp16 graphs run there too), noting why."""
    try:
        return open_session(graph, provider, threads), ""
    except ProviderUnavailable as exc:
        if provider == "cpu":
            raise
        return open_session(graph, "cpu", threads), f"{provider} unavailable ({exc}); validated on cpu"


def _validate(built: BuiltVariant, graph: Path, model: Any, spec: ArchSpec, shape: ModelShape,
              kind: VariantKind, prompts: list[list[int]], options: ExportOptions) -> None:
    v = built.variant
    try:
        sess, note = _session(graph, v.provider, options.threads)
    except Exception as exc:  # no provider can load the graph here: record, do not fail the export
        v.validation = {"status": "skipped", "reason": f"{type(exc).__name__}: {exc}"}
        print(f"  {v.name}: validation skipped ({exc})")
        return
    tol = spec.tolerance(kind)
    check_graph(sess, model, spec, shape, tol)
    dims = KVDims(shape.num_layers, shape.num_kv_heads, shape.head_size, shape.vocab_size)
    stepper = RuntimeStepper(graph, dims, v.io, "cpu" if note else v.provider, options.threads,
                             max_len=max(map(len, prompts)) + options.steps + 1)
    r = validate_causal_lm(model, stepper, prompts, options.steps, tol)
    r["execution_provider"] = sess.get_providers()[0]
    if note:
        r["note"] = note
    v.validation = r
    print(
        f"  {v.name}: logits max err prefill {r['max_abs_err_prefill']:.2e} decode {r['max_abs_err_decode']:.2e}; "
        f"greedy {r['greedy_steps_matched']}+{r['greedy_ties']} ties/{r['greedy_steps_total']}"
        f" on {r['execution_provider']}"
    )


def export_causal_lm(model: Any, tokenizer_json: Path, source: Source, options: ExportOptions) -> Path:
    """Export, validate and package ``model`` (an fp32 HF causal LM). Returns the package directory.
    Raises ``UnsupportedArchitecture`` or a ``ValidationError`` subclass; then nothing is written."""
    spec = spec_for_config(model.config)
    shape = spec.read_shape(model.config)
    if any(p.dtype != torch.float32 for p in model.parameters()):
        model = model.float()  # refused by transformers for quantizer-loaded models; those load fp32
    model.eval()
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokens = special_tokens(model, tokenizer, shape.vocab_size)
    convention = with_fim(prompt_convention(tokenizer, tokens.bos), options.fim)
    prompts = prompt_ids(tokenizer, options.prompts, convention, tokens.bos, shape.context_length - options.steps - 1)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    io = spec.io_names()
    built: list[BuiltVariant] = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".staging-") as tmp:
        stage = Path(tmp)
        t0 = time.perf_counter()
        fp32_files = export_fp32(model, spec, shape, stage / "fp32" / GRAPH_FILE)
        print(f"exported {spec.name} ({shape.num_layers} layers) in {time.perf_counter() - t0:.1f}s")
        plan: list[tuple[str, VariantKind]] = []
        if not options.weight_int8 or options.keep_fp32:
            plan.append(("fp32", "fp32"))
        if options.weight_int8:
            plan.insert(0, ("cpu-int8", "int8"))
        if options.dtype == "fp16":
            plan.append(("cuda-fp16", "fp16"))
        for name, kind in plan:
            t0 = time.perf_counter()
            graph = stage / name / GRAPH_FILE
            if kind == "fp32":
                files = fp32_files
            elif kind == "int8":
                files = quantize_int8(stage / "fp32" / GRAPH_FILE, graph)
            else:
                files = convert_fp16(stage / "fp32" / GRAPH_FILE, graph)
            variant = Variant(
                name=name,
                provider="cuda" if kind == "fp16" else "cpu",
                graph=f"{name}/{GRAPH_FILE}",
                external_data=[f"{name}/{f.name}" for f in files[1:]],
                dtype="fp16" if kind == "fp16" else "fp32",
                quantization=INT8 if kind == "int8" else Quantization(),
                io=io,
            )
            b = BuiltVariant(variant, files)
            _validate(b, graph, model, spec, shape, kind, prompts, options)
            b.seconds = round(time.perf_counter() - t0, 2)
            variant.validation["seconds"] = b.seconds  # derive + validate this variant
            built.append(b)
        shutil.copyfile(tokenizer_json, stage / TOKENIZER_FILE)
        provenance = Provenance(
            source=str(source.path),
            source_sha256=source.sha256,
            license=options.license,
            exporter_version=exporter_version(),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            notes=options.notes,
        )
        manifest = causal_lm_manifest(options.name, spec, shape, tokens, convention, provenance, [], MAX_CONTEXT)
        for b in built:
            inputs, outputs = graph_io(stage / b.variant.graph)
            check_io_names(out, manifest, b.variant, inputs, outputs)
        _install(stage, out, [TOKENIZER_FILE, *(b.variant.name for b in built)])
    replaced = {b.variant.name for b in built}
    if options.weight_int8 and not options.keep_fp32:
        replaced.add("fp32")
    _write(out, manifest, [b.variant for b in built], drop=replaced)
    return out


def _install(stage: Path, out: Path, names: list[str]) -> None:
    """Move staged files and variant directories into the package, replacing older ones."""
    for name in names:
        dst = out / name
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        shutil.move(str(stage / name), str(dst))


def _existing_variants(out: Path, like: Manifest) -> list[Variant]:
    """Variants of an earlier manifest in ``out`` (e.g. a fused graph added by another builder), kept
    only when that manifest describes the same weights; a package of another model is replaced."""
    path = out / MANIFEST_FILE
    if not path.is_file():
        return []
    try:
        old = from_dict(Manifest, json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, FieldError, TypeError):
        return []
    same = (old.provenance.source_sha256, old.architecture, old.num_layers, old.vocab_size) == (
        like.provenance.source_sha256, like.architecture, like.num_layers, like.vocab_size
    )
    return old.variants if same else []


def _write(out: Path, manifest: Manifest, new: list[Variant], drop: set[str]) -> None:
    old = _existing_variants(out, manifest)
    kept = [v for v in old if v.name not in drop and all((out / p).is_file() for p in (v.graph, *v.external_data))]
    variants = new + kept
    manifest.variants = variants
    files = [manifest.tokenizer] + [p for v in variants for p in (v.graph, *v.external_data)]
    manifest.files = file_entries(out, files)
    write_manifest(out, manifest)
    current = {v.name for v in variants}
    for stale in (drop | {v.name for v in old}) - current:
        if (out / stale).is_dir():
            shutil.rmtree(out / stale)


def add_variants(out: Path, variants: list[Variant]) -> Path:
    """Add (or replace, by name) variants whose files already lie in the package ``out``; rehashes
    the file list and rewrites the manifest. The manifest must exist (run ``export_causal_lm`` first)."""
    path = out / MANIFEST_FILE
    manifest = from_dict(Manifest, json.loads(path.read_text(encoding="utf-8")))
    _write(out, manifest, variants, drop={v.name for v in variants})
    return path
