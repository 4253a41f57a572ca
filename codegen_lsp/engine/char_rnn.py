"""The engine for ``char-rnn`` packages: a stateful LSTM decoded one character at a time.

Graph contract (``models/README.md``): inputs ``input_ids`` [B, T], ``h0``/``c0`` [layers, B, hidden];
outputs ``logits`` [B, T, vocab] and ``hn``/``cn``, the state after the last position, fed back as
``h0``/``c0`` with the next ids. The prompt is run once (batch 1), its state copied to every
candidate, then all candidates step together as one batch. Sampling, the repetition guard, on_line,
time budget and cancellation behave as in :class:`~.generate.Engine`, whose public interface this
class keeps (it subclasses it so callers typed against ``Engine`` take either).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ..modelpkg import IONameMismatch, ModelPackage, NoVariant
from .config import CancelLike, GenerationConfig
from .generate import Engine, OnLine, session_options
from .providers import ProviderChoice, physical_cores, stdout_to_stderr
from .results import Cancelled, FinishReason, Generation, GenerationResult
from .sampling import Sampler
from .stops import RepetitionGuard, token_cycle

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""``max_new_tokens`` is set for subword models (a Python token is ~4 characters); a char-RNN gets
this many characters per token so the same setting allows the same amount of code. The character
cycle guard likewise needs this many times more repeats than the token guard (16 spaces of
indentation are not a loop)."""


class CharRNNEngine(Engine):
    """A loaded char-rnn package ready to generate. One ``generate`` runs at a time."""

    def __init__(self, package: ModelPackage, choice: ProviderChoice, threads: int | None = None,
                 variant: str | None = None) -> None:
        self.package = package
        self.manifest = m = package.manifest
        self.threads = threads or physical_cores()
        self.choice = choice
        v = package.variant(choice.provider) if variant is None else next(
            (x for x in m.variants if x.name == variant), None)
        if v is None:
            raise NoVariant(package.root, f"no variant named '{variant}'")
        self.variant = v
        with stdout_to_stderr():
            self.rnn = ort.InferenceSession(str(package.path(v.graph)), session_options(self.threads),
                                            providers=choice.ort_providers)
        state = m.extra.get("state") or {}
        self.state_in: list[str] = list(state.get("inputs", ["h0", "c0"]))
        self.state_out: list[str] = list(state.get("outputs", ["hn", "cn"]))
        self._check_names()
        self.tokenizer = Tokenizer.from_file(str(package.path(m.tokenizer)))
        self.symbols: list[str] = list(m.extra["alphabet"])
        self._silent = frozenset(i for i, s in enumerate(self.symbols) if s.startswith("<|") and len(s) > 1)
        self.eos_ids = frozenset(m.special_tokens.eos)
        self._lock = threading.RLock()
        self.info: dict[str, Any] = {
            "model": m.name, "provider": self.rnn.get_providers()[0].removesuffix("ExecutionProvider").lower(),
            "reason": choice.reason, "variant": v.name, "graph": "char-rnn", "context_length": m.context_length,
            "threads": self.threads, "chars_per_token": CHARS_PER_TOKEN,
        }
        log.info("char-rnn engine ready: %s", self.info)

    def _check_names(self) -> None:
        """The contract's names (``manifest.extra['state']`` for the state tensors), checked here
        because ``modelpkg.check_io_names`` describes causal-LM graphs."""
        io = self.variant.io
        want_in = {io.input_ids, *self.state_in}
        want_out = {io.logits, *self.state_out}
        have_in = {i.name for i in self.rnn.get_inputs()}
        have_out = {o.name for o in self.rnn.get_outputs()}
        if not want_in <= have_in or not want_out <= have_out or len(self.state_in) != len(self.state_out):
            raise IONameMismatch(
                self.package.root,
                f"variant '{self.variant.name}': char-rnn graph has inputs {sorted(have_in)} outputs "
                f"{sorted(have_out)}, manifest wants {sorted(want_in)} / {sorted(want_out)}",
            )

    # -- model ---------------------------------------------------------------------------------
    def _run(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Last-position logits [B, V] and the new state for ids [B, T]."""
        feeds = {self.variant.io.input_ids: ids, **dict(zip(self.state_in, state, strict=True))}
        outs = self.rnn.run([self.variant.io.logits, *self.state_out], feeds)
        return np.asarray(outs[0][:, -1], dtype=np.float32), list(outs[1:])

    def _text(self, ids: list[int]) -> str:
        return "".join(self.symbols[i] for i in ids if i not in self._silent)

    # -- generation ----------------------------------------------------------------------------
    def _generate(
        self, prompt: str, config: GenerationConfig, on_line: OnLine | None, cancel: CancelLike | None
    ) -> GenerationResult:
        t0 = time.perf_counter()
        m = self.manifest
        max_new = max(1, min(config.max_new_tokens * CHARS_PER_TOKEN, m.context_length - 1))
        ids = self.encode(prompt)
        trimmed = max(0, len(ids) - (m.context_length - max_new))
        ids = ids[trimmed:] or [m.special_tokens.eos[0]]
        if cancel is not None and cancel.is_set():
            raise Cancelled(None)
        n = config.num_candidates if config.temperature > 0 else 1  # greedy candidates would be identical
        zeros = np.zeros((m.num_layers, 1, m.hidden_size), np.float32)
        logits, state = self._run(np.asarray([ids], np.int64), [zeros] * len(self.state_in))
        state = [np.repeat(s, n, axis=1) for s in state]
        logits = np.repeat(logits, n, axis=0)
        t_prefill = time.perf_counter()

        sampler = Sampler(config, n)
        guard = RepetitionGuard(config)
        cycle_repeats = config.max_token_cycle_repeats * CHARS_PER_TOKEN
        newline = self.symbols.index("\n") if "\n" in self.symbols else -1
        out: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        finish: list[FinishReason | None] = [None] * n
        texts: list[str | None] = [None] * n
        ended = [0.0] * n
        ttft = 0.0
        decode_tokens = 0
        deadline = t0 + config.time_budget_s if config.time_budget_s is not None else None

        def end(i: int, reason: FinishReason, text: str | None = None) -> None:
            finish[i], texts[i], ended[i] = reason, text, time.perf_counter() - t0

        def result() -> GenerationResult:
            now = time.perf_counter()
            gens = [Generation(t if (t := texts[i]) is not None else self._text(out[i]), list(out[i]),
                               float(np.mean(logps[i])) if logps[i] else 0.0, finish[i] or "cancelled",
                               {"finished_s": ended[i] or now - t0}) for i in range(n)]
            return GenerationResult(generations=gens, prompt_tokens=len(ids), prefix_cache_hit_tokens=0,
                                    time_to_first_token_s=ttft, prefill_s=t_prefill - t0, decode_s=now - t_prefill,
                                    decode_tokens=decode_tokens, prefilled_tokens=len(ids), trimmed_tokens=trimmed)

        while True:
            tokens, lp = sampler.sample(logits, out)
            ttft = ttft or time.perf_counter() - t0
            for i in range(n):
                if finish[i] is not None:
                    continue
                tok = int(tokens[i])
                if tok in self.eos_ids:
                    end(i, "eos")
                    continue
                out[i].append(tok)
                logps[i].append(float(lp[i]))
                sampler.observe(i, out[i])
                if token_cycle(out[i], cycle_repeats):
                    end(i, "repetition")
                elif tok == newline:
                    text = self._text(out[i])
                    cut = guard.cut_after_line(text)
                    if cut is not None:
                        end(i, "repetition", text[:cut])
                    elif on_line is not None and not on_line(i, text):
                        end(i, "stop", text)
                if finish[i] is None and len(out[i]) >= max_new:
                    end(i, "length")
            active = sum(f is None for f in finish)
            if active == 0:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                for i in range(n):
                    if finish[i] is None:
                        end(i, "time")
                break
            if cancel is not None and cancel.is_set():
                for i in range(n):
                    if finish[i] is None:
                        end(i, "cancelled")
                raise Cancelled(result())
            # Finished rows keep stepping (the batch stays rectangular); an LSTM step is cheap.
            logits, state = self._run(tokens.reshape(n, 1), state)
            decode_tokens += active
        return result()
