"""The token-by-token decode loop shared by the autoregressive kinds (causal LM, char-RNN).

An engine supplies how to run one step (``step(tokens [n]) -> logits [n, V]``) and how to turn ids
into text; the loop owns everything else a request needs: sampling, eos, the repetition guard,
``on_line`` stops, the length limit, the time budget, cancellation and yielding to waiting work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .config import CancelLike, GenerationConfig, OnLine, run_waiting
from .results import Cancelled, FinishReason, Generation, GenerationResult
from .sampling import Sampler
from .stops import RepetitionGuard, token_cycle


@dataclass
class TextOf:
    """How a kind turns candidate ids into text."""

    text: Callable[[list[int], bool], str]
    """``text(ids, final)``: the continuation so far (``final``: nothing more will follow)."""
    has_newline: Callable[[int], bool]
    """Whether a token's text holds a newline (on_line and the line-repeat guard run then)."""


@dataclass
class _Candidate:
    ids: list[int] = field(default_factory=list)
    logps: list[float] = field(default_factory=list)
    finish: FinishReason | None = None
    text: str | None = None
    finished_s: float = 0.0


@dataclass
class Prefilled:
    """Where the prompt stood when decoding began (for the result's accounting)."""

    prompt_tokens: int
    cached_tokens: int = 0
    trimmed_tokens: int = 0
    t0: float = 0.0
    """perf_counter() at the start of the call."""
    t_prefill: float = 0.0
    """perf_counter() when the prompt was read."""


def decode(
    step: Callable[[np.ndarray], np.ndarray],
    logits: np.ndarray,
    config: GenerationConfig,
    text_of: TextOf,
    eos_ids: frozenset[int],
    max_new: int,
    at: Prefilled,
    deadline: float | None,
    on_line: OnLine | None = None,
    cancel: CancelLike | None = None,
    on_first_token: Callable[[], None] | None = None,
    cycle_repeats: int | None = None,
) -> GenerationResult:
    """Decode ``logits.shape[0]`` candidates from the prompt's last-position ``logits`` [n, V].

    ``step(tokens)`` runs the model on the chosen tokens ([n, 1] ids) and returns the next logits.
    ``cycle_repeats`` overrides ``config.max_token_cycle_repeats`` (a char model needs more)."""
    n = logits.shape[0]
    sampler = Sampler(config, n)
    guard = RepetitionGuard(config)
    repeats = config.max_token_cycle_repeats if cycle_repeats is None else cycle_repeats
    eos = frozenset() if config.ignore_eos else eos_ids
    cands = [_Candidate() for _ in range(n)]
    histories = [c.ids for c in cands]
    ttft = 0.0
    decode_tokens = 0

    def finish(c: _Candidate, reason: FinishReason, text: str | None = None) -> None:
        c.finish, c.text, c.finished_s = reason, text, time.perf_counter() - at.t0

    def result() -> GenerationResult:
        now = time.perf_counter()
        gens = [Generation(c.text if c.text is not None else text_of.text(c.ids, True), list(c.ids),
                           float(np.mean(c.logps)) if c.logps else 0.0, c.finish or "cancelled",
                           {"finished_s": c.finished_s or now - at.t0}) for c in cands]
        return GenerationResult(
            generations=gens, prompt_tokens=at.prompt_tokens, prefix_cache_hit_tokens=at.cached_tokens,
            time_to_first_token_s=ttft, prefill_s=at.t_prefill - at.t0, decode_s=now - at.t_prefill,
            decode_tokens=decode_tokens, prefilled_tokens=at.prompt_tokens - at.cached_tokens,
            trimmed_tokens=at.trimmed_tokens)

    while True:
        tokens, logps = sampler.sample(logits, histories)
        if ttft == 0.0:
            ttft = time.perf_counter() - at.t0
            if on_first_token is not None:  # after the first token (what the user waits for)
                on_first_token()
        for i, c in enumerate(cands):
            if c.finish is not None:
                continue
            tok = int(tokens[i])
            if tok in eos:
                finish(c, "eos")
                continue
            c.ids.append(tok)
            c.logps.append(float(logps[i]))
            sampler.observe(i, c.ids)
            if token_cycle(c.ids, repeats):
                finish(c, "repetition")
            elif text_of.has_newline(tok):
                text = text_of.text(c.ids, False)
                cut = guard.cut_after_line(text)
                if cut is not None:
                    finish(c, "repetition", text[:cut])
                elif on_line is not None and not on_line(i, text):
                    finish(c, "stop", text)
            if c.finish is None and len(c.ids) >= max_new:
                finish(c, "length")
        active = sum(c.finish is None for c in cands)
        if active == 0:
            break
        paused = run_waiting(cancel)  # interactive requests first; their time is not ours
        if deadline is not None:
            deadline += paused
        if deadline is not None and time.perf_counter() >= deadline:
            for c in cands:
                if c.finish is None:
                    finish(c, "time")
            break
        if cancel is not None and cancel.is_set():
            for c in cands:
                if c.finish is None:
                    finish(c, "cancelled")
            raise Cancelled(result())
        logits = step(tokens.reshape(n, 1))
        decode_tokens += active
    return result()
