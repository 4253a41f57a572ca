"""Choosing the next token of every candidate from last-position logits (numpy, no framework)."""

from __future__ import annotations

import numpy as np

from .config import GenerationConfig

_NUCLEUS_PROBE = 64
"""Top-p first looks at this many best tokens; a full sort happens only when they don't reach p."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax along the last axis (any leading shape; a 1-D vector too)."""
    m = logits.max(axis=-1, keepdims=True)
    shifted = logits - m
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Sampler:
    """Greedy or seeded temperature / top-k / top-p sampling with token-level repetition controls.
    Row 0 (the first candidate) is always greedy, so the best-guess body is among the candidates
    whatever the temperature."""

    def __init__(self, config: GenerationConfig, batch: int) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        n = config.no_repeat_ngram_size
        self._ngrams: list[dict[tuple[int, ...], set[int]]] = [{} for _ in range(batch)] if n > 0 else []

    def observe(self, row: int, history: list[int]) -> None:
        """Record the n-gram that ``history``'s newest token completed (for no_repeat_ngram_size)."""
        n = self.config.no_repeat_ngram_size
        if n <= 0 or len(history) < n:
            return
        key = tuple(history[-n:-1])
        self._ngrams[row].setdefault(key, set()).add(history[-1])

    def _adjust(self, logits: np.ndarray, histories: list[list[int]]) -> np.ndarray:
        cfg = self.config
        n = cfg.no_repeat_ngram_size
        if cfg.repetition_penalty == 1.0 and n <= 0:
            return logits
        logits = logits.copy()
        for row, hist in enumerate(histories):
            if cfg.repetition_penalty != 1.0 and hist:
                seen = np.unique(np.asarray(hist, dtype=np.int64))
                vals = logits[row, seen]
                logits[row, seen] = np.where(vals > 0, vals / cfg.repetition_penalty, vals * cfg.repetition_penalty)
            if n > 0 and len(hist) >= n - 1:
                banned = self._ngrams[row].get(tuple(hist[len(hist) - n + 1 :]) if n > 1 else ())
                if banned:
                    logits[row, list(banned)] = -np.inf
        return logits

    def sample(self, logits: np.ndarray, histories: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Next token per row ([B] int64) and its log-probability under the unadjusted model."""
        adjusted = self._adjust(logits, histories)
        if self.config.temperature == 0.0:
            tokens = adjusted.argmax(axis=-1).astype(np.int64)
        else:  # the first candidate is always the greedy one; the others are sampled
            tokens = np.array([int(row.argmax()) if i == 0 else self._sample_row(row)
                               for i, row in enumerate(adjusted)], dtype=np.int64)
        # log p(token) = logit - logsumexp(logits): one pass over the vocabulary, no [B, V] temporaries
        # beyond the exp (this runs every step).
        m = logits.max(axis=-1)
        lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=-1))
        return tokens, logits[np.arange(len(tokens)), tokens] - lse

    def _sample_row(self, logits: np.ndarray) -> int:
        cfg = self.config
        scaled = logits.astype(np.float64) / cfg.temperature
        vocab = scaled.shape[0]
        m = scaled.max()
        weights = np.exp(scaled - m)
        k = cfg.top_k if 0 < cfg.top_k < vocab else vocab
        if k == vocab and cfg.top_p >= 1.0:
            cand, probs = None, weights / weights.sum()
        else:
            z = weights.sum()  # top-p is measured against the whole vocabulary
            probe = k if k < vocab else min(vocab, _NUCLEUS_PROBE)
            cand = np.argpartition(-scaled, probe - 1)[:probe] if probe < vocab else np.arange(vocab)
            cand = cand[np.argsort(-scaled[cand], kind="stable")]
            probs = weights[cand] / z
            if cfg.top_p < 1.0:
                cum = np.cumsum(probs)
                if cum[-1] < cfg.top_p and probe < k:
                    # The probed tokens don't reach p: exact full sort.
                    cand = np.argsort(-scaled, kind="stable")[:k]
                    probs = weights[cand] / z
                    cum = np.cumsum(probs)
                keep = min(len(cand), int(np.searchsorted(cum, cfg.top_p)) + 1)
                cand, probs = cand[:keep], probs[:keep]
            probs = probs / probs.sum()
        idx = int(np.searchsorted(np.cumsum(probs), self.rng.random(), side="right"))
        idx = min(idx, len(probs) - 1)
        return idx if cand is None else int(cand[idx])
