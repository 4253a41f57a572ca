"""Each way a graph can disagree with PyTorch raises its own error type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from codegen_lsp.engine.session import KVDims
from codegen_lsp.modelpkg import load_package
from export.errors import (
    GreedyMismatch,
    InputNameMismatch,
    LogitsMismatch,
    OutputNameMismatch,
    OutputShapeMismatch,
)
from export.specs import FP32, SPECS, Tolerance
from export.tiny import build_tiny_model
from export.validate import RuntimeStepper, check_graph, validate_causal_lm

PROMPTS = [[0, 5, 17, 42, 9], [0, 100, 3, 3, 250, 7, 8]]


def _edit(pkg: Path, tmp_path: Path, change: Callable[[onnx.ModelProto], None]) -> Path:
    graph = load_package(pkg).manifest.variants[0].graph
    model = onnx.load(str(pkg / graph))
    change(model)
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    return path


def _scale_initializer(dims: list[int], factor: float) -> Callable[[onnx.ModelProto], None]:
    """Scale the first weight of shape ``dims`` (TorchScript names MatMul weights anonymously)."""

    def change(model: onnx.ModelProto) -> None:
        for i, t in enumerate(model.graph.initializer):
            if list(t.dims) == dims:
                a = numpy_helper.to_array(t) * factor
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
                return
        raise AssertionError(f"no initializer of shape {dims}")

    return change


def _stepper(graph: Path) -> tuple[Any, RuntimeStepper]:
    """The tiny model and a stepper over ``graph`` through the runtime's session code."""
    model, _ = build_tiny_model("llama")
    shape = SPECS["llama"].read_shape(model.config)
    dims = KVDims(shape.num_layers, shape.num_kv_heads, shape.head_size, shape.vocab_size)
    return model, RuntimeStepper(graph, dims, SPECS["llama"].io_names(), max_len=64)


def _check(graph: Path, model: Any, spec: str = "llama", tol: Tolerance = FP32) -> None:
    sess = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    check_graph(sess, model, SPECS[spec], SPECS[spec].read_shape(model.config), tol)


def test_unchanged_graph_passes(tiny_llama_package: Path, tmp_path: Path) -> None:
    model, stepper = _stepper(_edit(tiny_llama_package, tmp_path, lambda m: None))
    result = validate_causal_lm(model, stepper, PROMPTS, steps=8)
    assert result["greedy_steps_matched"] == 16 and result["max_abs_err_decode"] < 1e-4


def test_perturbed_weight_raises_logits_mismatch(tiny_llama_package: Path, tmp_path: Path) -> None:
    sess = _edit(tiny_llama_package, tmp_path, _scale_initializer([128, 64], 1.05))  # an MLP down projection
    model, stepper = _stepper(sess)
    with pytest.raises(LogitsMismatch, match=r"prompt 0 .*prefill: max \|ort - torch\|"):
        validate_causal_lm(model, stepper, PROMPTS, steps=8)


def test_wrong_picks_within_tolerance_raise_greedy_mismatch(tiny_llama_package: Path, tmp_path: Path) -> None:
    # Negating the lm_head makes ORT pick the least likely token; a tolerance too loose to notice
    # the logits leaves the greedy check to catch it.
    sess = _edit(tiny_llama_package, tmp_path, _scale_initializer([64, 384], -1.0))  # lm_head
    model, stepper = _stepper(sess)
    loose = Tolerance(atol=1e9, rtol=0.0, tie_margin=0.0)
    with pytest.raises(GreedyMismatch, match="prompt 0 first differs at step 0"):
        validate_causal_lm(model, stepper, PROMPTS, steps=8, tolerance=loose)


def test_renamed_output_raises_output_name_mismatch(tiny_llama_package: Path, tmp_path: Path) -> None:
    def rename(model: onnx.ModelProto) -> None:
        for node in model.graph.node:
            node.input[:] = ["present.0.k" if i == "present.0.key" else i for i in node.input]
            node.output[:] = ["present.0.k" if o == "present.0.key" else o for o in node.output]
        model.graph.output[1].name = "present.0.k"

    graph = _edit(tiny_llama_package, tmp_path, rename)
    model, _ = build_tiny_model("llama")
    with pytest.raises(OutputNameMismatch, match="present.0.key"):
        _check(graph, model)


def test_renamed_input_raises_input_name_mismatch(tiny_llama_package: Path, tmp_path: Path) -> None:
    def rename(model: onnx.ModelProto) -> None:
        for node in model.graph.node:
            node.input[:] = ["ids" if i == "input_ids" else i for i in node.input]
        model.graph.input[0].name = "ids"

    graph = _edit(tiny_llama_package, tmp_path, rename)
    model, _ = build_tiny_model("llama")
    with pytest.raises(InputNameMismatch, match="input_ids"):
        _check(graph, model)


def test_truncated_logits_raise_output_shape_mismatch(tiny_llama_package: Path, tmp_path: Path) -> None:
    def drop_last_vocab_entry(model: onnx.ModelProto) -> None:
        for node in model.graph.node:
            node.output[:] = ["logits_full" if o == "logits" else o for o in node.output]
        model.graph.initializer.extend([
            numpy_helper.from_array(np.array([0], dtype=np.int64), "cut_start"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "cut_end"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "cut_axis"),
        ])
        model.graph.node.append(
            helper.make_node("Slice", ["logits_full", "cut_start", "cut_end", "cut_axis"], ["logits"])
        )

    graph = _edit(tiny_llama_package, tmp_path, drop_last_vocab_entry)
    model, _ = build_tiny_model("llama")
    with pytest.raises(OutputShapeMismatch, match="'logits' has shape"):
        _check(graph, model)
    with pytest.raises(OutputShapeMismatch, match="vocab_size is 384 but the graph's logits has 383"):
        _stepper(graph)  # the runtime's session refuses it before a step


def test_structural_check_passes_on_int8_graph(tiny_package: Callable[..., Path]) -> None:
    pkg = load_package(tiny_package("gpt2", int8=True))
    v = pkg.variant("cpu")
    sess = ort.InferenceSession(str(pkg.path(v.graph)), providers=["CPUExecutionProvider"])
    model, _ = build_tiny_model("gpt2")
    shape = SPECS["gpt2"].read_shape(model.config)
    check_graph(sess, model, SPECS["gpt2"], shape, SPECS["gpt2"].tolerance("int8"))
    with pytest.raises(LogitsMismatch, match="batch 2, past 5"):
        check_graph(sess, model, SPECS["gpt2"], shape, FP32)  # int8 is not fp32-exact
