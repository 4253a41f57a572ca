"""The fused onnxruntime-genai path on a tiny random Llama: builder, last-logits surgery, the
shared-buffer stepper and validation against PyTorch (real builder, real ORT sessions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from codegen_lsp.engine.session import KVDims
from codegen_lsp.modelpkg import (
    IONameMismatch,
    Manifest,
    PromptConvention,
    Provenance,
    SpecialTokens,
    check_io_names,
)
from export.errors import LogitsMismatch
from export.fused import (
    FusedBuild,
    build_fused,
    fused_io_names,
    fused_variant,
    graph_io_names,
    keep_last_logits,
    validate_fused,
)
from export.tiny import tiny_tokenizer
from export.validate import RuntimeStepper

pytestmark = pytest.mark.slow  # each builder run is a subprocess importing torch (~5-15 s)

LAYERS, KV_HEADS, HEAD = 2, 2, 16
VOCAB = tiny_tokenizer("llama").get_vocab_size()
PROMPTS = ['def add(a, b):\n    """Return a + b."""', "class Stack:\n    def push(self, item):"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LlamaForCausalLM, list[list[int]]]:
    """A tiny random Llama saved as an HF checkpoint dir, the model itself and tokenized prompts."""
    tok = tiny_tokenizer("llama")
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=KV_HEADS, head_dim=HEAD, max_position_embeddings=256,
        bos_token_id=0, eos_token_id=1, tie_word_embeddings=True, initializer_range=0.2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    out = tmp_path_factory.mktemp("tiny-llama-ckpt")
    model.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(out)
    prompts = [tok.encode(p, add_special_tokens=False).ids for p in PROMPTS]
    return out, model, prompts


@pytest.fixture(scope="module")
def int8(checkpoint: tuple[Path, LlamaForCausalLM, list[list[int]]],
         tmp_path_factory: pytest.TempPathFactory) -> FusedBuild:
    return build_fused(checkpoint[0], tmp_path_factory.mktemp("pkg") / "cpu-int8", "int8", "cpu", max_length=128)


def test_graph_has_fused_ops_and_last_position_logits(int8: FusedBuild) -> None:
    model = onnx.load(str(int8.graph), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert {"GroupQueryAttention", "MatMulNBits", "SkipSimplifiedLayerNormalization"} <= ops
    logits = next(o for o in model.graph.output if o.name == "logits")
    assert logits.type.tensor_type.shape.dim[1].dim_value == 1
    keep_last_logits(int8.graph)  # idempotent
    again = onnx.load(str(int8.graph), load_external_data=False)
    assert sum(n.op_type == "Slice" for n in again.graph.node) == 1
    cfg = json.loads((int8.directory / "genai_config.json").read_text())
    assert cfg["search"]["max_length"] == 128 and cfg["search"]["past_present_share_buffer"] is True
    assert not (int8.directory / "tokenizer.json").exists()


def test_io_names_match_the_manifest_promise(int8: FusedBuild) -> None:
    variant = fused_variant(int8, "cpu-int8", int8.directory.parent)
    assert variant.graph == "cpu-int8/model.onnx" and variant.builder == "onnxruntime-genai"
    assert variant.io.position_ids is None and variant.io.past_present_share_buffer and variant.io.logits_last_only
    assert variant.quantization.bits == 8 and variant.quantization.accuracy_level == 4
    manifest = Manifest(
        name="tiny", kind="causal-lm", architecture="llama", tokenizer="tokenizer.json", num_layers=LAYERS,
        num_attention_heads=4, num_kv_heads=KV_HEADS, head_size=HEAD, hidden_size=64, vocab_size=384,
        context_length=128, special_tokens=SpecialTokens(eos=[1]), prompt=PromptConvention(),
        provenance=Provenance("tiny", None, "Apache-2.0", "test", "2026-01-01T00:00:00+00:00"),
        variants=[variant], files=[],
    )
    inputs, outputs = graph_io_names(int8.graph)
    check_io_names(int8.directory, manifest, variant, inputs, outputs)
    with pytest.raises(IONameMismatch):
        check_io_names(int8.directory, manifest, variant, [n for n in inputs if n != "attention_mask"], outputs)


def test_runtime_session_gives_each_sequence_a_clean_cache(int8: FusedBuild,
                                                           checkpoint: tuple[Path, LlamaForCausalLM, list[list[int]]]) -> None:
    """Validation drives the fused graph through the runtime's own session code: a longer earlier
    sequence leaves nothing behind, and a sequence longer than the shared buffer is refused."""
    _, _, prompts = checkpoint
    dims = KVDims(LAYERS, KV_HEADS, HEAD, VOCAB)
    fresh = RuntimeStepper(int8.graph, dims, fused_io_names(), max_len=64)
    reused = RuntimeStepper(int8.graph, dims, fused_io_names(), max_len=64)
    reused.prefill(prompts[1] * 2)
    for _ in range(5):
        reused.step(3)
    np.testing.assert_array_equal(fresh.prefill(prompts[0]), reused.prefill(prompts[0]))
    np.testing.assert_array_equal(fresh.step(7), reused.step(7))
    assert reused.length == len(prompts[0]) + 1
    with pytest.raises(ValueError, match="holds 64 positions"):
        fresh.prefill(list(range(65)))


def test_int8_validates_against_pytorch(int8: FusedBuild,
                                       checkpoint: tuple[Path, LlamaForCausalLM, list[list[int]]]) -> None:
    _, model, prompts = checkpoint
    r = validate_fused(int8, model, prompts, KVDims(LAYERS, KV_HEADS, HEAD, VOCAB), steps=16)
    assert r["status"] == "passed" and r["provider"] == "CPUExecutionProvider"
    assert r["greedy_agreement"] >= 0.9 and r["max_abs_err_decode"] < 1.0


def test_validation_catches_a_broken_attention(int8: FusedBuild, tmp_path: Path,
                                               checkpoint: tuple[Path, LlamaForCausalLM, list[list[int]]]) -> None:
    """The int8 tolerance is loose, but a wrong softmax scale in one layer still fails it."""
    broken_dir = tmp_path / "broken"
    shutil.copytree(int8.directory, broken_dir)
    graph = onnx.load(str(broken_dir / "model.onnx"), load_external_data=False)
    gqa = next(n for n in graph.graph.node if n.op_type == "GroupQueryAttention")
    next(a for a in gqa.attribute if a.name == "scale").f *= 8.0
    onnx.save(graph, str(broken_dir / "model.onnx"))
    broken = FusedBuild(broken_dir, broken_dir / "model.onnx", [], "int8", "cpu", 4, 0.0)
    _, model, prompts = checkpoint
    with pytest.raises(LogitsMismatch):
        validate_fused(broken, model, prompts, KVDims(LAYERS, KV_HEADS, HEAD, VOCAB), steps=16)


def test_cuda_fp16_variant_is_validated_on_cpu_kernels_when_no_gpu(
    checkpoint: tuple[Path, LlamaForCausalLM, list[list[int]]], tmp_path: Path
) -> None:
    ckpt, model, prompts = checkpoint
    fp16 = build_fused(ckpt, tmp_path / "cuda-fp16", "fp16", "cuda", max_length=128)
    assert fused_variant(fp16, "cuda-fp16", tmp_path).dtype == "fp16"
    r = validate_fused(fp16, model, prompts, KVDims(LAYERS, KV_HEADS, HEAD, VOCAB), steps=8)
    assert r["status"] == "passed"
    if r["provider"] == "CPUExecutionProvider":  # no CUDA device: the record must say so
        assert "CPU provider" in r["note"]
