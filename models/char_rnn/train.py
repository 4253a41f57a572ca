"""Training loop: Adam (lr 2e-3, x0.97 per epoch), gradient clipping at 5, resumable checkpoints.

The checkpoint holds everything needed to resume or export: config, alphabet, model, optimizer and
scheduler state, position (epoch, window), and the loss history.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.char_rnn.alphabet import Alphabet
from models.char_rnn.data import encode_stream, num_windows, split_texts, windows
from models.char_rnn.model import CharRNN, CharRNNConfig


@dataclass
class TrainConfig:
    """Hyper-parameters; the defaults are char-rnn's."""

    epochs: int = 10
    batch_size: int = 50
    seq_len: int = 100
    lr: float = 2e-3
    lr_decay: float = 0.97
    """Multiplies the learning rate after every epoch."""
    grad_clip: float = 5.0
    hidden_size: int = 128
    num_layers: int = 2
    max_train_chars: int | None = None
    """Use a shuffled prefix of the train split this long (short runs see several epochs)."""
    max_valid_chars: int = 100_000
    max_minutes: float | None = None
    """Stop (and checkpoint) after this much wall time; a later run resumes."""
    checkpoint_seconds: float = 60.0
    log_every: int = 50
    seed: int = 0


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    chars: int


@dataclass
class TrainState:
    epoch: int = 0
    window: int = 0
    steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@torch.no_grad()
def evaluate(model: CharRNN, stream: np.ndarray, batch: int, seq_len: int) -> EvalResult:
    """Mean cross-entropy (nats/char) and next-char argmax accuracy, state carried across windows."""
    model.eval()
    h, c = model.init_state(batch)
    total_loss, correct, count = 0.0, 0, 0
    for _, x, y in windows(stream, batch, seq_len):
        logits, h, c = model(x, h, c)
        total_loss += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"))
        correct += int((logits.argmax(-1) == y).sum())
        count += y.numel()
    model.train()
    return EvalResult(total_loss / max(count, 1), correct / max(count, 1), count)


def save_checkpoint(path: Path, model: CharRNN, opt: torch.optim.Optimizer, sched: Any,
                    alphabet: Alphabet, cfg: TrainConfig, state: TrainState) -> None:
    """Atomic: a run killed mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(
        {
            "model_config": model.cfg.to_dict(),
            "train_config": cfg.__dict__,
            "alphabet": alphabet.symbols,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "state": state.__dict__,
        },
        tmp,
    )
    os.replace(tmp, path)


def load_model(path: Path) -> tuple[CharRNN, Alphabet, dict[str, Any]]:
    """Model (eval mode), alphabet and the raw checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = CharRNN(CharRNNConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, Alphabet(list(ckpt["alphabet"])), ckpt


def train(corpus: Path, out: Path, cfg: TrainConfig, progress: bool = True) -> TrainState:
    """Train (or resume from ``out``) on ``corpus``'s train split; returns the final state."""
    torch.manual_seed(cfg.seed)
    t_start = time.monotonic()
    train_texts = split_texts(corpus, "train", cfg.seed, cfg.max_train_chars)
    if out.exists():
        ckpt = torch.load(out, map_location="cpu", weights_only=False)
        alphabet = Alphabet(list(ckpt["alphabet"]))
        model = CharRNN(CharRNNConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        state = TrainState(**ckpt["state"])
    else:
        ckpt = None
        alphabet = Alphabet.from_texts(train_texts)
        model = CharRNN(CharRNNConfig(len(alphabet), cfg.hidden_size, cfg.num_layers))
        state = TrainState()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    train_stream = encode_stream(train_texts, alphabet)
    valid_path = corpus / "valid.jsonl"
    valid_stream = (
        encode_stream(split_texts(corpus, "valid", cfg.seed, cfg.max_valid_chars), alphabet)
        if valid_path.exists() and valid_path.stat().st_size > 0 else None
    )
    n_windows = num_windows(train_stream, cfg.batch_size, cfg.seq_len)
    print(f"train: {len(train_stream):,} chars, {n_windows} windows/epoch, vocab {len(alphabet)}", file=sys.stderr)
    last_save = time.monotonic()
    model.train()
    out_of_time = False
    while state.epoch < cfg.epochs and not out_of_time:
        h, c = model.init_state(cfg.batch_size)
        bar = tqdm(total=n_windows, initial=state.window, desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
                   disable=not progress, file=sys.stderr)
        run_loss, run_n = 0.0, 0
        for i, x, y in windows(train_stream, cfg.batch_size, cfg.seq_len, state.window):
            logits, h, c = model(x, h, c)
            h, c = h.detach(), c.detach()  # truncated backprop through time
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            state.window, state.steps = i + 1, state.steps + 1
            run_loss, run_n = run_loss + loss.item(), run_n + 1
            bar.update(1)
            if state.steps % cfg.log_every == 0:
                state.history.append({"step": state.steps, "epoch": state.epoch, "train_loss": run_loss / run_n,
                                      "lr": sched.get_last_lr()[0], "seconds": round(time.monotonic() - t_start, 1)})
                bar.set_postfix(loss=f"{run_loss / run_n:.3f}")
                run_loss, run_n = 0.0, 0
            if time.monotonic() - last_save > cfg.checkpoint_seconds:
                save_checkpoint(out, model, opt, sched, alphabet, cfg, state)
                last_save = time.monotonic()
            if cfg.max_minutes is not None and time.monotonic() - t_start > cfg.max_minutes * 60:
                out_of_time = True
                break
        bar.close()
        if not out_of_time:
            state.epoch, state.window = state.epoch + 1, 0
            sched.step()
        if valid_stream is not None and len(valid_stream) > cfg.batch_size * 2:
            res = evaluate(model, valid_stream, min(cfg.batch_size, 16), cfg.seq_len)
            state.history.append({"step": state.steps, "epoch": state.epoch, "valid_loss": res.loss,
                                  "valid_bpc": res.loss / math.log(2), "valid_accuracy": res.accuracy,
                                  "seconds": round(time.monotonic() - t_start, 1)})
            print(f"epoch {state.epoch}: valid loss {res.loss:.3f} ({res.loss / math.log(2):.3f} bpc), "
                  f"char accuracy {res.accuracy:.3f}", file=sys.stderr)
        save_checkpoint(out, model, opt, sched, alphabet, cfg, state)
        last_save = time.monotonic()
    return state
