"""The ``causal-lm`` engine: prefill + KV-cached decode of N candidates with a prefix cache (the
decode loop itself is shared with the other autoregressive kinds: ``decode.py``). The server runs
``generate`` in a worker thread."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ..modelpkg import IONameMismatch, Manifest, ManifestInvalid, ModelPackage, Variant, check_io_names
from .config import CancelLike, GenerationConfig, OnLine, run_waiting
from .decode import Prefilled, TextOf, decode
from .prefix_cache import PrefixCache
from .providers import ProviderChoice, physical_cores, stdout_to_stderr
from .results import Cancelled, Generation, GenerationResult
from .session import DecoderSession, KVDims
from .stops import Detokenizer

if TYPE_CHECKING:
    from .kinds import EngineOptions

log = logging.getLogger(__name__)


def session_options(threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Requests differ in length and a grown arena keeps its peak; measured on SmolLM2-135M int8: arena
    # off peaks 6 MiB lower, speed the same within noise. CODEGEN_LSP_ORT_ARENA=1 turns it back on.
    opts.enable_cpu_mem_arena = os.environ.get("CODEGEN_LSP_ORT_ARENA", "0") == "1"
    return opts


GraphNames = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
"""Per graph: the inputs it must take (exactly) and the outputs it must have (at least)."""


def open_graphs(package: ModelPackage, variant: Variant, graphs: tuple[str, ...], threads: int,
                choice: ProviderChoice, names: GraphNames) -> dict[str, ort.InferenceSession]:
    """One session per named graph of a multi-graph variant (the research kinds), its I/O names checked
    against ``names``: ManifestInvalid when the variant lacks a graph, IONameMismatch when a graph's
    names differ."""
    missing = [g for g in graphs if g not in variant.graphs]
    if missing:
        raise ManifestInvalid(package.root, f"variant '{variant.name}' of kind '{package.manifest.kind}' needs "
                                            f"graphs {list(graphs)}, missing {missing} (has {sorted(variant.graphs)})")
    opts = session_options(threads)
    with stdout_to_stderr():
        sessions = {g: ort.InferenceSession(str(package.path(variant.graphs[g])), opts, providers=choice.ort_providers)
                    for g in graphs}
    for g, sess in sessions.items():
        want_in, want_out = names[g]
        have_in = [i.name for i in sess.get_inputs()]
        have_out = [o.name for o in sess.get_outputs()]
        if set(want_in) != set(have_in) or not set(want_out) <= set(have_out):
            raise IONameMismatch(package.root, f"variant '{variant.name}' graph '{g}' has inputs {have_in} outputs "
                                               f"{have_out}, the package wants {list(want_in)} -> {list(want_out)}")
    return sessions


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        return None


_TRIM = _malloc_trim()


def release_heap() -> None:
    """Give freed heap memory back to the OS (5-8 ms; the server runs it in its worker after each
    request, once the answer is on its way). Each request allocates and frees KV
    buffers of a different size (tens to hundreds of MB); glibc then raises its mmap threshold and
    keeps the freed blocks in the worker thread's arena, so a server's RSS crept up by ~260 MiB over
    60 requests (measured: 866 -> 1,125 MiB; with the trim it stayed at 830-906 MiB)."""
    if _TRIM is not None:
        _TRIM(0)


PREFILL_CHUNK = 256
"""Prompt tokens per prefill call: cancel and the time budget are checked between chunks."""


class Engine:
    """A loaded model ready to generate. One ``generate`` runs at a time per thread (an internal
    re-entrant lock: a generation may run another one on its own thread at a step boundary, see
    :func:`run_waiting`; each call's KV state is its own)."""

    prefill_tok_s: float | None = None
    """Measured prefill speed (moving average over requests), for sizing interactive prompts."""

    def _observe_prefill(self, tokens: int, seconds: float) -> None:
        if tokens < 32 or seconds <= 0:
            return  # a short or cached prefill says little about throughput
        rate = tokens / seconds
        self.prefill_tok_s = rate if self.prefill_tok_s is None else 0.7 * self.prefill_tok_s + 0.3 * rate

    def prompt_budget(self, time_budget_s: float | None, share: float = 0.4) -> int | None:
        """Most prompt tokens that prefill within ``share`` of the time budget at the measured speed
        (None until measured, or without a budget). The prefix cache makes most re-requests cheaper."""
        if time_budget_s is None or self.prefill_tok_s is None:
            return None
        return max(128, int(self.prefill_tok_s * time_budget_s * share))

    def __init__(self, package: ModelPackage, choice: ProviderChoice, options: EngineOptions) -> None:
        self.package = package
        self._variant_name = options.variant
        self.manifest: Manifest = package.manifest
        self.threads = options.threads or physical_cores()
        self.session, choice = self._open_session(choice)
        self.choice = choice
        m = self.manifest
        self.tokenizer = Tokenizer.from_file(str(package.path(m.tokenizer)))
        self._check_prompt_markers()
        self.eos_ids = frozenset(m.special_tokens.eos)
        self.prefix_cache = PrefixCache(options.prefix_cache_entries, max_bytes=options.prefix_cache_bytes)
        self._lock = threading.RLock()
        self.info: dict[str, Any] = {
            "model": m.name,
            "provider": self.session.device,
            "reason": choice.reason,
            "variant": self.variant.name,
            "graph": self.session.style,
            "context_length": m.context_length,
            "threads": self.threads,
        }
        log.debug("engine ready: %s", self.info)

    def _open_session(self, choice: ProviderChoice) -> tuple[DecoderSession, ProviderChoice]:
        variant = self.package.choose_variant(choice.provider, self._variant_name)
        graph = self.package.path(variant.graph)
        with stdout_to_stderr():  # a CUDA provider that fails to load may print
            session = DecoderSession(graph, KVDims.of(self.manifest), variant.io, choice.ort_providers,
                                     session_options(self.threads))
        if choice.provider == "cuda" and session.device != "cuda":
            reason = "CUDA provider failed to initialise (see stderr); using CPU"
            log.warning(reason)
            return self._open_session(ProviderChoice("cpu", reason))
        check_io_names(self.package.root, self.manifest, variant, session.input_names, session.output_names)
        log.info("provider %s (%s), variant %s, %s graph", session.device, choice.reason, variant.name, session.style)
        self.variant = variant
        return session, choice

    def _check_prompt_markers(self) -> None:
        """A FIM package must name markers its tokenizer maps to one token each (refused at load,
        not discovered as garbage output)."""
        p = self.manifest.prompt
        fim = "template 'fim' needs all three markers"
        needed = [("fim_prefix", fim), ("fim_suffix", fim), ("fim_middle", fim)]
        for field_name, why in [*(needed if p.template == "fim" else []), *([("file_sep", "")] if p.file_sep else [])]:
            marker = getattr(p, field_name)
            ids = self.tokenizer.encode(marker, add_special_tokens=False).ids if marker else []
            if len(ids) != 1:
                raise ManifestInvalid(self.package.root, f"prompt.{field_name} {marker!r} is not one token of this "
                                      f"tokenizer{f' ({why})' if why else ''}")

    # -- text ----------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        bos = self.manifest.special_tokens.bos
        if self.manifest.prompt.add_bos and bos is not None:
            ids = [bos, *ids]
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def clear_caches(self) -> None:
        self.prefix_cache.clear()

    # -- generation ----------------------------------------------------------------------------
    def generate(
        self,
        prompt: str,
        config: GenerationConfig | None = None,
        on_line: OnLine | None = None,
        cancel: CancelLike | None = None,
    ) -> GenerationResult:
        """Continue ``prompt`` with ``config.num_candidates`` candidates. Raises :class:`Cancelled`
        (with the partial result) when ``cancel`` is set; it is checked before every model step."""
        config = config or GenerationConfig()
        with self._lock:
            return self._generate(prompt, config, on_line, cancel)

    def _generate(
        self, prompt: str, config: GenerationConfig, on_line: OnLine | None, cancel: CancelLike | None
    ) -> GenerationResult:
        t0 = time.perf_counter()
        ctx = self.manifest.context_length
        max_new = max(1, min(config.max_new_tokens, ctx - 1))
        ids = self.encode(prompt)
        trimmed = max(0, len(ids) - (ctx - max_new))
        ids = ids[trimmed:]
        if not ids:  # the model needs one token to produce logits from
            bos = self.manifest.special_tokens.bos
            ids = [bos if bos is not None else self.manifest.special_tokens.eos[0]]
        if cancel is not None and cancel.is_set():
            raise Cancelled(None)

        hit = self.prefix_cache.lookup(ids)
        start = hit.length if hit else 0
        state = self.session.new_state(1, len(ids) + max_new, hit.kv if hit else None)
        deadline = t0 + config.time_budget_s if config.time_budget_s is not None else None
        # Prefill in chunks so that a cancel (or the time budget) is honoured within one chunk.
        logits = None
        waited = 0.0  # seconds spent running other requests between chunks
        for pos in range(start, len(ids), PREFILL_CHUNK):
            paused = run_waiting(cancel) if pos > start else 0.0
            waited += paused
            if deadline is not None:
                deadline += paused
            if pos > start and cancel is not None and cancel.is_set():
                raise Cancelled(None)
            if pos > start and deadline is not None and time.perf_counter() >= deadline:
                spent = time.perf_counter() - t0  # the budget ran out before the first token
                return GenerationResult(
                    generations=[Generation("", [], 0.0, "time", {"finished_s": spent})], prompt_tokens=len(ids),
                    prefix_cache_hit_tokens=start, time_to_first_token_s=0.0, prefill_s=spent, decode_s=0.0,
                    decode_tokens=0, prefilled_tokens=pos - start, trimmed_tokens=trimmed)
            logits = self.session.step(state, np.asarray([ids[pos:pos + PREFILL_CHUNK]], dtype=np.int64))
        assert logits is not None
        self._observe_prefill(len(ids) - start, time.perf_counter() - t0 - waited)
        # Greedy decoding makes every candidate the same: decode it once.
        n = config.num_candidates if config.temperature > 0 else 1
        if n > 1:
            state = self.session.replicate(state, n)
            logits = np.repeat(logits, n, axis=0)
        detok = Detokenizer(self.tokenizer, ids)
        at = Prefilled(len(ids), start, trimmed, t0, time.perf_counter())

        def store_prefix() -> None:  # before anything can cancel
            self.prefix_cache.store(ids, self.session.to_host(state, len(ids)))

        return decode(
            lambda tokens: self.session.step(state, tokens), logits, config,
            TextOf(lambda c, final: detok.text(c, final=final), detok.has_newline), self.eos_ids, max_new, at,
            deadline, on_line, cancel, on_first_token=store_prefix)
