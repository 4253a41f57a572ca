"""Training: the in-batch softmax of CodeSearchNet (equation 1) with Adam, model selection by MRR on
the validation split after every epoch, early stopping, resumable checkpoints.

The checkpoint holds everything needed to resume or export: configs, the tokenizer JSON, the current
and the best weights, optimizer state, position, history, and a few validation pairs that the
exporter uses to check the graphs against PyTorch.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from models.retrieval.data import load_pairs, shuffled
from models.retrieval.evaluate import mrr_embeddings
from models.retrieval.model import DualEncoder, RetrievalConfig, count_parameters, pad_batch
from models.retrieval.tokenizer import encode_batch, train_bpe

VALIDATION_PAIRS = 32


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults are CodeSearchNet's where they apply (query 30 tokens, code 200)."""

    arch: str = "nbow"
    vocab_size: int = 8192
    embed_dim: int = 128
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1
    max_query_tokens: int = 30
    max_code_tokens: int = 200
    batch_size: int = 256
    """In-batch negatives: each query's softmax runs over batch_size codes."""
    lr: float = 2e-3
    grad_clip: float = 5.0
    epochs: int = 100
    patience: int = 5
    """Stop after this many epochs without a better validation MRR."""
    max_minutes: float | None = None
    """Stop (and checkpoint) after this much wall time in this run; a later run resumes."""
    max_train_pairs: int | None = None
    seed: int = 0


@dataclass
class TrainState:
    epoch: int = 0
    batch: int = 0
    """Batches of the current epoch already done (resume point)."""
    steps: int = 0
    seconds: float = 0.0
    """Training wall time over all runs (validation included)."""
    best_mrr: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
    done: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def torch_embedder(model: DualEncoder, tok: Tokenizer, which: str, max_len: int, batch: int = 256) -> Any:
    """texts -> [n, d] numpy unit vectors through PyTorch, batched by length like the engine."""

    @torch.no_grad()
    def embed(texts: list[str]) -> np.ndarray:
        ids = encode_batch(tok, texts, max_len)
        out = np.zeros((len(texts), model.cfg.output_dim), np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for s in range(0, len(order), batch):
            rows = order[s:s + batch]
            x, m = pad_batch([ids[i] for i in rows])
            out[rows] = model.encode(which, x, m).numpy()
        return out

    return embed


def valid_mrr(model: DualEncoder, tok: Tokenizer, cfg: TrainConfig, queries: list[str], codes: list[str]) -> float:
    model.eval()
    res = mrr_embeddings(torch_embedder(model, tok, "query", cfg.max_query_tokens),
                         torch_embedder(model, tok, "code", cfg.max_code_tokens), queries, codes)
    model.train()
    return float(res["mrr"])


def save_checkpoint(path: Path, model: DualEncoder, best: dict[str, Any], opt: torch.optim.Optimizer,
                    tok: Tokenizer, cfg: TrainConfig, state: TrainState, pairs: list[tuple[str, str]]) -> None:
    """Atomic: a run killed mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"model_config": model.cfg.to_dict(), "train_config": cfg.__dict__, "tokenizer": tok.to_str(),
                "model": model.state_dict(), "best_model": best, "optimizer": opt.state_dict(),
                "state": state.__dict__, "validation_pairs": pairs}, tmp)
    os.replace(tmp, path)


def load_model(path: Path, best: bool = True) -> tuple[DualEncoder, Tokenizer, dict[str, Any]]:
    """Model (eval mode; the best weights by validation MRR unless ``best`` is False), tokenizer,
    raw checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = DualEncoder(RetrievalConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["best_model"] if best and ckpt.get("best_model") else ckpt["model"])
    model.eval()
    return model, Tokenizer.from_str(ckpt["tokenizer"]), ckpt


def train(corpus: Path, out: Path, cfg: TrainConfig, log_every: int = 20) -> TrainState:
    """Train (or resume from ``out``) on ``corpus``'s train split, selecting on its valid split."""
    t_run = time.monotonic()
    torch.manual_seed(cfg.seed)  # before the model is built: its initial weights come from this
    queries, codes = load_pairs(corpus, "train")
    if cfg.max_train_pairs is not None:
        keep = sorted(shuffled(len(queries), cfg.seed)[:cfg.max_train_pairs])
        queries, codes = [queries[i] for i in keep], [codes[i] for i in keep]
    vq, vc = load_pairs(corpus, "valid")
    if out.exists():
        ckpt = torch.load(out, map_location="cpu", weights_only=False)
        cfg = TrainConfig(**{**ckpt["train_config"], "max_minutes": cfg.max_minutes})
        tok = Tokenizer.from_str(ckpt["tokenizer"])
        model = DualEncoder(RetrievalConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        best = ckpt["best_model"]
        state = TrainState(**ckpt["state"])
        pairs = [tuple(p) for p in ckpt["validation_pairs"]]
    else:
        ckpt = None
        tok = train_bpe(queries + codes, cfg.vocab_size)
        model = DualEncoder(RetrievalConfig(cfg.arch, tok.get_vocab_size(), cfg.embed_dim, cfg.hidden_size,
                                            cfg.num_layers, cfg.dropout))
        best = {}
        state = TrainState()
        pairs = list(zip(vq, vc, strict=True))[:VALIDATION_PAIRS] or list(zip(queries, codes, strict=True))[:8]
    tok.no_padding()
    tok.no_truncation()
    torch.manual_seed(cfg.seed + state.epoch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    q_ids = encode_batch(tok, queries, cfg.max_query_tokens)
    c_ids = encode_batch(tok, codes, cfg.max_code_tokens)
    n_batches = len(q_ids) // cfg.batch_size if len(q_ids) >= cfg.batch_size else 1
    print(f"train: {len(q_ids)} pairs, {n_batches} batches of {cfg.batch_size}/epoch, vocab {tok.get_vocab_size()}, "
          f"{cfg.arch} {count_parameters(model):,} parameters; valid: {len(vq)} pairs", file=sys.stderr)
    model.train()
    base_seconds = state.seconds
    out_of_time = False
    while not state.done and state.epoch < cfg.epochs and not out_of_time:
        order = shuffled(len(q_ids), cfg.seed * 1000 + state.epoch)
        run_loss, run_n = 0.0, 0
        for b in range(state.batch, n_batches):
            rows = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            loss = model.loss(*pad_batch([q_ids[i] for i in rows]), *pad_batch([c_ids[i] for i in rows]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            state.batch, state.steps = b + 1, state.steps + 1
            run_loss, run_n = run_loss + loss.item(), run_n + 1
            if state.steps % log_every == 0:
                state.history.append({"step": state.steps, "epoch": state.epoch, "train_loss": round(run_loss / run_n, 4)})
                print(f"step {state.steps} epoch {state.epoch}: loss {run_loss / run_n:.4f}", file=sys.stderr)
                run_loss, run_n = 0.0, 0
            if cfg.max_minutes is not None and time.monotonic() - t_run > cfg.max_minutes * 60:
                out_of_time = True
                break
        if not out_of_time:
            state.epoch, state.batch = state.epoch + 1, 0
            mrr = valid_mrr(model, tok, cfg, vq, vc) if len(vq) > 1 else 0.0
            if mrr > state.best_mrr:
                state.best_mrr, state.best_epoch, state.bad_epochs = mrr, state.epoch, 0
                best = copy.deepcopy(model.state_dict())
            else:
                state.bad_epochs += 1
                state.done = state.bad_epochs >= cfg.patience
            elapsed = base_seconds + time.monotonic() - t_run
            state.history.append({"epoch": state.epoch, "step": state.steps, "valid_mrr": round(mrr, 4),
                                  "seconds": round(elapsed, 1)})
            print(f"epoch {state.epoch}: valid MRR {mrr:.4f} (best {state.best_mrr:.4f} at epoch {state.best_epoch}), "
                  f"{elapsed:.0f} s", file=sys.stderr)
        state.seconds = base_seconds + time.monotonic() - t_run
        save_checkpoint(out, model, best, opt, tok, cfg, state, pairs)
    return state
