"""SAT's structure loss (Wu et al., 2024, "Structure-aware Fine-tuning for Code Pre-trained Models"):
pull one layer's attention over the body tokens toward the body's AST distances.

The models run fused sdpa attention, which never materialises attention probabilities. An
``AttentionProbe`` hooks the chosen layer's attention module and recomputes that layer's
probabilities explicitly from the same hidden states (q/k projections, RoPE for Llama/Qwen2, causal and
padding masks, softmax): one layer's extra ``T x T`` matrix per head, gradients flowing into its q/k
projections (and their LoRA adapters). The target is ``a * D + b`` (``Linear(1, 1)``, learned); the
distance between each head's attention block and the target is the Sinkhorn divergence (geomloss,
p=2, blur 0.05) between their rows taken as point clouds, divided by ``heads * N**2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class SATConfig:
    alpha: float = 1e-4
    """Weight of the structure loss: loss = task + alpha * structure (the paper's default)."""
    layers: tuple[int, ...] = (0,)
    """Attention layers whose probabilities are pulled toward the AST (the paper: the first)."""
    heads: tuple[int, ...] = ()
    """Heads of those layers (empty: all)."""
    lr_scale: float = 1.0
    """The learned ``a, b`` train at the schedule's learning rate times this: at 2e-4 they move ~0.006
    in 32 steps, too slowly for the target's scale to adapt (docs/training.md, "SAT")."""


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The self-attention module of every layer, in order (Llama/Qwen2 ``*Attention``, GPT-2's ``GPT2Attention``)."""
    return [m for m in model.modules() if type(m).__name__.endswith("Attention") and
            (hasattr(m, "q_proj") or hasattr(m, "c_attn"))]


def attention_probs(module: Any, hidden: torch.Tensor, kwargs: dict[str, Any],
                    key_mask: torch.Tensor) -> torch.Tensor:
    """``[B, H, T, T]`` softmax attention of ``module`` on ``hidden [B, T, C]``, as eager attention
    computes it (causal, keys masked where ``key_mask [B, T]`` is 0)."""
    b, t, _ = hidden.shape
    if hasattr(module, "q_proj"):  # Llama, Qwen2 (grouped KV heads, rotary positions)
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        hd = int(module.head_dim)
        q = module.q_proj(hidden).view(b, t, -1, hd).transpose(1, 2)
        k = module.k_proj(hidden).view(b, t, -1, hd).transpose(1, 2)
        cos, sin = kwargs["position_embeddings"]
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    elif hasattr(module, "c_attn"):  # GPT-2
        q, k, _ = module.c_attn(hidden).split(module.split_size, dim=2)
        q = q.view(b, t, module.num_heads, module.head_dim).transpose(1, 2)
        k = k.view(b, t, module.num_heads, module.head_dim).transpose(1, 2)
    else:
        raise ValueError(f"--sat: no attention recipe for {type(module).__name__}")
    scores = (q.float() @ k.float().transpose(-1, -2)) * float(module.scaling)
    causal = torch.ones(t, t, dtype=torch.bool, device=hidden.device).tril()
    allowed = causal[None, None] & key_mask.bool()[:, None, None, :]
    return scores.masked_fill(~allowed, torch.finfo(scores.dtype).min).softmax(-1)


class AttentionProbe:
    """Captures the recomputed attention probabilities of chosen layers on every forward pass."""

    def __init__(self, model: nn.Module, layers: tuple[int, ...]) -> None:
        modules = attention_modules(model)
        if not modules:
            raise ValueError(f"--sat: no attention layers found in {type(model).__name__}")
        bad = [i for i in layers if not -len(modules) <= i < len(modules)]
        if bad:
            raise ValueError(f"--sat-layers {bad}: the model has {len(modules)} layers")
        self.key_mask: torch.Tensor | None = None
        self.probs: dict[int, torch.Tensor] = {}
        self._handles = [modules[i].register_forward_hook(self._hook(i), with_kwargs=True) for i in layers]

    def _hook(self, layer: int) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            if self.key_mask is None or hidden is None:
                return
            self.probs[layer] = attention_probs(module, hidden, kwargs, self.key_mask)
        return hook

    def close(self) -> None:
        for h in self._handles:
            h.remove()


class StructureLoss(nn.Module):
    """Sinkhorn divergence between attention rows and ``a * D + b``, normalised by ``heads * N**2``."""

    def __init__(self, heads: tuple[int, ...] = ()) -> None:
        super().__init__()
        from geomloss import SamplesLoss

        self.heads = heads
        self.affine = nn.Linear(1, 1)
        with torch.no_grad():  # start at the identity
            self.affine.weight.fill_(1.0)
            self.affine.bias.zero_()
        self.sinkhorn = SamplesLoss("sinkhorn", p=2, blur=0.05, backend="tensorized")

    def forward(self, probs: torch.Tensor, distances: list[tuple[int, np.ndarray]]) -> torch.Tensor:
        """``probs [B, H, T, T]``; ``distances[b] = (body start, D [n, n] with NaN = masked)``.
        Mean over the examples that have at least two mapped tokens."""
        if self.heads:
            probs = probs[:, list(self.heads)]
        losses = []
        for b, (start, dist) in enumerate(distances):
            n = dist.shape[0]
            d = torch.as_tensor(dist, device=probs.device)
            rows = torch.nonzero(~torch.isnan(d).all(1)).squeeze(1)
            if len(rows) < 2:
                continue
            lower = torch.ones(n, n, dtype=torch.bool, device=probs.device).tril()
            keep = (~torch.isnan(d) & lower)[rows]  # [r, n]: mapped pairs the causal attention can see
            attn = probs[b, :, start:start + n, start:start + n][:, rows]  # [H, r, n]
            target = self.affine(torch.nan_to_num(d[rows], nan=0.0).unsqueeze(-1)).squeeze(-1)  # [r, n]
            heads = attn.shape[0]
            x = attn * keep
            y = (target * keep).expand(heads, -1, -1)
            losses.append(self.sinkhorn(x.contiguous(), y.contiguous()).sum() / (heads * n * n))
        if not losses:
            return probs.new_zeros(())
        return torch.stack(losses).mean()


class SATObjective(nn.Module):
    """The structure term of one training run: probe, learned ``a, b`` and the AST distances of
    every training example (computed on first use)."""

    def __init__(self, model: nn.Module, cfg: SATConfig, tokenizer: Any, targets: list[str],
                 labels: list[list[int]]) -> None:
        super().__init__()
        from models.finetune.data import IGNORE

        self.cfg = cfg
        self.loss_fn = StructureLoss(cfg.heads)
        self._probe = AttentionProbe(model, cfg.layers)
        self._tokenizer = tokenizer
        self._targets = targets
        self._bodies = [(next(i for i, x in enumerate(lab) if x != IGNORE), sum(1 for x in lab if x != IGNORE))
                        for lab in labels]
        self._cache: dict[int, np.ndarray] = {}

    def distances(self, i: int) -> tuple[int, np.ndarray]:
        start, n = self._bodies[i]
        if i not in self._cache:
            from models.finetune.ast_distance import token_distances

            self._cache[i] = token_distances(self._tokenizer, self._targets[i], n)
        return start, self._cache[i]

    def watch(self, key_mask: torch.Tensor | None) -> None:
        """Record attention on the next forward passes (``None``: stop, e.g. for validation)."""
        self._probe.key_mask = key_mask
        self._probe.probs.clear()

    def forward(self, indices: list[int]) -> torch.Tensor:
        """Structure loss of the batch just run (mean over the chosen layers)."""
        dist = [self.distances(i) for i in indices]
        return torch.stack([self.loss_fn(p, dist) for p in self._probe.probs.values()]).mean()

    def close(self) -> None:
        self._probe.close()
