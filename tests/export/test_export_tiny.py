"""Tiny GPT-2 / Llama / Qwen2 exported, validated (fp32 and int8) and packaged for real."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from codegen_lsp.modelpkg import check_io_names, load_package
from export.quantize import count_ops
from export.specs import SPECS
from export.tiny import build_tiny_package


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
@pytest.mark.parametrize("arch", sorted(SPECS))
def test_export_validates_and_packages(tmp_path: Path, arch: str, int8: bool) -> None:
    start = time.perf_counter()
    out = build_tiny_package(tmp_path / "pkg", arch, int8=int8)
    assert time.perf_counter() - start < 30

    pkg = load_package(out, verify_hashes=True)
    m = pkg.manifest
    assert (m.kind, m.architecture, m.num_layers, m.context_length) == ("causal-lm", arch, 2, 256)
    assert [v.name for v in m.variants] == (["cpu-int8"] if int8 else ["fp32"])
    variant = pkg.variant("cpu")
    result = variant.validation
    assert result["status"] == "passed" and result["steps"] == 32 and result["prompts"] >= 3
    assert result["greedy_agreement"] >= result["min_greedy_agreement"]
    assert result["max_abs_err_decode"] <= result["atol"] + result["rtol"] * 10
    if int8:
        q = variant.quantization
        assert (q.method, q.bits, q.block_size, q.accuracy_level) == ("matmulnbits", 8, 32, 4)
        assert count_ops(pkg.path(variant.graph)).get("MatMulNBits", 0) >= 2 * 4  # q/k/v/o.. per layer
        assert not (out / "fp32").exists()
    else:
        assert result["greedy_steps_matched"] == result["greedy_steps_total"] == 128
        assert result["max_abs_err_prefill"] < 1e-4 and result["max_abs_err_decode"] < 1e-4
    sess = ort.InferenceSession(str(pkg.path(variant.graph)), providers=["CPUExecutionProvider"])
    check_io_names(out, m, variant, [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()])
    assert m.provenance.source_sha256 and m.provenance.created.endswith("+00:00")


def test_manifest_describes_tokens_and_prompt(tiny_package: Callable[..., Path]) -> None:
    llama = load_package(tiny_package("llama")).manifest
    assert llama.special_tokens.eos == [1] and llama.special_tokens.bos == 0
    assert llama.prompt.add_bos and llama.prompt.end_before_newline
    gpt2 = load_package(tiny_package("gpt2")).manifest
    assert gpt2.special_tokens.eos == [0] and not gpt2.prompt.add_bos and gpt2.prompt.end_before_newline
    assert gpt2.num_kv_heads == gpt2.num_attention_heads == 4 and llama.num_kv_heads == 2


def test_graph_prefills_from_an_empty_past_in_a_batch(tiny_llama_package: Path) -> None:
    pkg = load_package(tiny_llama_package)
    m, v = pkg.manifest, pkg.variant("cpu")
    sess = ort.InferenceSession(str(pkg.path(v.graph)), providers=["CPUExecutionProvider"])
    ids = np.array([[5, 6, 7, 8], [9, 10, 11, 12]], dtype=np.int64)
    feeds: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": np.ones_like(ids), "position_ids": np.tile(np.arange(4), (2, 1))}
    empty = np.zeros((2, m.num_kv_heads, 0, m.head_size), dtype=np.float32)
    feeds |= {v.io.past_key.format(i=i): empty for i in range(m.num_layers)}
    feeds |= {v.io.past_value.format(i=i): empty for i in range(m.num_layers)}
    logits, *present = sess.run(None, feeds)
    assert logits.shape == (2, 4, m.vocab_size)
    assert all(p.shape == (2, m.num_kv_heads, 4, m.head_size) for p in present)
    # row 0 alone gives the same logits: batch rows do not leak into each other
    single = {k: a[:1] for k, a in feeds.items()}
    np.testing.assert_allclose(sess.run(None, single)[0][0], logits[0], atol=1e-5)
