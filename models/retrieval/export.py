"""Checkpoint -> ``retriever`` model package (two ONNX graphs, tokenizer, manifest), validated against
PyTorch through the runtime's own ``RetrieverEngine``.

Package layout::

    manifest.json        kind 'retriever'; extra['retriever'] holds lengths, dimension, pad id
    tokenizer.json       the identifier-splitting BPE (models/retrieval/tokenizer.py)
    cpu-fp32/query.onnx  (input_ids, attention_mask) [B, T] int64 -> embedding [B, d] float32, unit rows
    cpu-fp32/code.onnx   same contract, the code encoder
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codegen_lsp.engine.kinds import load_retriever
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
from export.errors import OutputShapeMismatch, ValidationError
from models.retrieval.model import DualEncoder, EncoderGraph, count_parameters, pad_batch
from models.retrieval.tokenizer import PAD_ID, encode_batch
from models.retrieval.train import load_model

OPSET = 17
ATOL = 1e-4
VARIANT = "cpu-fp32"
GRAPHS = {"query": f"{VARIANT}/query.onnx", "code": f"{VARIANT}/code.onnx"}
TOKENIZER = "tokenizer.json"
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "embedding"


class EmbeddingMismatch(ValidationError):
    """An embedding from the runtime differs from PyTorch's by more than the tolerance."""


class RankingMismatch(ValidationError):
    """The runtime's embeddings rank a different code first for some query than PyTorch's do."""


def export_onnx(model: DualEncoder, which: str, path: Path) -> None:
    """TorchScript-based exporter: it maps ``nn.GRU`` to single ONNX ``GRU`` nodes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, mask = pad_batch([[2, 3, 4], [5]])
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EncoderGraph(model, which).eval(), (ids, mask), str(path), input_names=list(INPUTS),
            output_names=[OUTPUT], dynamic_axes={"input_ids": axes, "attention_mask": axes, OUTPUT: {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )


@torch.no_grad()
def validate(model: DualEncoder, pkg_dir: Path, pairs: list[tuple[str, str]], max_len: dict[str, int],
             atol: float = ATOL) -> dict[str, Any]:
    """Embed ``pairs`` through ``RetrieverEngine`` (the package as the server loads it) and through
    PyTorch from the same token ids: shapes, unit norms, max abs error per encoder, and the same top-1
    code for every query. Raises an ``export.errors.ValidationError`` subclass."""
    engine = load_retriever(pkg_dir, threads=1)
    queries, codes = [p[0] for p in pairs], [p[1] for p in pairs]
    got = {"query": engine.embed_queries(queries), "code": engine.embed_code(codes)}
    errors: dict[str, float] = {}
    want: dict[str, np.ndarray] = {}
    for which, texts in (("query", queries), ("code", codes)):
        ids = encode_batch(engine.tokenizer, texts, max_len[which])
        want[which] = model.encode(which, *pad_batch(ids)).numpy()  # one padded batch; the engine buckets
        if got[which].shape != want[which].shape:
            raise OutputShapeMismatch(f"{which} embeddings: runtime shape {list(got[which].shape)}, "
                                      f"PyTorch {list(want[which].shape)}")
        err = float(np.abs(got[which] - want[which]).max())
        if not err <= atol:  # also catches NaN
            raise EmbeddingMismatch(f"{which} embeddings differ from PyTorch by {err:.3g} (tolerance {atol:g})")
        errors[which] = err
    top_got = (got["query"] @ got["code"].T).argmax(1)
    top_want = (want["query"] @ want["code"].T).argmax(1)
    if not np.array_equal(top_got, top_want):
        bad = int(np.flatnonzero(top_got != top_want)[0])
        raise RankingMismatch(f"query {bad}: runtime ranks code {int(top_got[bad])} first, PyTorch code {int(top_want[bad])}")
    return {"status": "passed", "atol": atol, "max_abs_error": errors, "pairs": len(pairs),
            "top1_agree": len(pairs), "through": "codegen_lsp.engine.retriever.RetrieverEngine", "provider": "cpu"}


def build_package(ckpt_path: Path, out: Path, name: str | None = None) -> Path:
    """Export, validate and write the package directory ``out`` (replaced if present)."""
    model, tok, ckpt = load_model(ckpt_path)
    cfg, tcfg, state = model.cfg, ckpt["train_config"], ckpt["state"]
    name = name or f"retriever-{cfg.arch}"
    if out.exists():
        shutil.rmtree(out)
    for which, rel in GRAPHS.items():
        export_onnx(model, which, out / rel)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / TOKENIZER))
    max_len = {"query": int(tcfg["max_query_tokens"]), "code": int(tcfg["max_code_tokens"])}

    def manifest(validation: dict[str, Any]) -> Manifest:
        return Manifest(
            name=name, kind="retriever", architecture=cfg.arch, tokenizer=TOKENIZER,
            num_layers=max(1, cfg.num_layers if cfg.arch == "rnn" else 1), num_attention_heads=0, num_kv_heads=0,
            head_size=0, hidden_size=cfg.output_dim, vocab_size=cfg.vocab_size, context_length=max_len["code"],
            # A retriever generates nothing; the pad id stands in for the eos the schema requires.
            special_tokens=SpecialTokens(eos=[PAD_ID], pad=PAD_ID), prompt=PromptConvention(),
            provenance=Provenance(
                source=ckpt_path.name, source_sha256=sha256_file(ckpt_path), license="Apache-2.0",
                exporter_version="models.retrieval 0.1",
                created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                notes=f"trained from scratch by models.retrieval ({state['steps']} steps, best validation MRR "
                      f"{state['best_mrr']:.4f} at epoch {state['best_epoch']}, {state['seconds']:.0f} s)",
            ),
            variants=[Variant(name=VARIANT, provider="cpu", graph="", graphs=dict(GRAPHS),
                              io=IONames(position_ids=None, logits=OUTPUT), validation=validation)],
            files=file_entries(out, [*GRAPHS.values(), TOKENIZER]),
            extra={"retriever": {
                "embedding_dim": cfg.output_dim, "max_query_tokens": max_len["query"],
                "max_code_tokens": max_len["code"], "pad_id": PAD_ID, "similarity": "dot (unit vectors)",
                "query_text": "first paragraph of the docstring, whitespace collapsed",
                "code_text": "the function without its docstring: signature + body",
                "inputs": {n: ["batch", "sequence"] for n in INPUTS}, "outputs": {OUTPUT: ["batch", "embedding_dim"]},
                "parameters": count_parameters(model) - 1,  # without the training-only temperature
                "model_config": cfg.to_dict(),
            }},
        )

    # The engine needs a manifest to load; write one, validate through it, then record the result.
    write_manifest(out, manifest({"status": "pending"}))
    pairs = [(str(q), str(c)) for q, c in ckpt["validation_pairs"]]
    validation = validate(model, out, pairs, max_len)
    write_manifest(out, manifest(validation))
    load_package(out, verify_hashes=True)
    return out


def package_bytes(pkg_dir: Path) -> int:
    """Bytes of every file of the package, manifest included."""
    files = json.loads((pkg_dir / "manifest.json").read_text())["files"]
    return sum(int(f["size"]) for f in files) + (pkg_dir / "manifest.json").stat().st_size
