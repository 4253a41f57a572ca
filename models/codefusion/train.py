"""Training: two pre-training tasks on code, then fine-tuning on (signature + docstring -> body).

Phase 0, unsupervised code generation: E's output is replaced by Gaussian noise, so N and D learn
to denoise code with no condition. Phase 1, continuous paragraph denoising (CPD): E reads the code
with identifiers and keywords masked, N/D restore the code. Phase 2, fine-tuning: E reads the
prompt. Every step: x0 = L(y), t ~ U{0..T-1}, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, and

    loss = ||eps_hat - eps||^2 + ||D(x0_hat) - L(y)||^2 - log p(y | D(x0_hat))

(mean squared errors per element, cross-entropy per position, pads included: the model learns
where the body ends). The checkpoint directory holds everything needed to resume or export.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models.codefusion.config import ModelConfig, NamedConfig, TrainConfig
from models.codefusion.data import Tensors, cpd_input, read_records, tensors
from models.codefusion.model import CodeFusion, count_parameters
from models.codefusion.schedule import alphas_cumprod
from models.codefusion.tokenizer import load as load_tokenizer
from models.codefusion.tokenizer import train_bpe, word_token_ids
from models.distributed import Dist, init

PHASES = ("generation", "cpd", "finetune")
CKPT = "ckpt.pt"
TOKENIZER = "tokenizer.json"
NOISE_CONTEXT = 16
"""Positions of the Gaussian 'encoder output' in the unsupervised generation task."""


@dataclass
class TrainState:
    phase: int = 0
    phase_steps: list[int] = field(default_factory=lambda: [0, 0, 0])
    phase_seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def diffusion_loss(model: CodeFusion, abar: torch.Tensor, code: torch.Tensor, enc: torch.Tensor,
                   enc_mask: torch.Tensor, gen: torch.Generator | None = None,
                   t: torch.Tensor | None = None, eps: torch.Tensor | None = None,
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """The CodeFusion loss for code [B, Lc] given E's states enc [B, S, d] (or noise); timesteps ``t``
    and noise ``eps`` are drawn from ``gen`` unless given."""
    cfg = model.cfg
    x0 = model.embed_code(code)  # [B, Lc, d]
    b = code.shape[0]
    if t is None:
        t = torch.randint(0, cfg.timesteps, (b,), generator=gen).to(code.device)
    if eps is None:
        eps = torch.randn(x0.shape, generator=gen).to(x0.device)
    a = abar[t][:, None, None]  # [B, 1, 1]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    eps_hat = model.denoiser(x_t, t.to(torch.float32), enc, enc_mask)  # [B, Lc, d]
    x0_hat = ((x_t - (1 - a).sqrt() * eps_hat) / a.sqrt()).clamp(-cfg.x0_clip, cfg.x0_clip)
    hidden = model.decoder(x0_hat, enc, enc_mask)  # [B, Lc, d]
    logits = model.head(hidden)  # [B, Lc, V]
    l_eps = F.mse_loss(eps_hat, eps)
    l_dec = F.mse_loss(hidden, x0)
    l_ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), code.reshape(-1))
    acc = (logits.argmax(-1) == code).float().mean()
    return l_eps + l_dec + l_ce, {"eps": l_eps.item(), "dec": l_dec.item(), "ce": l_ce.item(), "acc": acc.item()}


def phase_batch(mc: ModelConfig, phase: int, data: Tensors, idx: torch.Tensor, words: torch.Tensor,
                cfg: TrainConfig, gen: torch.Generator) -> list[torch.Tensor]:
    """One global batch of the given phase with all its randomness drawn from ``gen``, in the order the
    single-process loop always drew it: [code, E's input (ids, or noise in phase 0), its mask, t, eps].
    Every rank draws the same batch and trains on its slice of each tensor."""
    code = data.code[idx]
    if phase == 0:
        enc_in: torch.Tensor = torch.randn((len(idx), NOISE_CONTEXT, mc.d_model), generator=gen)
        mask = torch.ones((len(idx), NOISE_CONTEXT))
    elif phase == 1:
        enc_in, mask = cpd_input(code, words, cfg.cpd_mask_rate, mc.encoder_length, gen)
    else:
        enc_in, mask = data.nl[idx], data.nl_mask[idx]
    t = torch.randint(0, mc.timesteps, (len(idx),), generator=gen)
    eps = torch.randn((len(idx), code.shape[1], mc.d_model), generator=gen)
    return [code, enc_in, mask, t, eps]


class StepLoss(torch.nn.Module):
    """One training step's loss as a single forward, so DistributedDataParallel sees every parameter use."""

    def __init__(self, model: CodeFusion, abar: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("abar", abar, persistent=False)

    def forward(self, phase: int, code: torch.Tensor, enc_in: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
                eps: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        enc = enc_in if phase == 0 else self.model.encoder(enc_in, mask)
        return diffusion_loss(self.model, self.abar, code, enc, mask, t=t, eps=eps)


@torch.no_grad()
def evaluate(model: CodeFusion, abar: torch.Tensor, data: Tensors) -> dict[str, float]:
    """Fine-tuning loss on held-out pairs at fixed timesteps and noise (comparable across runs)."""
    model.eval()
    device = next(model.parameters()).device
    data = Tensors(data.nl.to(device), data.nl_mask.to(device), data.code.to(device))
    abar = abar.to(device)
    gen = torch.Generator().manual_seed(1234)
    totals: dict[str, float] = {}
    n = 0
    for start in range(0, len(data), 64):
        idx = torch.arange(start, min(start + 64, len(data)))
        t = torch.linspace(0, model.cfg.timesteps - 1, len(idx)).round().long().to(device)
        enc = model.encoder(data.nl[idx], data.nl_mask[idx])
        loss, parts = diffusion_loss(model, abar, data.code[idx], enc, data.nl_mask[idx], gen, t)
        for k, v in {"loss": loss.item(), **parts}.items():
            totals[k] = totals.get(k, 0.0) + v * len(idx)
        n += len(idx)
    model.train()
    return {f"valid_{k}": round(v / max(n, 1), 4) for k, v in totals.items()}


def save(out: Path, model: CodeFusion, opt: torch.optim.Optimizer, named: NamedConfig, name: str,
         state: TrainState) -> None:
    """Atomic: a run killed mid-write leaves the previous checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (CKPT + ".tmp")
    torch.save({"config_name": name, "model_config": model.cfg.to_dict(), "train_config": asdict(named.train),
                "model": model.state_dict(), "optimizer": opt.state_dict(), "state": asdict(state)}, tmp)
    os.replace(tmp, out / CKPT)
    (out / "history.json").write_text(json.dumps(state.history, indent=1) + "\n")


def load_model(ckpt_dir: Path) -> tuple[CodeFusion, dict[str, Any]]:
    """Model (eval mode) and the raw checkpoint."""
    ckpt = torch.load(ckpt_dir / CKPT, map_location="cpu", weights_only=False)
    model = CodeFusion(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt


def _lr(cfg: TrainConfig, step: int) -> float:
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))


def train(corpus: Path, out: Path, named: NamedConfig, name: str, max_minutes: float | None = None,
          log: Any = None, dist: Dist | None = None) -> TrainState:
    """Train (or resume from ``out``); returns the final state. Under torchrun / accelerate launch each
    process trains on its slice of every global batch (``models/distributed.py``); rank 0 logs, evaluates
    and saves."""
    dist = dist or init()
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    log = say if dist.main else (lambda msg: None)
    cfg = named.train
    t_start = time.monotonic()
    torch.manual_seed(cfg.seed)
    train_recs = read_records(corpus, "train", cfg.max_train_records, cfg.seed)
    tok_path = out / TOKENIZER
    if dist.main and not tok_path.exists():
        out.mkdir(parents=True, exist_ok=True)
        texts = [r["prompt"] + r["target"] for r in train_recs[: cfg.tokenizer_records]]
        train_bpe(texts, cfg.vocab_size).save(str(tok_path))
    dist.barrier()
    tok = load_tokenizer(tok_path)
    mcfg = ModelConfig(**{**named.model.to_dict(), "vocab_size": tok.get_vocab_size()})
    ckpt = torch.load(out / CKPT, map_location="cpu", weights_only=False) if (out / CKPT).exists() else None
    model = CodeFusion(ModelConfig(**ckpt["model_config"]) if ckpt else mcfg)
    state = TrainState()
    if ckpt:
        model.load_state_dict(ckpt["model"])
        state = TrainState(**ckpt["state"])
        log(f"resumed at phase {PHASES[min(state.phase, 2)]}, step {state.steps}")
    abar = torch.tensor(alphas_cumprod(model.cfg.timesteps), dtype=torch.float32)
    step_loss = dist.wrap(StepLoss(model, abar), find_unused=True)  # phase 0 skips E
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if ckpt:
        opt.load_state_dict(ckpt["optimizer"])
    data = tensors(tok, train_recs, mcfg.encoder_length, mcfg.target_length)
    valid_path = corpus / "valid.jsonl"
    valid = (tensors(tok, read_records(corpus, "valid", cfg.valid_records, cfg.seed), mcfg.encoder_length,
                     mcfg.target_length) if dist.main and valid_path.exists() and valid_path.stat().st_size else None)
    words = torch.tensor(word_token_ids(tok), dtype=torch.int64)
    log(f"{name}: {count_parameters(model)} parameters, vocab {mcfg.vocab_size}, {len(data)} train pairs, "
        f"{int(data.code.ne(0).sum())} code tokens ({(data.code[:, -1] != 0).float().mean():.0%} cut at "
        f"{mcfg.target_length}), {dist.world} process(es)")
    total_s = max_minutes * 60 if max_minutes is not None else None
    last_save = time.monotonic()
    model.train()
    while state.phase < len(PHASES):
        p = state.phase
        budget = None
        if total_s is not None:
            budget = sum(cfg.phase_shares[: p + 1]) * total_s - sum(state.phase_seconds[:p])
        run = {"loss": 0.0, "eps": 0.0, "dec": 0.0, "ce": 0.0, "acc": 0.0}
        run_n = 0
        while state.phase_steps[p] < cfg.phase_steps[p]:
            if dist.agree(budget is not None and state.phase_seconds[p] >= budget):
                break
            t0 = time.monotonic()
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state.steps)
            idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
            for g in opt.param_groups:
                g["lr"] = _lr(cfg, state.steps)
            batch = [dist.shard(x) for x in phase_batch(model.cfg, p, data, idx, words, cfg, gen)]
            loss, parts = step_loss(p, *batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            state.steps += 1
            state.phase_steps[p] += 1
            state.phase_seconds[p] += time.monotonic() - t0
            values = dist.mean([loss.item(), *parts.values()])
            for k, v in zip(("loss", *parts), values, strict=True):
                run[k] += v
            run_n += 1
            if state.steps % cfg.log_every == 0:
                entry = {"step": state.steps, "phase": PHASES[p], **{k: round(v / run_n, 4) for k, v in run.items()},
                         "lr": _lr(cfg, state.steps), "seconds": round(sum(state.phase_seconds), 1)}
                state.history.append(entry)
                log(json.dumps(entry))
                run = dict.fromkeys(run, 0.0)
                run_n = 0
            if p == 2 and valid is not None and state.phase_steps[p] % cfg.eval_every == 0:
                entry = {"step": state.steps, "phase": PHASES[p], **evaluate(model, abar, valid)}
                state.history.append(entry)
                log(json.dumps(entry))
            if dist.main and time.monotonic() - last_save > cfg.checkpoint_seconds:
                save(out, model, opt, named, name, state)
                last_save = time.monotonic()
        done = state.phase_steps[p] >= cfg.phase_steps[p]
        if valid is not None:
            entry = {"step": state.steps, "phase": PHASES[p], "end_of_phase": done, **evaluate(model, abar, valid)}
            state.history.append(entry)
            log(json.dumps(entry))
        state.phase += 1
        if dist.main:
            save(out, model, opt, named, name, state)
        last_save = time.monotonic()
    log(f"done: {state.steps} steps, {sum(state.phase_seconds):.0f} s of training, "
        f"{time.monotonic() - t_start:.0f} s wall in this run")
    dist.barrier()
    return state


def cpu_minutes() -> float:
    """CPU time of this process (all threads), for the report."""
    t = os.times()
    return (t.user + t.system) / 60


