"""``RemoteEngine``: the :class:`~codegen_lsp.engine.kinds.BodyModel` of the ``openai`` backend.

It streams candidates from ``/completions`` and applies the same per-candidate rules as the local
decode loop (``on_line`` checks, the line-repeat guard, the time budget, cancellation): a candidate
that stops is ignored from then on, and a request's connection is dropped as soon as all of its
candidates stopped, so the server stops generating them. The first candidate is greedy, the rest
sampled, in one request with ``n`` where the server honours ``n`` and one request each otherwise.

Prompt conventions and token counts come from the local package named by ``modelPath`` when it is
installed (its manifest and tokenizer only: no ONNX session); otherwise a plain completion prompt
and a conservative estimate of 3 bytes per token."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from ..engine.config import CancelLike, GenerationConfig, OnLine, run_waiting
from ..engine.results import Cancelled, FinishReason, Generation, GenerationResult
from ..engine.stops import RepetitionGuard
from ..modelpkg import (
    Manifest,
    ModelPackage,
    PromptConvention,
    Provenance,
    SpecialTokens,
    load_package,
)
from .client import CompletionStream, Endpoint, EndpointError, api_key_from_env, request_json

log = logging.getLogger(__name__)

DEFAULT_CONTEXT = 2048
"""Context assumed when neither a local package nor the server says (what our packages record)."""
_BYTES_PER_TOKEN = 3
"""Code averages ~3.5-4 bytes per token with BPE vocabularies; 3 over-counts, so prompts fit."""
_POLL_S = 0.05
"""How often the request loop looks at cancel and the time budget while no chunk arrives."""


@dataclass(frozen=True)
class Capabilities:
    """What the server does with a completions request, found by one tiny probe at connect time."""

    n: bool
    """It returns ``n`` choices in one request (vLLM does; llama-cpp-python's server ignores ``n``)."""
    logprobs: bool
    """It returns token log-probabilities (candidate scores for ranking); else every score is 0."""


@dataclass
class _Candidate:
    text: str = ""
    logps: list[float] = field(default_factory=list)
    tokens: int = 0
    finish: FinishReason | None = None
    finished_s: float = 0.0


@dataclass
class _Request:
    first: int
    """Index of its first candidate."""
    count: int
    stream: CompletionStream


def _generic_manifest(model: str, endpoint: Endpoint, context_length: int) -> Manifest:
    """What the prompt builder needs when no local package describes the served model."""
    return Manifest(
        name=model, kind="remote", architecture="remote", tokenizer="", num_layers=0, num_attention_heads=0,
        num_kv_heads=0, head_size=0, hidden_size=0, vocab_size=0, context_length=context_length,
        special_tokens=SpecialTokens(eos=[]), prompt=PromptConvention(end_before_newline=False),
        provenance=Provenance(source=str(endpoint), source_sha256=None, license="unknown",
                              exporter_version="", created=""),
        variants=[], files=[])


class RemoteEngine:
    """Generates through an OpenAI-compatible server. Thread-safe: each call has its own streams."""

    role = "generator"

    def __init__(self, endpoint: Endpoint, model: str, caps: Capabilities, manifest: Manifest,
                 tokenizer: Tokenizer | None) -> None:
        self.endpoint = endpoint
        self.model = model
        self.caps = caps
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.info: dict[str, Any] = {
            "model": model, "provider": "remote", "reason": f"backend openai at {endpoint}", "variant": None,
            "graph": None, "context_length": manifest.context_length, "threads": None, "endpoint": str(endpoint),
            "candidates_via": "n" if caps.n else "parallel requests", "logprobs": caps.logprobs,
        }

    # -- text ----------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return -(-len(text.encode("utf-8")) // _BYTES_PER_TOKEN)

    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise ValueError("the remote backend has no local tokenizer (install the package named by modelPath)")
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def prompt_budget(self, time_budget_s: float | None, share: float = 0.4) -> int | None:
        return None  # the server's prefill speed is not ours to guess; the context length bounds it

    def clear_caches(self) -> None:
        pass  # the server's prefix cache is the server's

    # -- generation ----------------------------------------------------------------------------
    def _body(self, prompt: str, config: GenerationConfig, temperature: float, n: int, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": config.max_new_tokens,
                                "temperature": temperature, "top_p": config.top_p if temperature > 0 else 1.0}
        if n > 1:
            body["n"] = n
        if self.caps.logprobs:
            body["logprobs"] = 1
        if seed is not None and temperature > 0:
            body["seed"] = seed
        return body

    def _plan(self, prompt: str, config: GenerationConfig) -> list[_Request]:
        n = config.num_candidates if config.temperature > 0 else 1
        specs = [(0, 0.0, 1)]  # the first candidate is greedy, as in the local engines
        if n > 1:
            specs += [(1, config.temperature, n - 1)] if self.caps.n else [(i, config.temperature, 1) for i in range(1, n)]
        return [_Request(first, count, CompletionStream(self.endpoint, self._body(
            prompt, config, temp, count, None if config.seed is None else config.seed + first)))
            for first, temp, count in specs]

    def generate(
        self,
        prompt: str,
        config: GenerationConfig | None = None,
        on_line: OnLine | None = None,
        cancel: CancelLike | None = None,
    ) -> GenerationResult:
        """Continue ``prompt`` (see ``BodyModel.generate``). EndpointError when a stream fails."""
        config = config or GenerationConfig()
        t0 = time.perf_counter()
        if cancel is not None and cancel.is_set():
            raise Cancelled(None)
        requests = self._plan(prompt, config)
        cands = [_Candidate() for r in requests for _ in range(r.count)]
        events: queue.Queue[tuple[_Request, dict[str, Any] | EndpointError | None]] = queue.Queue()
        # The greedy request goes first; the sampled ones when it has answered, so that a server
        # that runs one request at a time (llama-cpp-python) writes the best candidate first.
        waiting = list(requests)

        def start(count: int) -> None:
            for req in waiting[:count]:
                threading.Thread(target=_pump, args=(req, events), name="remote-stream", daemon=True).start()
            del waiting[:count]

        start(1)
        guard = RepetitionGuard(config)
        deadline = t0 + config.time_budget_s if config.time_budget_s is not None else None
        ttft = 0.0
        done_streams = 0

        def finish(c: _Candidate, reason: FinishReason, text: str | None = None) -> None:
            c.finish, c.finished_s = reason, time.perf_counter() - t0
            if text is not None:
                c.text = text

        def result() -> GenerationResult:
            now = time.perf_counter()
            gens = [Generation(c.text, [], sum(c.logps) / len(c.logps) if c.logps else 0.0, c.finish or "cancelled",
                               {"finished_s": c.finished_s or now - t0}) for c in cands]
            return GenerationResult(
                generations=gens, prompt_tokens=self.count_tokens(prompt), prefix_cache_hit_tokens=0,
                time_to_first_token_s=ttft, prefill_s=ttft, decode_s=max(0.0, now - t0 - ttft),
                decode_tokens=sum(c.tokens for c in cands), prefilled_tokens=self.count_tokens(prompt))

        def close_all() -> None:
            for r in requests:
                r.stream.close()

        try:
            while any(c.finish is None for c in cands) and done_streams < len(requests):
                paused = run_waiting(cancel)
                if deadline is not None:
                    deadline += paused
                if cancel is not None and cancel.is_set():
                    for c in cands:
                        if c.finish is None:
                            finish(c, "cancelled")
                    close_all()
                    raise Cancelled(result())
                now = time.perf_counter()
                if deadline is not None and now >= deadline:
                    for c in cands:
                        if c.finish is None:
                            finish(c, "time")
                    break
                wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - now))
                try:
                    req, event = events.get(timeout=wait)
                except queue.Empty:
                    continue
                if waiting:
                    start(len(waiting))
                if isinstance(event, EndpointError):
                    raise event
                if event is None:  # the stream ended: whatever is still open ended with it
                    done_streams += 1
                    for c in cands[req.first:req.first + req.count]:
                        if c.finish is None:
                            finish(c, "eos")
                    continue
                for choice in event.get("choices") or []:
                    k = choice.get("index", 0)
                    if not isinstance(k, int) or not 0 <= k < req.count:
                        continue
                    c = cands[req.first + k]
                    if c.finish is not None:
                        continue  # stopped here already; the server may still be sending it
                    piece = choice.get("text") or ""
                    if piece and ttft == 0.0:
                        ttft = time.perf_counter() - t0
                    _take(c, piece, choice.get("logprobs"))
                    if piece and "\n" in piece:
                        cut = guard.cut_after_line(c.text)
                        if cut is not None:
                            finish(c, "repetition", c.text[:cut])
                        elif on_line is not None and not on_line(req.first + k, c.text):
                            finish(c, "stop")
                    if c.finish is None and choice.get("finish_reason"):
                        finish(c, "length" if choice["finish_reason"] == "length" else "eos")
                if all(c.finish is not None for c in cands[req.first:req.first + req.count]):
                    req.stream.close()  # every candidate of this request stopped: the server can stop too
        finally:
            close_all()
        return result()


def _take(c: _Candidate, piece: str, logprobs: Any) -> None:
    c.text += piece
    values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    if isinstance(values, list) and values:
        c.logps.extend(float(v) for v in values if isinstance(v, int | float))
        c.tokens += len(values)
    elif piece:
        c.tokens += 1  # servers stream one token per chunk


def _pump(req: _Request, events: queue.Queue[tuple[_Request, dict[str, Any] | EndpointError | None]]) -> None:
    """Reader thread: the request's chunks into the queue, then None (or the error)."""
    try:
        for chunk in req.stream.events():
            events.put((req, chunk))
    except EndpointError as exc:
        events.put((req, exc))
        return
    events.put((req, None))


# -- connecting ----------------------------------------------------------------------------------
def _served_models(endpoint: Endpoint) -> list[dict[str, Any]]:
    listing = request_json(endpoint, "GET", "/models", timeout=10.0)
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list) or not data:
        raise EndpointError(f"{endpoint}/models lists no model: is this an OpenAI-compatible server?")
    return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


def probe(endpoint: Endpoint, model: str) -> Capabilities:
    """One tiny request (one token, two choices) to learn whether ``n`` and ``logprobs`` work."""
    body = {"model": model, "prompt": "def", "max_tokens": 1, "temperature": 0.7, "n": 2}
    try:
        answer = request_json(endpoint, "POST", "/completions", {**body, "logprobs": 1}, timeout=60.0)
    except EndpointError as exc:
        if "HTTP" not in str(exc):
            raise  # unreachable: trying without logprobs will not help
        answer = request_json(endpoint, "POST", "/completions", body, timeout=60.0)
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices:
        raise EndpointError(f"{endpoint}/completions answered without choices")
    logprobs = choices[0].get("logprobs")
    return Capabilities(n=len(choices) >= 2, logprobs=isinstance(logprobs, dict)
                        and isinstance(logprobs.get("token_logprobs"), list))


def _describe(model_dir: Path | None) -> tuple[Manifest | None, Tokenizer | None]:
    """The local package's manifest and tokenizer, if it is installed (nothing else is loaded)."""
    if model_dir is None:
        return None, None
    try:
        package: ModelPackage = load_package(model_dir)
        return package.manifest, Tokenizer.from_file(str(package.path(package.manifest.tokenizer)))
    except Exception as exc:  # noqa: BLE001 - an unreadable package or tokenizer: estimate instead
        log.info("no local package describes the remote model (%s); using a plain prompt", exc)
        return None, None


def connect(url: str, api_key_env: str | None = None, model: str | None = None,
            model_dir: Path | None = None) -> RemoteEngine:
    """Check the endpoint (list its models, probe one tiny completion) and return an engine for it.
    EndpointError (one line, no key) when it cannot be used."""
    try:
        endpoint = Endpoint.parse(url, api_key_from_env(api_key_env))
    except ValueError as exc:
        raise EndpointError(f"codegenLsp.endpoint {exc}") from None
    served = _served_models(endpoint)
    names = [m["id"] for m in served]
    if model is not None and model not in names:
        raise EndpointError(f"{endpoint} does not serve '{model}' (it serves: {', '.join(names)}); "
                            "fix codegenLsp.remoteModel")
    chosen = model or names[0]
    caps = probe(endpoint, chosen)
    manifest, tokenizer = _describe(model_dir)
    card = next(m for m in served if m["id"] == chosen)
    served_ctx = card.get("max_model_len")  # vLLM says; others do not
    if manifest is None:
        ctx = served_ctx if isinstance(served_ctx, int) and served_ctx > 0 else DEFAULT_CONTEXT
        manifest = _generic_manifest(chosen, endpoint, ctx)
    elif isinstance(served_ctx, int) and served_ctx > 0:
        manifest.context_length = min(manifest.context_length, served_ctx)
    log.info("remote model %s at %s (candidates via %s, logprobs %s)", chosen, endpoint,
             "n" if caps.n else "parallel requests", "yes" if caps.logprobs else "no")
    return RemoteEngine(endpoint, chosen, caps, manifest, tokenizer)
