"""The engine for ``char-rnn`` packages: a stateful LSTM decoded one character at a time.

Graph contract (``models/README.md``): inputs ``input_ids`` [B, T], ``h0``/``c0`` [layers, B, hidden];
outputs ``logits`` [B, T, vocab] and ``hn``/``cn``, the state after the last position, fed back as
``h0``/``c0`` with the next ids. The prompt is run once (batch 1), its state copied to every
candidate, then all candidates step together as one batch through the decode loop the causal LM
uses (``decode.py``): sampling, the repetition guard, on_line, time budget and cancellation are the
same code.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ..modelpkg import IONameMismatch, ModelPackage
from .config import CancelLike, GenerationConfig, OnLine
from .decode import Prefilled, TextOf, decode
from .generate import session_options
from .providers import ProviderChoice, physical_cores, stdout_to_stderr
from .results import Cancelled, GenerationResult

if TYPE_CHECKING:
    from .kinds import EngineOptions

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
"""``max_new_tokens`` is set for subword models (a Python token is ~4 characters); a char-RNN gets
this many characters per token so the same setting allows the same amount of code. The character
cycle guard likewise needs this many times more repeats than the token guard (16 spaces of
indentation are not a loop)."""


class CharRNNEngine:
    """A loaded char-rnn package ready to generate. One ``generate`` runs at a time per thread."""

    def __init__(self, package: ModelPackage, choice: ProviderChoice, options: EngineOptions) -> None:
        variant = options.variant
        self.package = package
        self.manifest = m = package.manifest
        self.threads = options.threads or physical_cores()
        self.choice = choice
        self.variant = v = package.choose_variant(choice.provider, variant)
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

    # -- text ----------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def prompt_budget(self, time_budget_s: float | None, share: float = 0.4) -> int | None:
        return None  # reading a prompt is one cheap LSTM pass; the context length bounds it

    def clear_caches(self) -> None:
        pass  # no prompt cache

    # -- generation ----------------------------------------------------------------------------
    def generate(
        self,
        prompt: str,
        config: GenerationConfig | None = None,
        on_line: OnLine | None = None,
        cancel: CancelLike | None = None,
    ) -> GenerationResult:
        """Continue ``prompt`` (see :class:`~.kinds.BodyModel`); lengths count characters,
        ``CHARS_PER_TOKEN`` per requested token."""
        config = config or GenerationConfig()
        with self._lock:
            return self._generate(prompt, config, on_line, cancel)

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
        states = [[np.repeat(s, n, axis=1) for s in state]]
        logits = np.repeat(logits, n, axis=0)
        deadline = t0 + config.time_budget_s if config.time_budget_s is not None else None
        newline = self.symbols.index("\n") if "\n" in self.symbols else -1

        def step(tokens: np.ndarray) -> np.ndarray:
            # Finished rows keep stepping (the batch stays rectangular); an LSTM step is cheap.
            out, states[0] = self._run(tokens, states[0])
            return out

        return decode(step, logits, config, TextOf(lambda c, final: self._text(c), lambda tok: tok == newline),
                      self.eos_ids, max_new, Prefilled(len(ids), 0, trimmed, t0, time.perf_counter()), deadline,
                      on_line, cancel, cycle_repeats=config.max_token_cycle_repeats * CHARS_PER_TOKEN)
