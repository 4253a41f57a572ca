"""Checkpoint -> ``diffusion`` model package (three ONNX graphs, tokenizer, manifest), validated
against PyTorch: per-graph names, shapes and max error, then the runtime's own engine
(``load_engine``) against the reference sampler fed the same noise seeds (identical argmax tokens).

Package layout::

    manifest.json         kind 'diffusion'; extra['diffusion'] holds the schedule, T, default steps,
                          lengths, pad id and graph I/O names
    tokenizer.json        the corpus BPE
    cpu-fp32/encoder.onnx, cpu-fp32/denoiser.onnx, cpu-fp32/decoder.onnx
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
from models.codefusion.model import CodeFusion, count_parameters
from models.codefusion.sample import reference_sample
from models.codefusion.schedule import MAX_BETA, SQRT_OFFSET, alphas_cumprod
from models.codefusion.tokenizer import MASK_ID, PAD_ID
from models.codefusion.train import CKPT, TOKENIZER, load_model

OPSET = 17
VARIANT = "cpu-fp32"
GRAPH_FILES = {g: f"{VARIANT}/{g}.onnx" for g in ("encoder", "denoiser", "decoder")}
IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "encoder": (("input_ids", "attention_mask"), ("encoder_states",)),
    "denoiser": (("x_t", "timestep", "encoder_states", "attention_mask"), ("eps",)),
    "decoder": (("x0", "encoder_states", "attention_mask"), ("logits",)),
}
AXES: dict[str, dict[str, dict[int, str]]] = {
    "encoder": {"input_ids": {0: "batch", 1: "nl"}, "attention_mask": {0: "batch", 1: "nl"},
                "encoder_states": {0: "batch", 1: "nl"}},
    "denoiser": {"x_t": {0: "batch", 1: "code"}, "timestep": {0: "batch"}, "encoder_states": {0: "batch", 1: "nl"},
                 "attention_mask": {0: "batch", 1: "nl"}, "eps": {0: "batch", 1: "code"}},
    "decoder": {"x0": {0: "batch", 1: "code"}, "encoder_states": {0: "batch", 1: "nl"},
                "attention_mask": {0: "batch", 1: "nl"}, "logits": {0: "batch", 1: "code"}},
}
SHAPES = {
    "encoder": {"input_ids": ["batch", "nl"], "attention_mask": ["batch", "nl"],
                "encoder_states": ["batch", "nl", "d_model"]},
    "denoiser": {"x_t": ["batch", "target_length", "d_model"], "timestep": ["batch"],
                 "encoder_states": ["batch", "nl", "d_model"], "attention_mask": ["batch", "nl"],
                 "eps": ["batch", "target_length", "d_model"]},
    "decoder": {"x0": ["batch", "target_length", "d_model"], "encoder_states": ["batch", "nl", "d_model"],
                "attention_mask": ["batch", "nl"], "logits": ["batch", "target_length", "vocab_size"]},
}
ATOL = {"encoder": 1e-3, "denoiser": 1e-3, "decoder": 1e-2}
"""Max abs error per graph output (float32 through different kernels; logits have the widest range)."""
TIE_MARGIN = 1e-3
"""An argmax mismatch where PyTorch's top two logits are closer than this is a tie, not a failure."""
DEFAULT_STEPS = 20
VALIDATION_PROMPTS = (
    'def add(a, b):\n    """Return the sum of a and b."""',
    'def read_lines(path):\n    """Read a text file and return its lines without trailing newlines."""',
)


class EncoderGraph(nn.Module):
    def __init__(self, m: CodeFusion) -> None:
        super().__init__()
        self.m = m

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.m.encoder(input_ids, attention_mask.to(torch.float32))


class DenoiserGraph(nn.Module):
    def __init__(self, m: CodeFusion) -> None:
        super().__init__()
        self.m = m

    def forward(self, x_t: torch.Tensor, timestep: torch.Tensor, encoder_states: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        return self.m.denoiser(x_t, timestep, encoder_states, attention_mask.to(torch.float32))


class DecoderGraph(nn.Module):
    def __init__(self, m: CodeFusion) -> None:
        super().__init__()
        self.m = m

    def forward(self, x0: torch.Tensor, encoder_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.m.logits(x0, encoder_states, attention_mask.to(torch.float32))


def sample_inputs(model: CodeFusion, batch: int, nl: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Random inputs per graph (the mask has padding on row 0 when batch > 1)."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, cfg.vocab_size, (batch, nl), generator=g)
    mask = torch.ones((batch, nl), dtype=torch.int64)
    if batch > 1 and nl > 2:
        mask[0, nl - 2:] = 0
    enc = torch.randn((batch, nl, cfg.d_model), generator=g)
    x = torch.randn((batch, cfg.target_length, cfg.d_model), generator=g)
    t = torch.randint(0, cfg.timesteps, (batch,), generator=g).to(torch.float32)
    return {"encoder": {"input_ids": ids, "attention_mask": mask},
            "denoiser": {"x_t": x, "timestep": t, "encoder_states": enc, "attention_mask": mask},
            "decoder": {"x0": x.clamp(-cfg.x0_clip, cfg.x0_clip), "encoder_states": enc, "attention_mask": mask}}


def export_graphs(model: CodeFusion, out: Path) -> None:
    wrappers = {"encoder": EncoderGraph(model), "denoiser": DenoiserGraph(model), "decoder": DecoderGraph(model)}
    inputs = sample_inputs(model, 2, 5, 0)
    for g, module in wrappers.items():
        path = out / GRAPH_FILES[g]
        path.parent.mkdir(parents=True, exist_ok=True)
        names_in, names_out = IO[g]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), tuple(inputs[g][n] for n in names_in), str(path),
                              input_names=list(names_in), output_names=list(names_out), dynamic_axes=AXES[g],
                              opset_version=OPSET, dynamo=False)


@torch.no_grad()
def validate_graphs(model: CodeFusion, out: Path) -> dict[str, float]:
    """Names, shapes and max abs error of each graph vs PyTorch on two input sets."""
    wrappers = {"encoder": EncoderGraph(model), "denoiser": DenoiserGraph(model), "decoder": DecoderGraph(model)}
    errors: dict[str, float] = {}
    for g, module in wrappers.items():
        sess = ort.InferenceSession(str(out / GRAPH_FILES[g]), providers=["CPUExecutionProvider"])
        names_in, names_out = IO[g]
        have_in = tuple(i.name for i in sess.get_inputs())
        have_out = tuple(o.name for o in sess.get_outputs())
        if have_in != names_in:
            raise InputNameMismatch(f"graph '{g}' has inputs {list(have_in)}, expected {list(names_in)}")
        if have_out != names_out:
            raise OutputNameMismatch(f"graph '{g}' has outputs {list(have_out)}, expected {list(names_out)}")
        worst = 0.0
        for batch, nl, seed in ((3, 11, 1), (1, model.cfg.encoder_length, 2)):
            feeds = sample_inputs(model, batch, nl, seed)[g]
            want = module(*(feeds[n] for n in names_in)).numpy()
            got = sess.run(None, {n: feeds[n].numpy() for n in names_in})[0]
            if got.shape != want.shape:
                raise OutputShapeMismatch(f"graph '{g}' output {names_out[0]}: ONNX shape {list(got.shape)}, "
                                          f"PyTorch {list(want.shape)}")
            err = float(np.abs(got - want).max())
            if not err <= ATOL[g]:  # also catches NaN
                raise LogitsMismatch(f"graph '{g}' output {names_out[0]} differs from PyTorch by {err:.3g} "
                                     f"(tolerance {ATOL[g]:g}, batch {batch}, nl {nl})")
            worst = max(worst, err)
        errors[g] = worst
    return errors


def validate_engine(model: CodeFusion, out: Path, steps: int, candidates: int = 3, seed: int = 0) -> dict[str, Any]:
    """The runtime's engine (``load_engine``, ONNX Runtime) against the reference sampler fed the
    same noise: identical argmax tokens per candidate, ties aside."""
    from codegen_lsp.engine import GenerationConfig
    from codegen_lsp.engine.diffusion import candidate_noise
    from codegen_lsp.engine.kinds import load_engine

    cfg = model.cfg
    engine = load_engine(out, device="cpu", threads=1, steps=steps)
    compared = identical = ties = 0
    for prompt in VALIDATION_PROMPTS:
        res = engine.generate(prompt, GenerationConfig(num_candidates=candidates, seed=seed,
                                                       max_new_tokens=cfg.target_length))
        noise = candidate_noise(seed, candidates, (cfg.target_length, cfg.d_model))
        ref = reference_sample(model, engine.encode(prompt), noise, steps)
        for i, gen in enumerate(res.generations):
            want = [int(t) for t in ref.tokens[i]]
            end = want.index(PAD_ID) if PAD_ID in want else len(want)
            got = gen.token_ids + ([PAD_ID] if gen.finish_reason == "eos" else [])
            for p in range(min(len(want), end + 1)):
                compared += 1
                g = got[p] if p < len(got) else PAD_ID
                if g == want[p]:
                    identical += 1
                    continue
                top2 = np.sort(ref.logits[i, p])[-2:]
                if float(top2[1] - top2[0]) < TIE_MARGIN:
                    ties += 1
                    continue
                raise GreedyMismatch(f"prompt {prompt[:30]!r} candidate {i}: ONNX engine token {g} at position {p}, "
                                     f"PyTorch reference {want[p]} (margin {float(top2[1] - top2[0]):.3g})")
            if len(got) > end + 1:
                raise GreedyMismatch(f"prompt {prompt[:30]!r} candidate {i}: engine wrote {len(got)} tokens, "
                                     f"reference {end + 1}")
    return {"tokens_compared": compared, "tokens_identical": identical, "ties": ties, "candidates": candidates,
            "seed": seed, "steps": steps, "prompts": len(VALIDATION_PROMPTS)}


def build_package(ckpt_dir: Path, out: Path, name: str | None = None, steps: int | None = None) -> Path:
    """Export, validate and write the package directory ``out`` (replaced if present)."""
    model, ckpt = load_model(ckpt_dir)
    cfg = model.cfg
    steps = min(steps or DEFAULT_STEPS, cfg.timesteps)
    name = name or f"codefusion-{ckpt.get('config_name', 'custom')}"
    if out.exists():
        shutil.rmtree(out)
    export_graphs(model, out)
    shutil.copyfile(ckpt_dir / TOKENIZER, out / TOKENIZER)
    errors = validate_graphs(model, out)
    state = ckpt["state"]
    last_valid = next((h for h in reversed(state["history"]) if "valid_loss" in h), None)
    manifest = Manifest(
        name=name, kind="diffusion", architecture="codefusion", tokenizer=TOKENIZER,
        num_layers=cfg.denoiser_layers, num_attention_heads=cfg.num_heads, num_kv_heads=cfg.num_heads,
        head_size=cfg.d_model // cfg.num_heads, hidden_size=cfg.d_model, vocab_size=cfg.vocab_size,
        context_length=cfg.encoder_length + cfg.target_length,
        special_tokens=SpecialTokens(eos=[PAD_ID], pad=PAD_ID), prompt=PromptConvention(),
        provenance=Provenance(
            source=f"{ckpt_dir.name}/{CKPT}", source_sha256=sha256_file(ckpt_dir / CKPT), license="Apache-2.0",
            exporter_version="models.codefusion 0.1",
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            notes=f"trained from scratch by models.codefusion (config {ckpt.get('config_name')}, "
                  f"{state['steps']} steps, phase steps {state['phase_steps']}); last validation: {last_valid}",
        ),
        variants=[Variant(name=VARIANT, provider="cpu", graph="", graphs=dict(GRAPH_FILES),
                          io=IONames(attention_mask="attention_mask", position_ids=None, logits="logits"),
                          validation={"status": "pending"})],
        files=file_entries(out, [*GRAPH_FILES.values(), TOKENIZER]),
        extra={"diffusion": diffusion_spec(model, steps), "parameters": count_parameters(model),
               "config": ckpt.get("config_name")},
    )
    write_manifest(out, manifest)
    engine_check = validate_engine(model, out, steps)
    manifest.variants[0].validation = {"status": "passed", "provider": "cpu", "atol": ATOL,
                                       "max_abs_error": errors, "engine_vs_torch": engine_check}
    write_manifest(out, manifest)
    load_package(out, verify_hashes=True)  # the runtime's own checks
    return out


def diffusion_spec(model: CodeFusion, steps: int) -> dict[str, Any]:
    cfg = model.cfg
    return {
        "schedule": "sqrt", "sqrt_offset": SQRT_OFFSET, "max_beta": MAX_BETA, "timesteps": cfg.timesteps,
        "alphas_cumprod": [float(a) for a in alphas_cumprod(cfg.timesteps)],
        "sampler": "ddim", "default_steps": steps, "x0_clip": cfg.x0_clip,
        "target_length": cfg.target_length, "encoder_length": cfg.encoder_length, "d_model": cfg.d_model,
        "pad_id": PAD_ID, "mask_id": MASK_ID,
        "graphs": {g: {"inputs": list(IO[g][0]), "outputs": list(IO[g][1]), "shapes": SHAPES[g]} for g in IO},
        "note": "x_T ~ N(0, I) per candidate; each step: eps = denoiser(x_t, t), x0 = clip((x_t - sqrt(1-abar_t) eps)"
                " / sqrt(abar_t)), eps recomputed from the clipped x0, x_next = sqrt(abar_next) x0 + "
                "sqrt(1-abar_next) eps; then logits = decoder(x0); argmax, cut at the first pad",
    }
