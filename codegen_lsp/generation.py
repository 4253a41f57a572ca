"""Site -> grammar-checked bodies: the one place where analysis meets the engine.

The CLI and the language server both call :class:`BodyGenerator`; neither talks to the engine or
the grammar check directly. No LSP types here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .analysis.document import Document
from .analysis.grammar import (
    Candidate,
    IncrementalBodyCheck,
    continuation_complete,
    normalize_continuation,
    rank_with_refusals,
)
from .analysis.prompt import build_prompt, build_suffix
from .analysis.sites import FunctionSite
from .config import Settings
from .engine import Cancelled, Engine, GenerationConfig, load_engine
from .modelpkg import ModelPackageError, resolve_model_dir

log = logging.getLogger(__name__)

_CACHE_ENTRIES = 64


@dataclass
class SiteResult:
    """What one site produced: ranked valid bodies plus how it went."""

    site: FunctionSite
    candidates: list[Candidate]
    doc: Document | None = None
    """The document (snapshot) the bodies were made for: edits must be computed against it."""
    raw: list[tuple[str, float, str]] = field(default_factory=list)
    """(continuation, score, finish_reason) as the engine returned them, for --json and debugging."""
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    seconds: float = 0.0
    first_token_s: float = 0.0
    from_cache: bool = False
    refused: list[str] = field(default_factory=list)
    """Why the grammar check refused each candidate that gave no body (in candidate order)."""

    @property
    def unfilled_reason(self) -> str | None:
        """None when there is a body; else one line saying why not, for the user."""
        if self.candidates:
            return None
        return no_body_message(self.site.qualname, self.refused)


def no_body_message(name: str, refused: list[str]) -> str:
    """``make_score: no valid body — 3 candidates refused: line 2: invalid syntax (x2); empty body``"""
    if not refused:
        return f"{name}: no valid body — the model wrote nothing"
    counts: dict[str, int] = {}
    for reason in refused:
        counts[reason] = counts.get(reason, 0) + 1
    reasons = "; ".join(r if n == 1 else f"{r} (x{n})" for r, n in counts.items())
    plural = "candidate" if len(refused) == 1 else "candidates"
    return f"{name}: no valid body — {len(refused)} {plural} refused: {reasons}"


def typed_prefix(doc: Document, site: FunctionSite) -> str:
    """The text already typed on a live site's body line (without its line break), or ''."""
    if site.kind != "live":
        return ""
    line = doc.line_bytes(site.edit_end.line).decode("utf-8", errors="replace").rstrip("\r\n")
    return line if line.strip() else ""


class ModelUnavailable(Exception):
    """The model could not be loaded; ``message`` says why and how to fix it."""


class BodyGenerator:
    """Owns the engine (loaded lazily, once) and a small result cache per (document version, site)."""

    def __init__(self, settings: Settings, on_status: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._load_error: str | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, int, str, int], SiteResult] = OrderedDict()
        self._on_status = on_status or (lambda state, msg: None)

    # -- model ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine | None:
        return self._engine

    @property
    def load_error(self) -> str | None:
        return self._load_error

    def model_dir(self) -> Path:
        return resolve_model_dir(self.settings.model_path)

    def ensure_engine(self) -> Engine:
        """Load the model once; later calls return it or re-raise the same clear error."""
        with self._lock:
            if self._engine is not None:
                return self._engine
            if self._load_error is not None:
                raise ModelUnavailable(self._load_error)
            path = self.model_dir()
            self._on_status("loading", f"loading model from {path}")
            t0 = time.perf_counter()
            try:
                self._engine = load_engine(path, device=self.settings.device, variant=self.settings.variant)
            except ModelPackageError as exc:
                self._load_error = f"{exc}; or point codegenLsp.modelPath at another package"
            except Exception as exc:  # a broken graph surfaces as an ORT error: report, never crash
                self._load_error = f"model package {path} could not be loaded: {type(exc).__name__}: {exc}"
            if self._load_error is not None:
                self._on_status("error", self._load_error)
                raise ModelUnavailable(self._load_error)
            assert self._engine is not None
            info = self._engine.info
            log.info("model %s loaded in %.2fs (%s, variant %s)", info.get("model"), time.perf_counter() - t0,
                     info.get("provider"), info.get("variant"))
            self._on_status("ready", f"{info.get('model')} on {info.get('provider')}")
            return self._engine

    def reset(self, settings: Settings) -> None:
        """New settings: drop the engine if the model or device changed, and the result cache."""
        with self._lock:
            if (settings.model_path, settings.device, settings.variant) != (
                    self.settings.model_path, self.settings.device, self.settings.variant):
                self._engine = None
                self._load_error = None
            self.settings = settings
            self._cache.clear()

    # -- generation ----------------------------------------------------------------------------
    def generation_config(self, n: int | None = None) -> GenerationConfig:
        s = self.settings
        return GenerationConfig(
            max_new_tokens=s.max_tokens,
            num_candidates=n or s.candidates,
            temperature=s.temperature,
            top_p=s.top_p,
            seed=0,
            time_budget_s=s.time_budget_ms / 1000.0,
        )

    def bodies(
        self,
        doc: Document,
        site: FunctionSite,
        key: str = "",
        cancel: threading.Event | None = None,
        n: int | None = None,
    ) -> SiteResult:
        """Generate, grammar-check and rank bodies for ``site``. Raises ModelUnavailable or Cancelled."""
        ckey = (key, doc.version, site.qualname, site.replace_start[0])
        cached = self._cache.get(ckey)
        if cached is not None and key:
            self._cache.move_to_end(ckey)
            return SiteResult(**{**cached.__dict__, "from_cache": True})
        engine = self.ensure_engine()
        manifest = engine.manifest
        conv = manifest.prompt
        budget = max(64, manifest.context_length - self.settings.max_tokens - 8)
        suffix = ""
        if conv.template == "fim":
            suffix = build_suffix(doc, site, engine.count_tokens, min(conv.suffix_tokens, budget // 4))
            budget = max(64, budget - engine.count_tokens(suffix) - 3)  # 3: the FIM markers
        prompt = build_prompt(
            doc,
            site,
            count_tokens=engine.count_tokens,
            budget=budget,
            end_before_newline=conv.end_before_newline,
        )
        checker = IncrementalBodyCheck(doc, site)
        # A live site's line may already hold the start of the body (`return (x +`): the model
        # continues it rather than starting over, and every candidate keeps what was typed.
        typed = typed_prefix(doc, site)
        lead = ("" if prompt.text.endswith("\n") else "\n") + typed if typed else ""

        def on_line(_index: int, text: str) -> bool:
            # False stops this candidate: it is complete (dedent) or can no longer parse.
            text = lead + text
            if continuation_complete(site, text):
                return False
            return checker.viable(text)

        t0 = time.perf_counter()
        text = prompt.text + lead
        if conv.template == "fim":
            text = f"{conv.fim_prefix}{text}{conv.fim_suffix}{suffix}{conv.fim_middle}"
        result = engine.generate(text, self.generation_config(n), on_line=on_line, cancel=cancel)
        raw: list[tuple[str, float, str]] = [
            (lead + g.text, g.score, str(g.finish_reason)) for g in result.generations
        ]
        pairs = [(normalize_continuation(site, text), score) for text, score, _ in raw]
        ranked, refused = rank_with_refusals(doc, site, pairs)
        out = SiteResult(
            site=site,
            candidates=ranked,
            doc=doc,
            raw=raw,
            prompt_tokens=result.prompt_tokens,
            cached_prompt_tokens=result.prefix_cache_hit_tokens,
            seconds=time.perf_counter() - t0,
            first_token_s=result.time_to_first_token_s,
            refused=refused,
        )
        if key:
            self._cache[ckey] = out
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return out


__all__ = ["BodyGenerator", "Cancelled", "ModelUnavailable", "SiteResult", "no_body_message"]
