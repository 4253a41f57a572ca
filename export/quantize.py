"""Derived variants of an exported fp32 graph: weight-only int8 (CPU) and fp16 (CUDA).

``onnxruntime.quantization.quantize_dynamic`` is deliberately not used: its dynamic activation
quantization of every MatMul (attention scores included) breaks these decoders' logits. Weight-only
MatMulNBits keeps activations in float and quantizes only constant weight matrices.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import onnx
from onnx import helper, numpy_helper

from codegen_lsp.modelpkg import Quantization

from .torch_export import save_onnx

INT8 = Quantization(method="matmulnbits", bits=8, block_size=32, accuracy_level=4)


def gemm_to_matmul(model: onnx.ModelProto) -> int:
    """Rewrite ``Gemm(x, W, b)`` with a constant ``W`` as ``MatMul`` + ``Add`` so MatMulNBits can take
    it (GPT-2's Conv1D layers trace to Gemm). Returns how many nodes were rewritten."""
    inits = {t.name: t for t in model.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in inits:
            nodes.append(node)
            continue
        weight = node.input[1]
        if attrs.get("transB", 0):
            w = numpy_helper.to_array(inits[weight]).T.copy()
            weight = f"{weight}_transposed"
            model.graph.initializer.append(numpy_helper.from_array(w, weight))
        product = f"{node.output[0]}_matmul" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], weight], [product], name=f"{node.name}_MatMul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return rewritten


def quantize_int8(src: Path, dst: Path) -> list[Path]:
    """Weight-only int8: every MatMul with a constant weight becomes com.microsoft.MatMulNBits
    (bits 8, block 32, symmetric, accuracy level 4). Returns the files written."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(src))
    gemm_to_matmul(model)
    quiet = logging.getLogger("onnxruntime.quantization")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # it logs one INFO line per skipped node
    try:
        quant = MatMulNBitsQuantizer(
            model,
            bits=INT8.bits,
            block_size=INT8.block_size,
            is_symmetric=True,
            accuracy_level=INT8.accuracy_level,
        )
        quant.process()
    finally:
        quiet.setLevel(level)
    out = quant.model.model
    if not any(n.op_type == "MatMulNBits" for n in out.graph.node):
        raise RuntimeError(f"{src}: no MatMul was quantized (graph has no constant-weight MatMul)")
    return save_onnx(out, dst)


def convert_fp16(src: Path, dst: Path) -> list[Path]:
    """fp16 weights, activations, KV cache and logits (inputs/outputs included), for CUDA."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=False, disable_shape_infer=True)
    return save_onnx(half, dst)


def count_ops(path: Path) -> dict[str, int]:
    """Op-type histogram of a graph (for reports and tests)."""
    m = onnx.load(str(path), load_external_data=False)
    return dict(Counter(n.op_type for n in m.graph.node))
