"""Fused decoder graphs from onnxruntime-genai's model builder, trimmed to last-position logits.

The builder emits one packed QKV MatMulNBits per layer, GroupQueryAttention with rotary embedding
inside (so the graph has no ``position_ids``) and a KV cache that may share one buffer between past
and present. ``keep_last_logits`` cuts the lm_head down to the last position. The runtime's
``DecoderSession`` drives such a graph (one shared buffer per cache tensor, bound as both past and
present; the attention mask spans the valid prefix, from which the graph derives GQA's ``seqlens_k``
and RoPE positions), and validation goes through it (``export.validate.RuntimeStepper``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from codegen_lsp.engine.session import KVDims
from codegen_lsp.modelpkg import IONames, Quantization, Variant

from .errors import ExportError, ProviderUnavailable
from .specs import Tolerance

if TYPE_CHECKING:
    from .validate import Stepper

Precision = Literal["int4", "int8", "fp16", "fp32"]
GENAI_CONFIG = "genai_config.json"
GRAPH_FILE = "model.onnx"
DEFAULT_MAX_LENGTH = 2048


class BuilderFailed(ExportError):
    """onnxruntime-genai's model builder exited with an error."""


@dataclass(frozen=True)
class FusedBuild:
    """One graph written by ``build_fused``."""

    directory: Path
    graph: Path
    external_data: list[Path]
    precision: Precision
    provider: Literal["cpu", "cuda"]
    accuracy_level: int
    seconds: float


def build_fused(
    checkpoint: Path,
    out_dir: Path,
    precision: Precision = "int8",
    provider: Literal["cpu", "cuda"] = "cpu",
    max_length: int = DEFAULT_MAX_LENGTH,
    accuracy_level: int = 4,
    log: Path | None = None,
    options: Sequence[str] = (),
    embed_fp16: bool = False,
) -> FusedBuild:
    """Run the genai builder on an HF checkpoint dir, then keep only last-position logits.

    The builder runs in a subprocess: it prints progress bars to stdout, appends its own directory
    to ``sys.path`` and imports torch, none of which belongs in our process. ``max_length`` caps the
    cache genai's Generator preallocates (the builder's default is the trained context, 8192)."""
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / ".builder-cache"
    quantized = precision in ("int4", "int8")
    extra = [f"accuracy_level={accuracy_level}", *options] if quantized else list(options)
    cmd = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(checkpoint), "-o", str(out_dir), "-p", precision, "-e", provider, "-c", str(cache),
    ]
    if extra:
        cmd += ["--extra_options", *extra]
    log = log or out_dir / "builder.log"
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise BuilderFailed(f"model builder ({precision}, {provider}) exited {proc.returncode}; log {log}:\n{tail}")
    shutil.rmtree(cache, ignore_errors=True)
    log.unlink(missing_ok=True)
    for copied in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (out_dir / copied).unlink(missing_ok=True)  # the package keeps one tokenizer, at its root
    set_max_length(out_dir / GENAI_CONFIG, max_length)
    graph = out_dir / GRAPH_FILE
    keep_last_logits(graph)
    if embed_fp16:
        half_embedding(graph)
    data = sorted(p for p in out_dir.iterdir() if p.name.startswith(GRAPH_FILE + ".data"))
    level = accuracy_level if quantized else 0
    return FusedBuild(out_dir, graph, data, precision, provider, level, time.perf_counter() - t0)


def set_max_length(genai_config: Path, max_length: int) -> None:
    """Cap genai's search.max_length (the cache it preallocates); the trained context stays recorded."""
    cfg = json.loads(genai_config.read_text(encoding="utf-8"))
    cfg["search"]["max_length"] = min(max_length, int(cfg["model"]["context_length"]))
    genai_config.write_text(json.dumps(cfg, indent=4) + "\n", encoding="utf-8")


def keep_last_logits(graph_path: Path, logits: str = "logits") -> None:
    """Slice the final hidden states to the last position so only [B, 1, vocab] logits are computed.

    Prefill otherwise runs the lm_head (vocab x hidden, the largest matrix) for every prompt token
    and returns a [B, S, vocab] tensor nobody reads. Only the .onnx file is rewritten; the weights
    (external data) are not loaded or touched."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(graph_path), load_external_data=False)
    graph = model.graph
    producer = next((n for n in graph.node if logits in n.output), None)
    if producer is None:
        raise ExportError(f"{graph_path}: no node produces '{logits}'")
    if any(n.op_type == "Slice" and n.name == "/lm_head/last_position" for n in graph.node):
        return  # already trimmed
    hidden = producer.input[0]
    sliced = hidden + "/last_position"
    consts = [
        helper.make_tensor("/lm_head/last_position/starts", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("/lm_head/last_position/ends", TensorProto.INT64, [1], [np.iinfo(np.int64).max]),
        helper.make_tensor("/lm_head/last_position/axes", TensorProto.INT64, [1], [1]),
    ]
    graph.initializer.extend(consts)
    slice_node = helper.make_node(
        "Slice", [hidden, *(c.name for c in consts)], [sliced], name="/lm_head/last_position"
    )
    producer.input[0] = sliced
    graph.node.insert(list(graph.node).index(producer), slice_node)
    out = next(o for o in graph.output if o.name == logits)
    seq_dim = out.type.tensor_type.shape.dim[1]
    seq_dim.Clear()
    seq_dim.dim_value = 1
    onnx.save(model, str(graph_path))


def graph_io_names(graph_path: Path) -> tuple[list[str], list[str]]:
    """Input and output names of a graph, read without loading its weights."""
    import onnx

    model = onnx.load(str(graph_path), load_external_data=False)
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output]


# Fused graphs need their own tolerances: accuracy_level 4 quantizes activations to int8 inside
# every MatMulNBits, so SmolLM2-135M's logits (range about +-30) move by 0.9 typically and 2.3 at
# worst over 4 prompts x 33 positions, while greedy picks agree on 131/132 steps (the one miss a
# 0.006 near-tie). A real bug (wrong mask, RoPE or cache position) moves logits by 10+ and breaks
# greedy within a few steps, so these bounds still catch it. fp16 on 30 layers: max 0.11.
FUSED_INT8 = Tolerance(atol=3.0, rtol=0.1, tie_margin=0.5, min_greedy_agreement=0.9)
FUSED_FP16 = Tolerance(atol=0.3, rtol=0.02, tie_margin=0.1, min_greedy_agreement=0.95)
FUSED_FP32 = Tolerance(atol=1e-3, rtol=1e-3, tie_margin=2e-3)
# int4 weights (int8 tied head) move logits further; measured on Qwen2.5-Coder-0.5B (docs/performance.md).
FUSED_INT4 = Tolerance(atol=6.0, rtol=0.2, tie_margin=1.0, min_greedy_agreement=0.8)
_TOLERANCE: dict[Precision, Tolerance] = {"int4": FUSED_INT4, "int8": FUSED_INT8, "fp16": FUSED_FP16, "fp32": FUSED_FP32}
_ORT_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def fused_io_names() -> IONames:
    """Tensor names of a genai decoder graph (checked against each graph by ``check_io_names``)."""
    return IONames(
        input_ids="input_ids",
        attention_mask="attention_mask",
        position_ids=None,
        past_key="past_key_values.{i}.key",
        past_value="past_key_values.{i}.value",
        present_key="present.{i}.key",
        present_value="present.{i}.value",
        logits="logits",
        past_present_share_buffer=True,
        logits_last_only=True,
    )


def fused_variant(build: FusedBuild, name: str, package_root: Path) -> Variant:
    """The manifest entry for a build lying under ``package_root/name``."""
    rel = lambda p: p.relative_to(package_root).as_posix()  # noqa: E731
    quant = (
        Quantization(method="matmulnbits", bits=4 if build.precision == "int4" else 8, block_size=32,
                     accuracy_level=build.accuracy_level)
        if build.precision in ("int4", "int8")
        else Quantization()
    )
    return Variant(
        name=name,
        provider=build.provider,
        graph=rel(build.graph),
        external_data=[rel(p) for p in build.external_data],
        dtype="fp16" if build.precision == "fp16" else "fp32",
        quantization=quant,
        builder="onnxruntime-genai",
        io=fused_io_names(),
    )


def validate_fused(
    build: FusedBuild,
    torch_model: Any,
    prompts: Sequence[Sequence[int]],
    dims: KVDims,
    steps: int = 32,
) -> dict[str, Any]:
    """Check a fused graph against PyTorch (``export.validate.validate_causal_lm``) through the
    runtime's session code on the variant's provider. Where that provider is missing (CUDA here), the
    graph is validated on the CPU provider if ORT's CPU kernels run it, and the record says so; if they
    cannot, it returns ``{"status": "skipped", "reason": ...}``. Raises a ``ValidationError`` subclass
    when the graph disagrees with PyTorch."""
    from .validate import RuntimeStepper, validate_causal_lm

    max_len = max(len(p) for p in prompts) + steps + 1
    provider, note = build.provider, ""
    try:
        stepper = RuntimeStepper(build.graph, dims, fused_io_names(), build.provider, max_len=max_len)
    except ProviderUnavailable as exc:
        if build.provider == "cpu":
            raise
        provider, note = "cpu", f"{exc}"
        try:
            stepper = RuntimeStepper(build.graph, dims, fused_io_names(), "cpu", max_len=max_len)
        except ProviderUnavailable as cpu_exc:  # e.g. no CPU kernel for an fp16 op
            return {"status": "skipped", "reason": f"{note}; the CPU provider cannot run it either: {cpu_exc}"[:500]}
        note += "; validated with the CPU provider's kernels instead"
    result = validate_causal_lm(torch_model, stepper, prompts, steps, _TOLERANCE[build.precision])
    result["stepper"] = "codegen_lsp.engine.session.DecoderSession (the runtime's, shared KV buffer)"
    result["provider"] = _ORT_PROVIDER[provider]
    if note:
        result["note"] = note
    return result


@dataclass(frozen=True)
class DecodeTiming:
    """Greedy generation speed for one prompt."""

    prompt_tokens: int
    new_tokens: int
    first_token_s: float
    """Prefill plus choosing the first token."""
    prefill_tok_s: float
    decode_tok_s: float
    """Tokens per second after the first one."""
    tokens: tuple[int, ...]


def time_stepper(stepper: Stepper, prompt: list[int], new_tokens: int = 128) -> DecodeTiming:
    """Greedy-decode ``new_tokens`` (no stop token) after a warm-up run, timing prefill and steps."""
    stepper.prefill(np.asarray(prompt[:8]))  # warm-up: first run allocates and packs weights
    stepper.step(0)
    t0 = time.perf_counter()
    token = int(np.argmax(stepper.prefill(np.asarray(prompt))))
    t1 = time.perf_counter()
    tokens = [token]
    for _ in range(new_tokens - 1):
        token = int(np.argmax(stepper.step(token)))
        tokens.append(token)
    t2 = time.perf_counter()
    return DecodeTiming(len(prompt), new_tokens, t1 - t0, len(prompt) / (t1 - t0),
                        (new_tokens - 1) / (t2 - t1), tuple(tokens))


def time_genai(model_dir: Path, prompt: list[int], new_tokens: int = 128) -> DecodeTiming:
    """The same measurement through onnxruntime-genai's own Generator (the baseline to beat)."""
    import onnxruntime_genai as og

    model = og.Model(str(model_dir))

    def run(ids: list[int], n: int) -> tuple[float, float, list[int]]:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + n, do_sample=False)
        gen = og.Generator(model, params)
        t0 = time.perf_counter()
        gen.append_tokens(np.asarray([ids], dtype=np.int32))
        out: list[int] = []
        t1 = t0
        while len(out) < n and not gen.is_done():
            gen.generate_next_token()
            out.append(int(gen.get_next_tokens()[0]))
            if len(out) == 1:
                t1 = time.perf_counter()
        return t1 - t0, time.perf_counter() - t1, out

    run(prompt[:8], 2)
    first, rest, tokens = run(prompt, new_tokens)
    return DecodeTiming(len(prompt), len(tokens), first, len(prompt) / first,
                        (len(tokens) - 1) / rest, tuple(tokens))


def half_embedding(graph_path: Path, name: str = "model.embed_tokens.weight") -> None:
    """Store the (unquantized) token embedding table as fp16 and cast the gathered rows back to fp32.

    onnxruntime-genai quantizes an embedding Gather only to 4 bits, so an int8 build keeps the table
    in fp32: for Qwen2.5-Coder-0.5B that is 545 MB of the process's memory for a lookup of one row
    per token. fp16 halves it; a row's values move by at most 2**-11 relative."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(graph_path), load_external_data=True)
    graph = model.graph
    init = next((i for i in graph.initializer if i.name == name), None)
    gather = next((n for n in graph.node if n.op_type == "Gather" and n.input and n.input[0] == name), None)
    if init is None or gather is None or init.data_type != TensorProto.FLOAT:
        return  # quantized, shared or already converted: nothing to do
    half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name)
    graph.initializer.remove(init)
    graph.initializer.append(half)
    rows, cast = gather.output[0], gather.output[0] + "/fp16"
    gather.output[0] = cast
    at = list(graph.node).index(gather) + 1
    graph.node.insert(at, helper.make_node("Cast", [cast], [rows], name=gather.name + "/to_fp32", to=TensorProto.FLOAT))
    data = graph_path.name + ".data"
    for stale in graph_path.parent.glob(graph_path.name + ".data*"):
        stale.unlink()
    onnx.save(model, str(graph_path), save_as_external_data=True, all_tensors_to_one_file=True, location=data,
              size_threshold=1024)
    for written in (graph_path, graph_path.with_name(data)):
        written.chmod(0o644)
