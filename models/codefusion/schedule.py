"""The square-root noise schedule (Li et al., 2022, Diffusion-LM; used by CodeFusion) and the
deterministic (DDIM, eta = 0) sampling step, in numpy so the exporter, the reference sampler and the
tests share one definition. The runtime engine re-implements the same few lines from the manifest."""

from __future__ import annotations

import numpy as np

SQRT_OFFSET = 1e-4
MAX_BETA = 0.999


def alphas_cumprod(timesteps: int, offset: float = SQRT_OFFSET, max_beta: float = MAX_BETA) -> np.ndarray:
    """alpha_bar[t] for t = 0..T-1 with alpha_bar(s) = 1 - sqrt(s + offset), s = t / T, built from
    betas clipped at ``max_beta`` (the function reaches 0 just before s = 1)."""
    f = lambda s: 1.0 - np.sqrt(s + offset)  # noqa: E731
    betas = np.array([min(1.0 - f((i + 1) / timesteps) / f(i / timesteps), max_beta) for i in range(timesteps)])
    return np.cumprod(1.0 - betas).astype(np.float64)


def step_times(timesteps: int, steps: int) -> list[int]:
    """The ``steps`` timesteps visited from T-1 down to 0, evenly spaced (fewer steps skip)."""
    steps = max(1, min(steps, timesteps))
    ts = np.linspace(timesteps - 1, 0, steps).round().astype(int)
    return [int(t) for t in ts]


def predict_x0(x_t: np.ndarray, eps: np.ndarray, abar: float, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """(x0 estimate clipped to [-clip, clip], the noise consistent with it)."""
    x0 = (x_t - np.sqrt(1.0 - abar) * eps) / np.sqrt(abar)
    x0 = np.clip(x0, -clip, clip).astype(np.float32)
    eps = ((x_t - np.sqrt(abar) * x0) / np.sqrt(1.0 - abar)).astype(np.float32)
    return x0, eps


def ddim_step(x0: np.ndarray, eps: np.ndarray, abar_next: float) -> np.ndarray:
    """x at the next (smaller) timestep, deterministic."""
    return (np.sqrt(abar_next) * x0 + np.sqrt(1.0 - abar_next) * eps).astype(np.float32)
