"""Checkpoint -> ``tree-decoder`` model package (encoder + decoder-step ONNX graphs, word-level
tokenizer, grammar and token vocabulary in the manifest), validated against PyTorch: per-graph
names, shapes and max error; then the runtime's own engine (``load_engine``) searching greedily with
ONNX Runtime against the same search fed by the PyTorch model: per-step error along the path and
identical actions.

Package layout::

    manifest.json       kind 'tree-decoder'; extra['treedec'] holds the grammar, order, primitive
                        tokens, lengths, beam size and graph I/O names
    tokenizer.json      word-level source tokenizer
    cpu-fp32/encoder.onnx, cpu-fp32/decoder_step.onnx
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
from torch import nn

from codegen_lsp.engine.treedec import IO, TreeDecoderEngine
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
from models.treedec.model import TreeDecoder, count_parameters
from models.treedec.train import CKPT, load_models

OPSET = 17
VARIANT = "cpu-fp32"
TOKENIZER = "tokenizer.json"
GRAPH_FILES = {g: f"{VARIANT}/{g}.onnx" for g in IO}
AXES: dict[str, dict[str, dict[int, str]]] = {
    "encoder": {"src_ids": {0: "batch", 1: "src"}, "memory": {0: "batch", 1: "src"}, "att_keys": {0: "batch", 1: "src"},
                "copy_keys": {0: "batch", 1: "src"}, "h0": {0: "batch"}, "c0": {0: "batch"}},
    "decoder_step": {**{k: {0: "beam"} for k in ("prev_action", "prev_att", "parent_att", "field", "h", "c", "h_out",
                                                 "c_out", "att", "rule_logits", "gen_logp")},
                     **{k: {0: "beam", 1: "src"} for k in ("memory", "att_keys", "copy_keys", "copy_logp")}},
}
ATOL = 1e-4
"""Max abs error of any graph output (float32 LSTM cells and softmaxes through other kernels)."""
TIE_MARGIN = 1e-4
BEAM_SIZE = 5
VALIDATION_PROMPTS = (
    'def add(a, b):\n    """Return the sum of a and b."""',
    'def read_lines(path):\n    """Read a text file and return its lines without trailing newlines."""',
    '    def keys(self):\n        """Return the keys of the mapping, sorted."""',
)


class EncoderGraph(nn.Module):
    def __init__(self, m: TreeDecoder) -> None:
        super().__init__()
        self.m = m

    def forward(self, src_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        memory = self.m.encoder(src_ids)
        keys, copy_keys, h0, c0 = self.m.decoder.prepare(memory, torch.ones(src_ids.shape, dtype=torch.float32))
        return memory, keys, copy_keys, h0, c0


class StepGraph(nn.Module):
    def __init__(self, m: TreeDecoder) -> None:
        super().__init__()
        self.m = m

    def forward(self, prev_action: torch.Tensor, prev_att: torch.Tensor, parent_att: torch.Tensor, field: torch.Tensor,
                h: torch.Tensor, c: torch.Tensor, memory: torch.Tensor, att_keys: torch.Tensor,
                copy_keys: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, c, att = self.m.decoder.step(prev_action, prev_att, parent_att, field, h, c, memory, att_keys)
        rules, gen, copy = self.m.decoder.heads(att, copy_keys)
        return h, c, att, rules, gen, copy


def sample_inputs(model: TreeDecoder, batch: int, src: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    vec = lambda: torch.randn((batch, cfg.hidden), generator=g) * 0.5  # noqa: E731
    mem = lambda: torch.randn((batch, src, cfg.hidden), generator=g) * 0.5  # noqa: E731
    return {"encoder": {"src_ids": torch.randint(0, cfg.src_vocab, (batch, src), generator=g)},
            "decoder_step": {"prev_action": torch.randint(0, cfg.num_actions, (batch,), generator=g),
                             "prev_att": vec(), "parent_att": vec(),
                             "field": torch.randint(0, cfg.num_fields, (batch,), generator=g), "h": vec(), "c": vec(),
                             "memory": mem(), "att_keys": mem(), "copy_keys": mem()}}


def wrappers(model: TreeDecoder) -> dict[str, nn.Module]:
    return {"encoder": EncoderGraph(model).eval(), "decoder_step": StepGraph(model).eval()}


def export_graphs(model: TreeDecoder, out: Path) -> None:
    inputs = sample_inputs(model, 2, 5, 0)
    for g, module in wrappers(model).items():
        path = out / GRAPH_FILES[g]
        path.parent.mkdir(parents=True, exist_ok=True)
        names_in, names_out = IO[g]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(inputs[g][n] for n in names_in), str(path), input_names=list(names_in),
                              output_names=list(names_out), dynamic_axes=AXES[g], opset_version=OPSET, dynamo=False)


@torch.no_grad()
def validate_graphs(model: TreeDecoder, out: Path) -> dict[str, float]:
    """Names, shapes and max abs error of each graph's outputs vs PyTorch on two input sets."""
    errors: dict[str, float] = {}
    for g, module in wrappers(model).items():
        sess = ort.InferenceSession(str(out / GRAPH_FILES[g]), providers=["CPUExecutionProvider"])
        names_in, names_out = IO[g]
        have_in = tuple(i.name for i in sess.get_inputs())
        have_out = tuple(o.name for o in sess.get_outputs())
        if have_in != names_in:
            raise InputNameMismatch(f"graph '{g}' has inputs {list(have_in)}, expected {list(names_in)}")
        if have_out != names_out:
            raise OutputNameMismatch(f"graph '{g}' has outputs {list(have_out)}, expected {list(names_out)}")
        worst = 0.0
        for batch, src, seed in ((1, 9, 1), (3, 17, 2)):
            if g == "encoder" and batch > 1:
                continue  # the engine encodes one prompt at a time (no padding)
            feeds = sample_inputs(model, batch, src, seed)[g]
            want = module(*(feeds[n] for n in names_in))
            got = sess.run(None, {n: feeds[n].numpy() for n in names_in})
            for name, w, o in zip(names_out, want, got, strict=True):
                if o.shape != tuple(w.shape):
                    raise OutputShapeMismatch(f"graph '{g}' output {name}: ONNX {list(o.shape)}, PyTorch {list(w.shape)}")
                err = float(np.abs(o - w.numpy()).max())
                if not err <= ATOL:
                    raise LogitsMismatch(f"graph '{g}' output {name} differs from PyTorch by {err:.3g} (tolerance {ATOL:g})")
                worst = max(worst, err)
        errors[g] = worst
    return errors


class TorchSteps:
    """Runs the engine's graphs with PyTorch instead (same feeds), recording the ONNX error per step."""

    def __init__(self, engine: TreeDecoderEngine, model: TreeDecoder) -> None:
        self.onnx_run, self.graphs = engine._run, wrappers(model)
        self.max_error = 0.0

    @torch.no_grad()
    def __call__(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        want = self.graphs[graph](*(torch.from_numpy(feeds[n]) for n in IO[graph][0]))
        out = {n: w.numpy() for n, w in zip(IO[graph][1], want, strict=True)}
        got = self.onnx_run(graph, feeds)
        self.max_error = max(self.max_error, *(float(np.abs(got[n] - out[n]).max()) for n in out))
        return out


def validate_engine(model: TreeDecoder, out: Path) -> dict[str, Any]:
    """Greedy search (beam 1, the package's step limit) through ``load_engine`` with ONNX Runtime, and
    the same search with PyTorch computing every step: identical actions along the whole path
    (finished or not), and the largest difference of any step output."""
    from codegen_lsp.engine.kinds import load_engine

    engine = load_engine(out, device="cpu", threads=1)
    assert isinstance(engine, TreeDecoderEngine)
    onnx_run = engine._run
    torch_steps = TorchSteps(engine, model)
    compared = finished = 0
    for prompt in VALIDATION_PROMPTS:
        ids, strings, _ = engine.source(prompt)
        paths = []
        for run in (onnx_run, torch_steps):
            engine._run = run  # type: ignore[method-assign]
            s = engine.search(ids, strings, 1, engine.max_actions)
            paths.append((s.done + s.live)[0].ids)
        engine._run = onnx_run  # type: ignore[method-assign]
        got, want = paths
        if got != want:
            p = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
            raise GreedyMismatch(f"prompt {prompt[:30]!r}: ONNX engine action {got[p:p + 1]} at step {p}, "
                                 f"PyTorch {want[p:p + 1]}")
        compared += len(want)
        finished += bool(s.done)
    return {"actions_compared": compared, "actions_identical": compared, "prompts": len(VALIDATION_PROMPTS),
            "finished": finished, "max_step_error": torch_steps.max_error}


def build_package(ckpt_dir: Path, out: Path, decoder: str | None = None, name: str | None = None) -> Path:
    """Export, validate and write the package directory ``out`` (replaced if present)."""
    models, ckpt = load_models(ckpt_dir)
    order = decoder or ("preorder" if "preorder" in models else next(iter(models)))
    if order not in models:
        raise ValueError(f"checkpoint {ckpt_dir} has decoders {list(models)}, not '{order}'")
    model = models[order]
    cfg = model.cfg
    name = name or f"treedec-{ckpt['config_name']}-{ckpt['mode']}-{order}"
    if out.exists():
        shutil.rmtree(out)
    export_graphs(model, out)
    (out / TOKENIZER).write_text(ckpt["tokenizer"], encoding="utf-8")
    errors = validate_graphs(model, out)
    tc, state = ckpt["train_config"], ckpt["state"]
    spec = {"grammar": ckpt["grammar"], "order": order, "tokens": ckpt["tokens"], "max_src": tc["max_src"],
            "max_actions": tc["max_actions"], "beam_size": BEAM_SIZE, "hidden": cfg.hidden,
            "start_action": cfg.num_actions - 1,
            "graphs": {g: {"inputs": list(IO[g][0]), "outputs": list(IO[g][1])} for g in IO},
            "training": {"mode": ckpt["mode"], "kl_weight": tc["kl_weight"], "steps": state["steps"],
                         "seconds": round(state["seconds"]), "last": state["history"][-1:]}}
    manifest = Manifest(
        name=name, kind="tree-decoder", architecture="tranx-lstm", tokenizer=TOKENIZER, num_layers=1,
        num_attention_heads=1, num_kv_heads=1, head_size=cfg.hidden, hidden_size=cfg.hidden,
        vocab_size=cfg.src_vocab, context_length=tc["max_src"] + tc["max_actions"],
        special_tokens=SpecialTokens(eos=[0], pad=0), prompt=PromptConvention(),
        provenance=Provenance(
            source=f"{ckpt_dir.name}/{CKPT}", source_sha256=sha256_file(ckpt_dir / CKPT), license="Apache-2.0",
            exporter_version="models.treedec 0.1",
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            notes=f"trained from scratch by models.treedec (config {ckpt['config_name']}, --order {ckpt['mode']}, "
                  f"{order} decoder, {state['steps']} steps)"),
        variants=[Variant(name=VARIANT, provider="cpu", graph="", graphs=dict(GRAPH_FILES),
                          io=IONames(attention_mask="", position_ids=None, logits="rule_logits"),
                          validation={"status": "pending"})],
        files=file_entries(out, [*GRAPH_FILES.values(), TOKENIZER]),
        extra={"treedec": spec, "parameters": count_parameters(model), "config": ckpt["config_name"]},
    )
    write_manifest(out, manifest)
    engine_check = validate_engine(model, out)
    manifest.variants[0].validation = {"status": "passed", "provider": "cpu", "atol": ATOL, "max_abs_error": errors,
                                       "engine_vs_torch": engine_check}
    write_manifest(out, manifest)
    load_package(out, verify_hashes=True)
    return out
