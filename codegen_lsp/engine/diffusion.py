"""The engine for ``diffusion`` packages (CodeFusion): encoder once, denoiser once per step, decoder +
head once, with the denoising loop here in the host.

Graph contract (``docs/codefusion.md``; names in ``manifest.extra['diffusion']['graphs']``):
``encoder`` ``input_ids`` [B, S] int64, ``attention_mask`` [B, S] int64 -> ``encoder_states``
[B, S, d]; ``denoiser`` ``x_t`` [B, Lc, d], ``timestep`` [B] float32, ``encoder_states``,
``attention_mask`` -> ``eps`` [B, Lc, d]; ``decoder`` ``x0`` [B, Lc, d], ``encoder_states``,
``attention_mask`` -> ``logits`` [B, Lc, V]. Candidates are noise seeds decoded as one batch; the
sampler is deterministic (DDIM, eta 0) over ``steps`` evenly spaced timesteps of the package's
schedule, so one seed gives one body. Cancellation and the time budget are checked before every step.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ..modelpkg import ManifestInvalid, ModelPackage
from .config import CancelLike, GenerationConfig, OnLine, run_waiting
from .generate import open_graphs
from .providers import ProviderChoice, physical_cores
from .results import Cancelled, FinishReason, Generation, GenerationResult
from .sampling import log_softmax

log = logging.getLogger(__name__)

GRAPHS = ("encoder", "denoiser", "decoder")
SAMPLERS = ("ddim",)
SCHEDULES = ("sqrt",)
IO = {
    "encoder": (("input_ids", "attention_mask"), ("encoder_states",)),
    "denoiser": (("x_t", "timestep", "encoder_states", "attention_mask"), ("eps",)),
    "decoder": (("x0", "encoder_states", "attention_mask"), ("logits",)),
}
"""Default tensor names per graph: (inputs, outputs)."""


def step_times(timesteps: int, steps: int) -> list[int]:
    """The ``steps`` timesteps visited from T-1 down to 0, evenly spaced (the exporter's
    ``models/codefusion/schedule.py`` defines the same)."""
    steps = max(1, min(steps, timesteps))
    return [int(t) for t in np.linspace(timesteps - 1, 0, steps).round().astype(int)]


def candidate_noise(seed: int | None, n: int, shape: tuple[int, int]) -> np.ndarray:
    """x_T for ``n`` candidates [n, Lc, d]: candidate i draws from the seed (seed, i), so adding
    candidates never changes the first ones; None = fresh entropy."""
    base = np.random.SeedSequence() if seed is None else None
    out = np.empty((n, *shape), np.float32)
    for i in range(n):
        rng = np.random.default_rng(base.spawn(1)[0] if base is not None else [int(seed or 0) & 0xFFFFFFFF, i])
        out[i] = rng.standard_normal(shape, dtype=np.float32)
    return out


class DiffusionEngine:
    """A loaded diffusion package ready to generate."""

    def __init__(self, package: ModelPackage, choice: ProviderChoice, options: Any) -> None:
        self.package = package
        self.manifest = m = package.manifest
        self.choice = choice
        self.threads = getattr(options, "threads", None) or physical_cores()
        self.variant = v = package.choose_variant(choice.provider, getattr(options, "variant", None))
        spec = m.extra.get("diffusion")
        if not isinstance(spec, dict):
            raise ManifestInvalid(package.root, "kind 'diffusion' needs extra.diffusion (schedule, steps, lengths)")
        self._read_spec(spec)
        self.sessions = open_graphs(package, v, GRAPHS, self.threads, choice, self.names)
        self.tokenizer = Tokenizer.from_file(str(package.path(m.tokenizer)))
        steps = getattr(options, "steps", None)
        self.steps = self.default_steps if steps is None else int(steps)
        if not 1 <= self.steps <= self.timesteps:
            raise ValueError(f"steps must be in 1..{self.timesteps} (the package's T), got {self.steps}")
        self.info: dict[str, Any] = {
            "model": m.name,
            "provider": self.sessions["denoiser"].get_providers()[0].removesuffix("ExecutionProvider").lower(),
            "reason": choice.reason, "variant": v.name, "graph": "diffusion", "context_length": m.context_length,
            "threads": self.threads, "steps": self.steps, "default_steps": self.default_steps,
            "timesteps": self.timesteps, "target_length": self.target_length,
            "encoder_length": self.encoder_length,
        }
        log.info("diffusion engine ready: %s", self.info)

    def _read_spec(self, spec: dict[str, Any]) -> None:
        root = self.package.root
        try:
            if spec.get("schedule") not in SCHEDULES:
                raise ManifestInvalid(root, f"extra.diffusion.schedule {spec.get('schedule')!r} is not one of "
                                            f"{list(SCHEDULES)} (upgrade codegen-lsp or re-export)")
            if spec.get("sampler") not in SAMPLERS:
                raise ManifestInvalid(root, f"extra.diffusion.sampler {spec.get('sampler')!r} is not one of "
                                            f"{list(SAMPLERS)}")
            self.timesteps = int(spec["timesteps"])
            self.alphas_cumprod = np.asarray(spec["alphas_cumprod"], dtype=np.float64)
            self.default_steps = int(spec["default_steps"])
            self.target_length = int(spec["target_length"])
            self.encoder_length = int(spec["encoder_length"])
            self.d_model = int(spec["d_model"])
            self.pad_id = int(spec["pad_id"])
            self.x0_clip = float(spec["x0_clip"])
            self.names: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
                g: (tuple(spec.get("graphs", {}).get(g, {}).get("inputs", IO[g][0])),
                    tuple(spec.get("graphs", {}).get(g, {}).get("outputs", IO[g][1]))) for g in GRAPHS}
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestInvalid(root, f"extra.diffusion is incomplete or mistyped: {exc!r}") from exc
        if self.alphas_cumprod.shape != (self.timesteps,) or not (
                (self.alphas_cumprod > 0).all() and (self.alphas_cumprod < 1).all()):
            raise ManifestInvalid(root, f"extra.diffusion.alphas_cumprod must hold {self.timesteps} values in (0, 1)")
        if not 1 <= self.default_steps <= self.timesteps:
            raise ManifestInvalid(root, f"extra.diffusion.default_steps {self.default_steps} not in 1..{self.timesteps}")

    # -- the BodyModel interface ---------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, text: str) -> list[int]:
        """E's input: the prompt's last ``encoder_length`` tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids[-self.encoder_length:]

    def prompt_budget(self, time_budget_s: float | None, share: float = 0.4) -> int | None:
        return None  # E reads a fixed window; a longer prompt costs nothing more

    def clear_caches(self) -> None:
        pass

    # -- graphs ----------------------------------------------------------------------------------
    def _run(self, graph: str, *arrays: np.ndarray) -> np.ndarray:
        ins, outs = self.names[graph]
        return np.asarray(self.sessions[graph].run([outs[0]], dict(zip(ins, arrays, strict=True)))[0])

    def denoise_step(self, x: np.ndarray, t: int, enc: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One denoiser call at timestep ``t``: (x0 estimate clipped, the noise consistent with it)."""
        n = x.shape[0]
        eps = self._run("denoiser", x, np.full((n,), t, np.float32), enc, mask)
        abar = float(self.alphas_cumprod[t])
        x0 = np.clip((x - np.sqrt(1.0 - abar) * eps) / np.sqrt(abar), -self.x0_clip, self.x0_clip).astype(np.float32)
        eps = ((x - np.sqrt(abar) * x0) / np.sqrt(1.0 - abar)).astype(np.float32)
        return x0, eps

    # -- generation ------------------------------------------------------------------------------
    def generate(self, prompt: str, config: GenerationConfig | None = None, on_line: OnLine | None = None,
                 cancel: CancelLike | None = None) -> GenerationResult:
        config = config or GenerationConfig()
        t0 = time.perf_counter()
        deadline = t0 + config.time_budget_s if config.time_budget_s is not None else None
        all_ids = self.tokenizer.encode(prompt, add_special_tokens=False).ids
        ids = all_ids[-self.encoder_length:] or [self.pad_id]
        trimmed = len(all_ids) - len(ids) if all_ids else 0
        n = config.num_candidates
        if cancel is not None and cancel.is_set():
            raise Cancelled(None)
        mask1 = np.ones((1, len(ids)), np.int64)
        enc = self._run("encoder", np.asarray([ids], np.int64), mask1)
        enc, mask = np.repeat(enc, n, axis=0), np.repeat(mask1, n, axis=0)
        t_prefill = time.perf_counter()

        x = candidate_noise(config.seed, n, (self.target_length, self.d_model))
        x0: np.ndarray | None = None
        times = step_times(self.timesteps, self.steps)
        step_s: list[float] = []
        stopped: FinishReason | None = None
        for k, t in enumerate(times):
            if deadline is not None:
                deadline += run_waiting(cancel)
            else:
                run_waiting(cancel)
            if cancel is not None and cancel.is_set():
                raise Cancelled(self._partial(n, ids, trimmed, t0, t_prefill, len(step_s)))
            if deadline is not None and time.perf_counter() >= deadline:
                stopped = "time"
                break
            ts = time.perf_counter()
            x0, eps = self.denoise_step(x, t, enc, mask)
            if k + 1 < len(times):
                abar_next = float(self.alphas_cumprod[times[k + 1]])
                x = (np.sqrt(abar_next) * x0 + np.sqrt(1.0 - abar_next) * eps).astype(np.float32)
            step_s.append(time.perf_counter() - ts)
        if x0 is None:  # out of time before the first step: the estimate is the clipped noise
            x0 = np.clip(x, -self.x0_clip, self.x0_clip).astype(np.float32)
        td = time.perf_counter()
        logp = log_softmax(self._run("decoder", x0, enc, mask).astype(np.float32))  # [n, Lc, V]
        decoder_s = time.perf_counter() - td
        tokens = logp.argmax(-1)  # [n, Lc]
        gens = [self._candidate(i, tokens[i], logp[i], config, stopped, on_line) for i in range(n)]
        now = time.perf_counter()
        timings = {"finished_s": now - t0, "steps": float(len(step_s)),
                   "step_s": float(np.mean(step_s)) if step_s else 0.0, "encoder_s": t_prefill - t0,
                   "decoder_s": decoder_s}
        for g in gens:
            g.timings = dict(timings)
        return GenerationResult(generations=gens, prompt_tokens=len(ids), prefix_cache_hit_tokens=0,
                                time_to_first_token_s=now - t0, prefill_s=t_prefill - t0, decode_s=now - t_prefill,
                                decode_tokens=len(step_s) * n, prefilled_tokens=len(ids), trimmed_tokens=trimmed)

    def _candidate(self, i: int, tokens: np.ndarray, logp: np.ndarray, config: GenerationConfig,
                   stopped: FinishReason | None, on_line: OnLine | None) -> Generation:
        toks = [int(x) for x in tokens]
        end = toks.index(self.pad_id) if self.pad_id in toks else len(toks)
        finish: FinishReason = "eos" if end < len(toks) else "length"
        if end > config.max_new_tokens:
            end, finish = config.max_new_tokens, "length"
        kept = toks[:end]
        scored = end + 1 if finish == "eos" else end  # the pad that ends the body is a choice too
        score = float(np.mean([logp[p, toks[p]] for p in range(scored)])) if scored else 0.0
        if stopped is not None:
            finish = stopped
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        if on_line is not None:
            for p in range(len(kept)):
                if "\n" not in self.tokenizer.decode([kept[p]], skip_special_tokens=True):
                    continue
                so_far = self.tokenizer.decode(kept[: p + 1], skip_special_tokens=True)
                if not on_line(i, so_far):
                    return Generation(so_far, kept[: p + 1], score, "stop")
        return Generation(text, kept, score, finish)

    def _partial(self, n: int, ids: list[int], trimmed: int, t0: float, t_prefill: float, steps: int) -> GenerationResult:
        """What a cancelled call returns: no text (nothing is decoded until the last step)."""
        now = time.perf_counter()
        gens = [Generation("", [], 0.0, "cancelled", {"finished_s": now - t0, "steps": float(steps)}) for _ in range(n)]
        return GenerationResult(generations=gens, prompt_tokens=len(ids), prefix_cache_hit_tokens=0,
                                time_to_first_token_s=0.0, prefill_s=t_prefill - t0, decode_s=now - t_prefill,
                                decode_tokens=steps * n, prefilled_tokens=len(ids), trimmed_tokens=trimmed)
