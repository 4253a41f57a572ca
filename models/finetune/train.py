"""The fine-tuning loop: LoRA or full, AdamW with warm-up, gradient clipping, a time or step budget,
and a resumable checkpoint (``train_state.pt``) written atomically every few steps and at the end.

The checkpoint holds the trainable weights (the adapter, or for ``full`` the whole model), the
optimizer, the step and the loss history; the data order is a function of (seed, step), so a
resumed run continues exactly where the stopped one was.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from export.lora import DEFAULT_TARGETS, LoRAConfig, adapter_state, attach, load_adapter_state
from models.distributed import init
from models.finetune.data import IGNORE, Example, batch_indices, collate, encode_pair, end_token, read_pairs
from models.finetune.sat import SATConfig, SATObjective

STATE_FILE = "train_state.pt"
HISTORY_FILE = "history.json"


@dataclass
class TrainConfig:
    """Hyper-parameters and budgets of one run (stored in the checkpoint)."""

    full: bool = False
    """Train every weight instead of a LoRA adapter."""
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ()
    """Empty: ``lora.DEFAULT_TARGETS`` for the model type."""
    steps: int = 200
    max_minutes: float | None = None
    batch_size: int = 4
    seq_len: int = 384
    lr: float | None = None
    """Default 2e-4 for LoRA, 2e-5 for full fine-tuning."""
    warmup: int = 10
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    save_every: int = 20
    valid_pairs: int = 32
    """Validation loss on this many pairs of the valid split, at the start and the end."""
    max_train_pairs: int | None = None
    """Use only the first N pairs of the train split (tests, quick runs)."""
    sat: SATConfig | None = None
    """Add SAT's structure loss (``models/finetune/sat.py``)."""

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-5 if self.full else 2e-4)


@dataclass
class TrainResult:
    steps: int
    tokens: int
    """Tokens fed through the model (prompt + body, no padding)."""
    body_tokens: int
    """Tokens the loss was computed on."""
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    valid: list[dict[str, float]] = field(default_factory=list)


def prepare(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, LoRAConfig | None]:
    """Make the right parameters trainable: (the model to train, which for LoRA is a ``PeftModel``
    around ``model``, and the LoRA config, None for full fine-tuning)."""
    if cfg.full:
        for p in model.parameters():
            p.requires_grad_(True)
        return model, None
    model_type = getattr(model.config, "model_type", "")
    targets = cfg.lora_targets or DEFAULT_TARGETS.get(model_type, ("q_proj", "v_proj"))
    lora = LoRAConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=tuple(targets))
    return attach(model, lora, cfg.seed), lora


def encode_split(tokenizer: Tokenizer, pairs: list[tuple[str, str]], eos_ids: list[int], seq_len: int,
                 bos: int | None) -> list[Example]:
    end = end_token(tokenizer, eos_ids)
    return [encode_pair(tokenizer, p, t, end, seq_len, bos) for p, t in pairs]


def _loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        out = model(**batch)
    return out.loss


def _token_loss_sum(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed cross-entropy over the body tokens, their count): the causal-LM loss before the mean,
    so that data-parallel processes can divide by the global count."""
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = batch.pop("labels")[:, 1:]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(**batch).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    return loss, (labels != IGNORE).sum()


@torch.no_grad()
def valid_loss(model: torch.nn.Module, examples: list[Example], pad: int, device: torch.device,
               batch_size: int) -> float:
    """Mean loss per body token over ``examples``."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        n = sum(e.body_tokens for e in chunk)
        total += float(_loss(model, collate(chunk, pad), device)) * n
        count += n
    model.train()
    return total / max(count, 1)


def _trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% over ``steps`` (constant when time-bounded only)."""
    base = cfg.learning_rate()
    if step < cfg.warmup:
        return base * (step + 1) / cfg.warmup
    if cfg.steps <= cfg.warmup:
        return base
    progress = min(1.0, (step - cfg.warmup) / (cfg.steps - cfg.warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig, result: TrainResult,
          sat: SATObjective | None) -> None:
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()} if cfg.full else adapter_state(model)
    state = {"config": asdict(cfg), "weights": weights, "optimizer": opt.state_dict(), "result": asdict(result),
             "sat": sat.loss_fn.state_dict() if sat is not None else None}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    corpus: Path,
    out_dir: Path,
    cfg: TrainConfig,
    eos_ids: list[int],
    bos: int | None,
    pad: int,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> tuple[TrainResult, torch.nn.Module, LoRAConfig | None]:
    """Train ``model`` (for LoRA: through a ``PeftModel`` around it, returned unmerged; merge it
    afterwards). ``stop_after`` ends this call after that many steps in total, as an interruption
    would (a later call resumes). Returns (result, the trained model, the LoRA config or None).
    Under torchrun / accelerate launch each process trains on its share of every global batch
    (``models/distributed.py``); the task loss is normalised by the global batch's body tokens."""
    dist = init()
    device = dist.device
    model, lora = prepare(model, cfg)
    model.to(device).train()
    pairs = read_pairs(corpus, "train")[: cfg.max_train_pairs]
    examples = encode_split(tokenizer, pairs, eos_ids, cfg.seq_len, bos)
    valid_pairs = read_pairs(corpus, "valid")[: cfg.valid_pairs]
    valid = encode_split(tokenizer, valid_pairs, eos_ids, cfg.seq_len, bos)
    sat = None
    if cfg.sat is not None:
        sat = SATObjective(model, cfg.sat, tokenizer, [t for _, t in pairs], [e.labels for e in examples]).to(device)
    params = _trainable(model) + (list(sat.parameters()) if sat is not None else [])
    sat_alpha = cfg.sat.alpha if cfg.sat is not None else 0.0
    rank, world = dist.rank, dist.world
    if world > 1 and cfg.batch_size % world:
        raise ValueError(f"{world} processes need --batch-size divisible by {world}")
    runner = dist.wrap(model)
    groups: list[dict[str, Any]] = [{"params": _trainable(model), "scale": 1.0}]
    if sat is not None:
        groups.append({"params": list(sat.parameters()), "scale": cfg.sat.lr_scale if cfg.sat else 1.0})
    opt = torch.optim.AdamW(groups, lr=cfg.learning_rate(), weight_decay=cfg.weight_decay)
    result = TrainResult(steps=0, tokens=0, body_tokens=0, seconds=0.0)
    state_path = out_dir / STATE_FILE
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if cfg.full:
            model.load_state_dict(state["weights"])
        else:
            load_adapter_state(model, state["weights"])
        if sat is not None and state.get("sat") is not None:
            sat.loss_fn.load_state_dict(state["sat"])
        opt.load_state_dict(state["optimizer"])
        result = TrainResult(**state["result"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if valid and not result.valid:
        result.valid.append({"step": 0, "loss": round(valid_loss(model, valid, pad, device, cfg.batch_size), 4)})

    t_start = time.perf_counter() - result.seconds
    deadline = time.perf_counter() + cfg.max_minutes * 60 if cfg.max_minutes else None
    order = batch_indices(len(examples), cfg.batch_size, cfg.seed, result.steps)
    bar = tqdm(total=cfg.steps, initial=result.steps, disable=not progress, unit="step", dynamic_ncols=True)
    last = min(cfg.steps, stop_after) if stop_after is not None else cfg.steps
    while result.steps < last and not dist.agree(deadline is not None and time.perf_counter() >= deadline):
        indices = next(order)
        batch = [examples[i] for i in indices]
        mine = dist.part(indices)
        for group in opt.param_groups:
            group["lr"] = _lr_at(result.steps, cfg) * group["scale"]
        tensors = collate([examples[i] for i in mine], pad)
        if sat is not None:
            sat.watch(tensors["attention_mask"].to(device))
        loss_sum, count = _token_loss_sum(runner, tensors, device)
        total = max(dist.sum([float(count)])[0], 1.0)
        task = loss_sum * world / total  # DDP averages gradients over the world: the global-batch mean
        structure = sat(mine) if sat is not None else None
        loss = task if structure is None else task + sat_alpha * structure
        loss.backward()
        if sat is not None:  # equal shares: the mean of the ranks' structure losses is the global batch's
            dist.average_grads(list(sat.parameters()))
        value = dist.sum([loss_sum.item()])[0] / total
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        result.steps += 1
        result.tokens += sum(len(e.input_ids) for e in batch)
        result.body_tokens += sum(e.body_tokens for e in batch)
        result.seconds = time.perf_counter() - t_start
        record = {"step": result.steps, "loss": round(value, 4), "lr": opt.param_groups[0]["lr"],
                  "tokens": result.tokens, "seconds": round(result.seconds, 1)}
        if structure is not None:
            record["structure"] = round(dist.mean([structure.item()])[0], 6)
        result.history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{value:.3f}", tok=result.tokens)
        if result.steps % cfg.save_every == 0 and rank == 0:
            _save(state_path, model, opt, cfg, result, sat)
    bar.close()
    if sat is not None:
        sat.watch(None)
        sat.close()
    interrupted = stop_after is not None and result.steps < cfg.steps
    if valid and not interrupted and result.valid[-1]["step"] != result.steps:
        result.valid.append({"step": result.steps,
                             "loss": round(valid_loss(model, valid, pad, device, cfg.batch_size), 4)})
    result.seconds = time.perf_counter() - t_start
    if rank == 0:
        _save(state_path, model, opt, cfg, result, sat)
    return result, model, lora


def summary(result: TrainResult) -> dict[str, Any]:
    """Loss curve condensed to ~10 points (mean loss per window) plus totals."""
    h = result.history
    window = max(1, len(h) // 10)
    curve = []
    for i in range(0, len(h), window):
        part = h[i:i + window]
        curve.append({"step": part[-1]["step"], "mean_loss": round(sum(x["loss"] for x in part) / len(part), 4)})
    return {"steps": result.steps, "tokens": result.tokens, "body_tokens": result.body_tokens,
            "seconds": round(result.seconds, 1), "curve": curve, "valid": result.valid}
