"""The PyTorch reference sampler: the same deterministic DDIM loop the runtime engine runs
(``codegen_lsp/engine/diffusion.py``), fed the same initial noise, for export validation and for
looking at the model before export."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.codefusion.model import CodeFusion
from models.codefusion.schedule import alphas_cumprod, ddim_step, predict_x0, step_times


@dataclass
class Sampled:
    tokens: np.ndarray
    """[n, Lc] argmax ids (pads included)."""
    logits: np.ndarray
    """[n, Lc, V] H(D(x0))."""
    x0: np.ndarray
    """[n, Lc, d] the last x0 estimate."""


@torch.no_grad()
def reference_sample(model: CodeFusion, prompt_ids: list[int], noise: np.ndarray, steps: int) -> Sampled:
    """Denoise ``noise`` [n, Lc, d] (x_T of n candidates) conditioned on ``prompt_ids`` (E's input,
    already cut to ``encoder_length``) over ``steps`` evenly spaced timesteps."""
    cfg = model.cfg
    abar = alphas_cumprod(cfg.timesteps)
    n = noise.shape[0]
    ids = torch.tensor([prompt_ids], dtype=torch.int64).repeat(n, 1)
    mask = torch.ones_like(ids, dtype=torch.float32)
    enc = model.encoder(ids, mask)
    x = noise.astype(np.float32)
    times = step_times(cfg.timesteps, steps)
    x0 = x
    for k, t in enumerate(times):
        eps = model.denoiser(torch.from_numpy(x), torch.full((n,), float(t)), enc, mask).numpy()
        x0, eps = predict_x0(x, eps, float(abar[t]), cfg.x0_clip)
        if k + 1 < len(times):
            x = ddim_step(x0, eps, float(abar[times[k + 1]]))
    logits = model.logits(torch.from_numpy(x0), enc, mask).numpy()
    return Sampled(logits.argmax(-1), logits, x0)
