"""Training with ``--order preorder | bfs | mutual``. One order: MLE over its action sequence.
Mutual (Xie et al., 2021): a pre-order peer and a breadth-first peer (each its own encoder and
decoder) trained together; at every step each one's loss is its MLE plus ``kl_weight`` x
KL(peer || itself) over the same tree positions (actions aligned by their path in the tree; the
peer's distribution is the fixed target). Distributions: the grammar-masked rule softmax at rule
steps, the joint (generate token, copy position) distribution at token steps.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codegen_lsp.engine.treedec.grammar import ORDERS, Grammar
from codegen_lsp.engine.treedec.prompt import function_site
from models.distributed import Dist, init
from models.evaluate.pairs import sample_pairs
from models.treedec.asdl import grammar_spec
from models.treedec.config import NamedConfig, TrainConfig
from models.treedec.data import Example, Vocab, actions_of, alignment, make_example, train_tokenizer
from models.treedec.model import MASKED, ModelConfig, TreeDecoder, count_parameters

CKPT = "ckpt.pt"
MODES = (*ORDERS, "mutual")


def prepare(corpus: Path, cfg: TrainConfig, log: Any) -> dict[str, Any]:
    """Grammar, tokenizer, vocabulary and the train/valid examples that fit ``max_actions``."""
    grammar_dict = grammar_spec()
    grammar = Grammar(grammar_dict)
    train_pairs = sample_pairs(corpus, "train", cfg.max_train_records, cfg.seed)
    encoded, skipped = [], 0
    for p in train_pairs:
        try:
            enc = actions_of(grammar, p)
        except (ValueError, SyntaxError, RecursionError):
            skipped += 1
            continue
        if len(enc["preorder"][0]) <= cfg.max_actions:
            encoded.append((p, enc))
    tok = train_tokenizer([function_site(p.prompt)[0] for p, _ in encoded], cfg.src_vocab)
    vocab = Vocab.build(grammar, [e["preorder"][0] for _, e in encoded], cfg.tok_vocab)
    train = [make_example(vocab, tok, p, e, cfg.max_src) for p, e in encoded]
    valid = []
    if (corpus / "valid.jsonl").exists():
        for p in sample_pairs(corpus, "valid", cfg.valid_records, cfg.seed):
            try:
                enc = actions_of(grammar, p)
            except (ValueError, SyntaxError, RecursionError):
                continue
            if len(enc["preorder"][0]) <= cfg.max_actions:
                valid.append(make_example(vocab, tok, p, enc, cfg.max_src))
    log(f"{len(train)} of {len(train_pairs)} train pairs fit {cfg.max_actions} actions ({skipped} not expressible); "
        f"{len(valid)} valid; {len(vocab.tokens)} primitive tokens, source vocab {tok.get_vocab_size()}")
    return {"grammar": grammar_dict, "tokenizer": tok.to_str(), "tokens": vocab.tokens, "train": train, "valid": valid}


def collate(examples: list[Example], vocab: Vocab, orders: tuple[str, ...]) -> dict[str, Any]:
    b = len(examples)
    s = max(len(e.src) for e in examples)
    t = max(e.n_actions for e in examples)
    src = torch.zeros(b, s, dtype=torch.int64)
    lengths = torch.tensor([len(e.src) for e in examples])
    out: dict[str, Any] = {"src": src, "lengths": lengths}
    for i, e in enumerate(examples):
        src[i, : len(e.src)] = torch.tensor(e.src)
    field_rules = torch.zeros(len(vocab.grammar.fields), vocab.grammar.num_rules, dtype=torch.bool)
    for fid, f in enumerate(vocab.grammar.fields):
        if f.type in vocab.grammar.by_sort:
            field_rules[fid, vocab.grammar.by_sort[f.type]] = True
        field_rules[fid, vocab.grammar.hole] = f.holes
    for order in orders:
        o: dict[str, torch.Tensor] = {k: torch.zeros(b, t, dtype=torch.int64) for k in ("rule", "prev", "field", "parent")}
        o["token"] = torch.full((b, t), -1, dtype=torch.int64)
        o["closable"] = torch.zeros(b, t, dtype=torch.bool)
        o["valid"] = torch.zeros(b, t, dtype=torch.bool)
        o["copy"] = torch.zeros(b, t, s, dtype=torch.bool)
        for i, e in enumerate(examples):
            q, n = e.seqs[order], e.n_actions
            for k in ("rule", "prev", "field", "parent", "token", "closable"):
                o[k][i, :n] = torch.from_numpy(getattr(q, k))
            o["valid"][i, :n] = True
            for step, pos in q.copy:
                o["copy"][i, step, pos] = True
        allowed = field_rules[o["field"]]
        allowed[..., vocab.grammar.reduce] |= o["closable"]
        o["allowed"] = allowed
        out[order] = o
    if "bfs" in orders and "preorder" in orders:
        pre_to_bfs = torch.zeros(b, t, dtype=torch.int64)
        for i, e in enumerate(examples):
            align = alignment(e)
            pre_to_bfs[i, torch.from_numpy(align)] = torch.arange(e.n_actions)
        out["pre_to_bfs"] = pre_to_bfs
    return out


def outputs(model: TreeDecoder, batch: dict[str, Any], order: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(masked rule log-probs [B, T, R], generate log-probs [B, T, V], copy log-probs [B, T, S])."""
    o = batch[order]
    rules, gen, copy = model.teacher_forced(batch["src"], batch["lengths"], o["prev"], o["field"], o["parent"])
    return torch.log_softmax(rules.masked_fill(~o["allowed"], MASKED), -1), gen, copy


def nll(out: tuple[torch.Tensor, ...], o: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood of the gold actions, and the rule steps predicted right."""
    rule_logp, gen, copy = out
    is_tok = o["token"] >= 0
    rule_nll = -rule_logp.gather(-1, o["rule"][..., None]).squeeze(-1)
    gen_t = gen.gather(-1, o["token"].clamp(min=0)[..., None]).squeeze(-1)
    has_copy = o["copy"].any(-1)
    use_gen = (o["token"] != 1) | ~has_copy  # an unknown token that can be copied is learned as a copy
    terms = torch.cat([torch.where(use_gen, gen_t, MASKED)[..., None], copy.masked_fill(~o["copy"], MASKED)], -1)
    loss = torch.where(is_tok, -torch.logsumexp(terms, -1), rule_nll)
    right = (rule_logp.argmax(-1) == o["rule"]) & ~is_tok & o["valid"]
    return (loss * o["valid"]).sum(), right.sum()


def kl(teacher: tuple[torch.Tensor, ...], student: tuple[torch.Tensor, ...], o: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed KL(teacher || student) over the valid steps; the teacher is fixed."""
    t_rule, t_gen, t_copy = (x.detach() for x in teacher)
    s_rule, s_gen, s_copy = student
    rule_kl = (t_rule.exp() * (t_rule - s_rule)).sum(-1)
    t_tok, s_tok = torch.cat([t_gen, t_copy], -1), torch.cat([s_gen, s_copy], -1)
    tok_kl = (t_tok.exp() * (t_tok - s_tok)).sum(-1)
    return (torch.where(o["token"] >= 0, tok_kl, rule_kl) * o["valid"]).sum()


def aligned(out: tuple[torch.Tensor, ...], index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """BFS outputs [B, T, *] reordered to pre-order positions."""
    return tuple(x.gather(1, index[..., None].expand(-1, -1, x.shape[-1])) for x in out)


def batch_loss(models: dict[str, TreeDecoder], batch: dict[str, Any], kl_weight: float,
               norm: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The batch's summed loss divided by ``norm`` (default: its number of actions), and the raw sums
    behind it (:func:`rates` turns them into per-action figures; processes add them up first)."""
    n = batch[next(iter(models))]["valid"].sum()
    outs = {order: outputs(m, batch, order) for order, m in models.items()}
    sums: dict[str, float] = {"actions": float(n)}
    summed = torch.zeros((), device=n.device)
    for order in models:
        loss, right = nll(outs[order], batch[order])
        summed = summed + loss
        sums[f"{order}_nll"] = loss.item()
        sums[f"{order}_right"] = float(right)
        sums[f"{order}_rules"] = float(((batch[order]["token"] < 0) & batch[order]["valid"]).sum())
    if len(models) == 2:
        bfs_at_pre = aligned(outs["bfs"], batch["pre_to_bfs"])
        o = batch["preorder"]
        kl_pre, kl_bfs = kl(bfs_at_pre, outs["preorder"], o), kl(outs["preorder"], bfs_at_pre, o)
        summed = summed + kl_weight * (kl_pre + kl_bfs)
        sums["kl_preorder"], sums["kl_bfs"] = kl_pre.item(), kl_bfs.item()
    return summed / (norm if norm is not None else n.clamp(min=1)), sums


def rates(sums: dict[str, float]) -> dict[str, float]:
    """Per-action NLL and KL, and the share of rule steps predicted right, from :func:`batch_loss`'s sums."""
    n = max(sums["actions"], 1.0)
    out: dict[str, float] = {}
    for key, v in sums.items():
        if key.endswith("_nll") or key.startswith("kl_"):
            out[key] = v / n
        elif key.endswith("_right"):
            order = key[: -len("_right")]
            out[f"{order}_rule_acc"] = v / max(sums[f"{order}_rules"], 1.0)
    return out


class StepLoss(nn.Module):
    """The peers' loss as one forward, so DistributedDataParallel sees every parameter use."""

    def __init__(self, models: dict[str, TreeDecoder]) -> None:
        super().__init__()
        self.peers = nn.ModuleDict(models)

    def forward(self, batch: dict[str, Any], kl_weight: float, norm: float) -> tuple[torch.Tensor, dict[str, float]]:
        return batch_loss(dict(self.peers.items()), batch, kl_weight, norm)  # type: ignore[arg-type]


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: to_device(v, device) if isinstance(v, dict) else v.to(device) for k, v in batch.items()}


def batches(examples: list[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled batches of similar lengths (less padding in the step loop)."""
    idx = list(range(len(examples)))
    rng.shuffle(idx)
    out = []
    for start in range(0, len(idx), size * 50):
        chunk = sorted(idx[start:start + size * 50], key=lambda i: examples[i].n_actions)
        out += [[examples[i] for i in chunk[k:k + size]] for k in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


@torch.no_grad()
def evaluate(models: dict[str, TreeDecoder], valid: list[Example], vocab: Vocab, cfg: TrainConfig) -> dict[str, float]:
    for m in models.values():
        m.eval()
    totals: dict[str, float] = {}
    n = 0
    orders = tuple(models)
    device = next(next(iter(models.values())).parameters()).device
    for k in range(0, len(valid), cfg.batch_size):
        chunk = valid[k:k + cfg.batch_size]
        _, sums = batch_loss(models, to_device(collate(chunk, vocab, orders), device), 0.0)
        for key, v in rates(sums).items():
            totals[key] = totals.get(key, 0.0) + v * len(chunk)
        n += len(chunk)
    for m in models.values():
        m.train()
    return {f"valid_{k}": round(v / max(n, 1), 4) for k, v in totals.items()}


def save(out: Path, data: dict[str, Any], models: dict[str, TreeDecoder], opt: torch.optim.Optimizer,
         named: NamedConfig, name: str, mode: str, state: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (CKPT + ".tmp")
    torch.save({"config_name": name, "mode": mode, "train_config": asdict(named.train),
                "model_config": next(iter(models.values())).cfg.to_dict(), "grammar": data["grammar"],
                "tokenizer": data["tokenizer"], "tokens": data["tokens"],
                "models": {o: m.state_dict() for o, m in models.items()}, "optimizer": opt.state_dict(),
                "state": state}, tmp)
    os.replace(tmp, out / CKPT)
    (out / "history.json").write_text(json.dumps(state["history"], indent=1) + "\n")


def load_models(ckpt_dir: Path) -> tuple[dict[str, TreeDecoder], dict[str, Any]]:
    ckpt = torch.load(ckpt_dir / CKPT, map_location="cpu", weights_only=False)
    models = {}
    for order, sd in ckpt["models"].items():
        m = TreeDecoder(ModelConfig(**ckpt["model_config"]))
        m.load_state_dict(sd)
        models[order] = m.eval()
    return models, ckpt


def train(corpus: Path, out: Path, named: NamedConfig, name: str, mode: str, max_minutes: float | None = None,
          data_cache: Path | None = None, log: Any = None, dist: Dist | None = None) -> dict[str, Any]:
    """Train (or resume from ``out``); returns the state (steps, seconds, history). Under torchrun /
    accelerate launch each process trains on its share of every batch (``models/distributed.py``):
    rank 0 prepares the data, logs, evaluates and saves."""
    if mode not in MODES:
        raise ValueError(f"--order must be one of {MODES}, got {mode!r}")
    dist = dist or init()
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    log = say if dist.main else (lambda msg: None)
    cfg = named.train
    t_start = time.monotonic()
    torch.manual_seed(cfg.seed)
    data: dict[str, Any] | None = None
    if dist.main and data_cache is not None and data_cache.exists():
        with open(data_cache, "rb") as fh:
            data = pickle.load(fh)
    elif dist.main:
        data = prepare(corpus, cfg, log)
        if data_cache is not None:
            with open(data_cache, "wb") as fh:
                pickle.dump(data, fh)
    data = dist.share(data)
    assert data is not None
    grammar = Grammar(data["grammar"])
    vocab = Vocab(grammar, data["tokens"])
    from tokenizers import Tokenizer

    mcfg = ModelConfig(src_vocab=Tokenizer.from_str(data["tokenizer"]).get_vocab_size(), num_rules=grammar.num_rules,
                       tok_vocab=len(vocab.tokens), num_actions=vocab.num_actions, num_fields=len(grammar.fields),
                       embed=cfg.embed, hidden=cfg.hidden, action_embed=cfg.action_embed,
                       field_embed=cfg.field_embed, dropout=cfg.dropout)
    orders = ORDERS if mode == "mutual" else (mode,)
    models = {o: TreeDecoder(mcfg) for o in orders}
    params = [p for m in models.values() for p in m.parameters()]
    state: dict[str, Any] = {"steps": 0, "seconds": 0.0, "epochs": 0, "history": []}
    if (out / CKPT).exists():
        ckpt = torch.load(out / CKPT, map_location="cpu", weights_only=False)
        for o, m in models.items():
            m.load_state_dict(ckpt["models"][o])
        state = ckpt["state"]
        log(f"resumed at step {state['steps']}")
    step_loss = dist.wrap(StepLoss(models))  # on the process's device
    opt = torch.optim.Adam(params, lr=cfg.lr)
    if (out / CKPT).exists():
        opt.load_state_dict(ckpt["optimizer"])
    log(f"{name} {mode}: {sum(count_parameters(m) for m in models.values())} parameters, {len(data['train'])} pairs, "
        f"{dist.world} process(es)")
    rng = random.Random(cfg.seed + state["epochs"])
    budget = max_minutes * 60 if max_minutes is not None else None
    last_save, run_n = time.monotonic(), 0
    run: dict[str, float] = {}
    for m in models.values():
        m.train()
    while state["steps"] < cfg.max_steps and (budget is None or state["seconds"] < budget):
        for chunk in batches(data["train"], cfg.batch_size, rng):
            if state["steps"] >= cfg.max_steps or dist.agree(budget is not None and state["seconds"] >= budget):
                break
            if len(chunk) < dist.world:
                continue  # every process needs an example
            t0 = time.monotonic()
            batch = to_device(collate(dist.part(chunk), vocab, orders), dist.device)
            # Normalised by the actions of the whole batch, so the processes' averaged gradients are its gradient.
            actions = dist.sum([float(batch[orders[0]]["valid"].sum())])[0]
            loss, sums = step_loss(batch, cfg.kl_weight, max(actions, 1.0) / dist.world)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            state["steps"] += 1
            state["seconds"] += time.monotonic() - t0
            for k, v in rates(dict(zip(sums, dist.sum(list(sums.values())), strict=True))).items():
                run[k] = run.get(k, 0.0) + v
            run_n += 1
            if state["steps"] % cfg.log_every == 0:
                entry = {"step": state["steps"], **{k: round(v / run_n, 4) for k, v in run.items()},
                         "seconds": round(state["seconds"], 1)}
                state["history"].append(entry)
                log(json.dumps(entry))
                run, run_n = {}, 0
            if dist.main and data["valid"] and state["steps"] % cfg.eval_every == 0:
                entry = {"step": state["steps"], **evaluate(models, data["valid"], vocab, cfg)}
                state["history"].append(entry)
                log(json.dumps(entry))
            if dist.main and time.monotonic() - last_save > cfg.checkpoint_seconds:
                save(out, data, models, opt, named, name, mode, state)
                last_save = time.monotonic()
        else:
            state["epochs"] += 1
    if dist.main and data["valid"]:
        entry = {"step": state["steps"], "final": True, **evaluate(models, data["valid"], vocab, cfg)}
        state["history"].append(entry)
        log(json.dumps(entry))
    if dist.main:
        save(out, data, models, opt, named, name, mode, state)
    dist.barrier()
    log(f"done: {state['steps']} steps, {state['seconds']:.0f} s of steps, {time.monotonic() - t_start:.0f} s wall")
    return state


def cpu_minutes() -> float:
    t = os.times()
    return (t.user + t.system) / 60
