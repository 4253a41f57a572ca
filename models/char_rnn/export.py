"""Checkpoint -> ``char-rnn`` model package (ONNX graph, tokenizer, manifest), validated against PyTorch.

Package layout::

    manifest.json      kind 'char-rnn'; extra['alphabet'] lists the symbol of every id
    tokenizer.json     tokenizers-library JSON mapping each character to its id (BPE, no merges)
    cpu-fp32/model.onnx
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from codegen_lsp.modelpkg import (
    IONames,
    Manifest,
    PromptConvention,
    Provenance,
    SpecialTokens,
    Variant,
    file_entries,
    load_package,
    sha256_file,
    write_manifest,
)
from export.errors import (
    GreedyMismatch,
    InputNameMismatch,
    LogitsMismatch,
    OutputNameMismatch,
    OutputShapeMismatch,
)
from models.char_rnn.alphabet import EOS_ID, UNK_ID, Alphabet
from models.char_rnn.infer import greedy_ids
from models.char_rnn.model import CharRNN
from models.char_rnn.train import load_model

INPUTS = ("input_ids", "h0", "c0")
OUTPUTS = ("logits", "hn", "cn")
OPSET = 17
ATOL = 1e-4
GREEDY_CHARS = 64
GRAPH = "cpu-fp32/model.onnx"
TOKENIZER = "tokenizer.json"
CONTEXT_LENGTH = 8192
"""An LSTM has no position limit; this only bounds how much prompt the engine feeds in."""
VALIDATION_PROMPT = 'def add(a, b):\n    """Return the sum of a and b."""'


def export_onnx(model: CharRNN, path: Path) -> None:
    """TorchScript-based exporter: it maps ``nn.LSTM`` to single ONNX ``LSTM`` nodes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.zeros((1, 4), dtype=torch.int64)
    h, c = model.init_state(1)
    state_axes = {1: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (ids, h, c), str(path), input_names=list(INPUTS), output_names=list(OUTPUTS),
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"},
                          "h0": state_axes, "c0": state_axes, "hn": state_axes, "cn": state_axes},
            opset_version=OPSET, dynamo=False,
        )


def _max_err(name: str, got: np.ndarray, want: np.ndarray, atol: float) -> float:
    if got.shape != want.shape:
        raise OutputShapeMismatch(f"output '{name}': ONNX shape {list(got.shape)}, PyTorch {list(want.shape)}")
    err = float(np.abs(got - want).max())
    if not err <= atol:  # also catches NaN
        raise LogitsMismatch(f"output '{name}' differs from PyTorch by {err:.3g} (tolerance {atol:g})")
    return err


@torch.no_grad()
def validate(model: CharRNN, graph: Path, prompt_ids: list[int], atol: float = ATOL) -> dict[str, Any]:
    """Compare the graph with ``model``: names, shapes, values (prefill on a batch of 2 with a random
    initial state, then one decode step with the carried state) and greedy parity for
    ``GREEDY_CHARS`` characters. Raises an ``export.errors.ValidationError`` subclass."""
    sess = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    names_in = [i.name for i in sess.get_inputs()]
    names_out = [o.name for o in sess.get_outputs()]
    if names_in != list(INPUTS):
        raise InputNameMismatch(f"graph has inputs {names_in}, expected {list(INPUTS)}")
    if names_out != list(OUTPUTS):
        raise OutputNameMismatch(f"graph has outputs {names_out}, expected {list(OUTPUTS)}")
    gen = torch.Generator().manual_seed(0)
    cfg = model.cfg
    ids = torch.randint(0, cfg.vocab_size, (2, 33), generator=gen)
    h0 = torch.randn(cfg.num_layers, 2, cfg.hidden_size, generator=gen) * 0.5
    c0 = torch.randn(cfg.num_layers, 2, cfg.hidden_size, generator=gen) * 0.5
    errors: dict[str, float] = {}
    want = model(ids, h0, c0)
    got = sess.run(None, {"input_ids": ids.numpy(), "h0": h0.numpy(), "c0": c0.numpy()})
    for name, g, w in zip(OUTPUTS, got, want, strict=True):
        errors[f"prefill_{name}"] = _max_err(name, g, w.numpy(), atol)
    step = torch.randint(0, cfg.vocab_size, (2, 1), generator=gen)
    want = model(step, want[1], want[2])
    got = sess.run(None, {"input_ids": step.numpy(), "h0": got[1], "c0": got[2]})
    for name, g, w in zip(OUTPUTS, got, want, strict=True):
        errors[f"decode_{name}"] = _max_err(f"{name} (decode step)", g, w.numpy(), atol)
    ref = model.greedy(prompt_ids, GREEDY_CHARS)
    out = greedy_ids(sess, prompt_ids, GREEDY_CHARS, cfg.num_layers, cfg.hidden_size)
    if out != ref:
        first = next((i for i, (a, b) in enumerate(zip(out, ref, strict=False)) if a != b), min(len(out), len(ref)) - 1)
        raise GreedyMismatch(f"greedy decoding diverges at char {first}: ONNX id {out[first]}, PyTorch id {ref[first]}")
    return {"status": "passed", "atol": atol, "max_abs_error": errors, "greedy_chars": len(ref),
            "provider": "cpu"}


def build_package(ckpt_path: Path, out: Path, name: str = "char-rnn-python") -> Path:
    """Export, validate and write the package directory ``out`` (replaced if present)."""
    model, alphabet, ckpt = load_model(ckpt_path)
    if out.exists():
        shutil.rmtree(out)
    export_onnx(model, out / GRAPH)
    alphabet.write_tokenizer(out / TOKENIZER)
    validation = validate(model, out / GRAPH, alphabet.encode(VALIDATION_PROMPT))
    cfg = model.cfg
    history = ckpt["state"]["history"]
    last_valid = next((h for h in reversed(history) if "valid_loss" in h), None)
    manifest = Manifest(
        name=name, kind="char-rnn", architecture="lstm", tokenizer=TOKENIZER,
        num_layers=cfg.num_layers, num_attention_heads=0, num_kv_heads=0, head_size=0,
        hidden_size=cfg.hidden_size, vocab_size=cfg.vocab_size, context_length=CONTEXT_LENGTH,
        special_tokens=SpecialTokens(eos=[EOS_ID]), prompt=PromptConvention(),
        provenance=Provenance(
            source=ckpt_path.name, source_sha256=sha256_file(ckpt_path), license="Apache-2.0",
            exporter_version="models.char_rnn 0.1", created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            notes=f"trained from scratch by models.char_rnn ({ckpt['state']['steps']} steps); "
                  f"last validation: {last_valid}",
        ),
        variants=[Variant(name="cpu-fp32", provider="cpu", graph=GRAPH,
                          # IONames describes causal-lm graphs; the LSTM state names are in extra['state'].
                          io=IONames(attention_mask="", position_ids=None, logits="logits"),
                          validation=validation)],
        files=file_entries(out, [GRAPH, TOKENIZER]),
        extra=_extra(alphabet),
    )
    write_manifest(out, manifest)
    load_package(out, verify_hashes=True)  # the runtime's own checks
    return out


def _extra(alphabet: Alphabet) -> dict[str, Any]:
    return {
        "alphabet": alphabet.symbols,
        "unk_id": UNK_ID,
        "eos_id": EOS_ID,
        "inputs": {"input_ids": ["batch", "sequence"], "h0": ["num_layers", "batch", "hidden_size"],
                   "c0": ["num_layers", "batch", "hidden_size"]},
        "outputs": {"logits": ["batch", "sequence", "vocab_size"], "hn": ["num_layers", "batch", "hidden_size"],
                    "cn": ["num_layers", "batch", "hidden_size"]},
        "state": {"inputs": ["h0", "c0"], "outputs": ["hn", "cn"],
                  "note": "zeros start a sequence; feed hn/cn back as h0/c0 with the next ids"},
    }
