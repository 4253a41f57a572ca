"""Site -> grammar-checked bodies: the one place where analysis meets the engine.

The CLI and the language server both call :class:`BodyGenerator`; neither talks to the engine or
the grammar check directly. No LSP types here.
"""

from __future__ import annotations

import dataclasses
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
from .engine import BodyModel, Cancelled, GenerationConfig, load_engine
from .modelpkg import MANIFEST_FILE, ModelPackageError, resolve_model_dir
from .remote.client import EndpointError
from .workspace.context import Workspace

log = logging.getLogger(__name__)

_CACHE_ENTRIES = 64
REMOTE_RETRY_S = 10.0
"""A failed connect to a remote endpoint is remembered this long (requests answer at once), then retried."""


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
    context: list[str] = field(default_factory=list)
    """Workspace context in the prompt: ``definition:path::name``, ``retrieval:...``, ``recent:...``."""

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


def _manifest_stamp(path: Path) -> tuple[float, int] | None:
    """(mtime, size) of a package's manifest, or None: a change after a failed load means retry."""
    try:
        st = (path / MANIFEST_FILE).stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


class BodyGenerator:
    """Owns the engine (loaded lazily, once) and a small result cache per (document version, site)."""

    def __init__(self, settings: Settings, on_status: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self._engine: BodyModel | None = None
        self._load_error: str | None = None
        self._error_stamp: tuple[float, int] | None = None
        """The package's manifest (mtime, size) when the load failed: a change means retry."""
        self._error_at = 0.0
        """When the last load failed (monotonic): a remote endpoint is tried again after REMOTE_RETRY_S."""
        self._epoch = 0
        """Bumped by every reset that changes the model: a load started before it is discarded."""
        self._state = threading.Lock()  # short critical sections only: the event loop may take it
        self._loading = threading.Lock()  # held for a whole load, by worker threads only
        self._cache: OrderedDict[tuple[str, int, str, int], SiteResult] = OrderedDict()
        self._on_status = on_status or (lambda state, msg: None)
        self.workspace: Workspace | None = None
        """Where workspace context comes from (set by the server or the CLI); None: none."""

    # -- model ---------------------------------------------------------------------------------
    @property
    def engine(self) -> BodyModel | None:
        return self._engine

    @property
    def load_error(self) -> str | None:
        return self._load_error

    def model_dir(self) -> Path:
        return resolve_model_dir(self.settings.model_path)

    def ensure_engine(self) -> BodyModel:
        """The loaded engine, loading it first if needed (in the calling thread: never call this on
        the event loop). A failed load is remembered and re-raised with the same message until the
        package on disk changes (e.g. ``make model`` finished) or the settings change."""
        with self._loading:
            while True:
                with self._state:
                    if self._engine is not None:
                        return self._engine
                    settings, epoch = self.settings, self._epoch
                    path = resolve_model_dir(settings.model_path)
                    if self._load_error is not None and _manifest_stamp(path) == self._error_stamp and not (
                            settings.backend == "openai" and time.monotonic() - self._error_at > REMOTE_RETRY_S):
                        raise ModelUnavailable(self._load_error)
                engine, error = self._load(path, settings)
                with self._state:
                    if epoch != self._epoch:
                        continue  # the settings changed while loading: load what they name now
                    self._engine, self._load_error = engine, error
                    self._error_stamp = _manifest_stamp(path) if error else None
                    self._error_at = time.monotonic()
                if error is not None:
                    self._on_status("error", error)
                    raise ModelUnavailable(error)
                assert engine is not None
                where = engine.info.get("endpoint") or engine.info.get("provider")
                self._on_status("ready", f"{engine.info.get('model')} on {where}{engine.info.get('fallback', '')}")
                return engine

    def _load(self, path: Path, settings: Settings) -> tuple[BodyModel | None, str | None]:
        if settings.backend == "openai":
            return self._load_remote(path, settings)
        self._on_status("loading", f"loading model from {path}")
        t0 = time.perf_counter()
        try:
            engine = load_engine(path, device=settings.device, variant=settings.variant,
                                 prefix_cache_bytes=settings.prefix_cache_mb << 20, steps=settings.steps or None)
        except ModelPackageError as exc:
            return None, f"{exc}; or point codegenLsp.modelPath at another package"
        except ValueError as exc:  # a setting the package cannot take (e.g. more steps than it has)
            return None, f"model package {path}: {exc}"
        except Exception as exc:  # a broken graph surfaces as an ORT error: report, never crash
            return None, f"model package {path} could not be loaded: {type(exc).__name__}: {exc}"
        info = engine.info
        log.info("model %s loaded in %.2fs (%s, variant %s)", info.get("model"), time.perf_counter() - t0,
                 info.get("provider"), info.get("variant"))
        return engine, None

    def _load_remote(self, path: Path, settings: Settings) -> tuple[BodyModel | None, str | None]:
        """Connect to the endpoint; if it cannot be used, the local package when allowed and installed."""
        from .remote.engine import connect

        assert settings.endpoint is not None  # validated(): backend openai needs an endpoint
        self._on_status("loading", "connecting to the remote endpoint")
        try:
            return connect(settings.endpoint, settings.api_key_env, settings.remote_model, path), None
        except EndpointError as exc:
            if not (settings.local_fallback and _manifest_stamp(path) is not None):
                return None, f"remote backend: {exc}"
            log.warning("remote backend: %s; using the local model %s instead", exc, path)
            engine, error = self._load(path, dataclasses.replace(settings, backend="local"))
            if engine is None:
                return None, f"remote backend: {exc}; local fallback failed: {error}"
            engine.info["fallback"] = " (remote endpoint unreachable: local fallback)"
            return engine, None

    def _drop_engine(self, engine: BodyModel) -> None:
        """Forget ``engine`` (if still the current one) so that the next request loads again."""
        with self._state:
            if self._engine is engine:
                self._engine = None

    def reset(self, settings: Settings, reload: bool = False) -> None:
        """New settings: drop the engine if the model, device or variant changed (or ``reload``), and
        the result cache. Never waits for a load in progress (it is discarded when it ends)."""
        with self._state:
            if reload or settings.engine_key != self.settings.engine_key:
                self._engine = None
                self._load_error = None
                self._epoch += 1
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
        path: Path | None = None,
    ) -> SiteResult:
        """Generate, grammar-check and rank bodies for ``site`` (``path``: the document's file, for
        workspace context). Raises ModelUnavailable or Cancelled."""
        ckey = (key, doc.version, site.qualname, site.replace_start[0])
        cached = self._cache.get(ckey)
        if cached is not None and key:
            self._cache.move_to_end(ckey)
            return SiteResult(**{**cached.__dict__, "from_cache": True})
        engine = self.ensure_engine()
        manifest = engine.manifest
        conv = manifest.prompt
        budget = max(64, manifest.context_length - self.settings.max_tokens - 8)
        fits = engine.prompt_budget(self.settings.time_budget_ms / 1000.0)
        if fits is not None:  # what this CPU can prefill within the interactive budget
            budget = min(budget, fits)
        context, context_labels = "", list[str]()
        if self.workspace is not None and self.settings.workspace_context != "off":
            share = int(budget * self.settings.context_share)
            context, context_labels = self.workspace.context(doc, site, path, self.settings.workspace_context,
                                                             engine.count_tokens, share, self.settings.context_items,
                                                             conv.file_sep)
            budget = max(64, budget - engine.count_tokens(context))
            if context_labels:
                log.debug("%s: workspace context %s", site.qualname, context_labels)
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
        if site.kept_comments:  # the user's comments inside the stub: the body starts with them again
            notes = "\n".join(site.body_indent + c for c in site.kept_comments)
            lead = notes + "\n" if prompt.text.endswith("\n") else "\n" + notes

        def on_line(_index: int, text: str) -> bool:
            # False stops this candidate: it is complete (dedent) or can no longer parse.
            text = lead + text
            if continuation_complete(site, text):
                return False
            return checker.viable(text)

        t0 = time.perf_counter()
        text = context + prompt.text + lead
        if conv.template == "fim":
            text = f"{conv.fim_prefix}{text}{conv.fim_suffix}{suffix}{conv.fim_middle}"
        try:
            result = engine.generate(text, self.generation_config(n), on_line=on_line, cancel=cancel)
        except EndpointError as exc:  # the shared server went away mid-session: say so, reconnect next time
            self._drop_engine(engine)
            message = f"remote backend: {exc}"
            self._on_status("error", message)
            raise ModelUnavailable(message) from None
        raw: list[tuple[str, float, str]] = [
            (lead + g.text, g.score, str(g.finish_reason)) for g in result.generations
        ]
        pairs = [(normalize_continuation(site, text), score) for text, score, _ in raw]
        cut_short = [finish in ("time", "length") for _, _, finish in raw]
        ranked, refused = rank_with_refusals(doc, site, pairs, cut_short)
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
            context=context_labels,
        )
        if key:
            self._cache[ckey] = out
            limit = self.settings.result_cache_mb << 20  # results pin their document snapshots
            while len(self._cache) > _CACHE_ENTRIES or (
                    len(self._cache) > 1 and sum(len(r.doc.data) for r in self._cache.values() if r.doc) > limit):
                self._cache.popitem(last=False)
        return out


__all__ = ["BodyGenerator", "Cancelled", "ModelUnavailable", "SiteResult", "no_body_message"]
