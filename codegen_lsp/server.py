"""The language server: registers LSP features and translates them to plain calls.

Feature logic lives in analysis/ (sites, grammar), generation.py (model + checks) and features/
(LSP conversions). Handlers here only look things up, schedule work and convert results.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__
from .analysis.document import Document
from .analysis.sites import FunctionSite, find_sites, site_at
from .analysis.triggers import TypingClock
from .config import Settings, parse_settings
from .features import acceptance, actions, inline, lifecycle, workspace_index
from .features.documents import DocumentStore
from .features.edits import completion_items
from .features.protocol import StrictProtocol
from .features.scheduler import RequestScheduler, Superseded
from .generation import BodyGenerator, Cancelled, ModelUnavailable, SiteResult
from .stats import AcceptanceTracker

log = logging.getLogger(__name__)

CMD_GENERATE_BODY = "codegen-lsp.generateBody"
CMD_GENERATE_ALL = "codegen-lsp.generateAllInFile"
STATUS_NOTIFICATION = "codegenLsp/status"


class CodegenServer(LanguageServer):
    """Shared state for the handlers: documents, settings, the generator and the scheduler."""

    def __init__(self) -> None:
        super().__init__(
            "codegen-lsp", __version__, protocol_cls=StrictProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.docs = DocumentStore()
        self.settings = Settings()
        self.generator = BodyGenerator(self.settings, on_status=self.report_status)
        self.scheduler = RequestScheduler()
        self.typing = TypingClock()
        self.inline_offers = inline.InlineOffers()
        self.acceptance = AcceptanceTracker()
        self._stats_flush: asyncio.TimerHandle | None = None
        self.client_ready = False
        self.last_latency_ms: float | None = None
        self._said_error = False
        self.pending_warnings: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def bind_loop(self) -> None:
        """Remember the event loop (called from a handler running on it): protocol messages from other
        threads are handed to it instead of writing to the transport concurrently."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop: now when called there, else as soon as it can."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            fn(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def model_name(self) -> str:
        """The loaded model's name, for the acceptance stats."""
        engine = self.generator.engine
        name = engine.info.get("model") if engine is not None else None
        return str(name) if name else str(self.generator.model_dir().name)

    def report_status(self, state: str, message: str) -> None:
        """Status for editors' status bars (from any thread); an error is also shown once as a message."""
        self.on_loop(self._report_status, state, message)

    def _report_status(self, state: str, message: str) -> None:
        engine = self.generator.engine
        info = engine.info if engine is not None else {}
        payload = {
            "state": state,
            "message": message,
            "model": info.get("model"),
            "device": info.get("provider"),
            "lastLatencyMs": self.last_latency_ms,
        }
        if not self.client_ready:
            return
        self.protocol.notify(STATUS_NOTIFICATION, payload)
        if state == "error" and not self._said_error:
            self._said_error = True
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))

    def flush_warnings(self) -> None:
        """Show settings warnings; those from initialize wait until the client is ready."""
        if not self.client_ready:
            return
        for w in self.pending_warnings:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"codegen-lsp: {w}"))
        self.pending_warnings.clear()

    def apply_settings(self, raw: Any) -> None:
        settings, warnings = parse_settings(raw, self.settings)
        for w in warnings:
            log.warning(w)
        self.pending_warnings.extend(warnings)
        self.flush_warnings()
        self.settings = settings
        if _sets(raw, "logLevel"):  # only a level the client sent overrides --log-level
            logging.getLogger().setLevel(settings.log_level.upper())
        self.generator.reset(settings)

    async def bodies_at(
        self, uri: str, pos: types.Position
    ) -> tuple[Document, FunctionSite, SiteResult] | None:
        """Bodies for the site at the cursor, with the document snapshot they were made for; None
        when there is no site. A result that went stale while generating comes back empty."""
        live = self.docs.get(uri)
        site = site_at(live, pos.line, pos.character) if live else None
        if live is None or site is None:
            return None
        version = live.version
        result = await self.site_bodies(uri, site)
        current = self.docs.get(uri)
        if result is None or current is None or current.version != version:
            return (live.snapshot(), site, SiteResult(site=site, candidates=[]))
        return result.doc or live.snapshot(), site, result

    async def site_bodies(
        self, uri: str, site: FunctionSite, n: int | None = None, supersede: bool = True
    ) -> SiteResult | None:
        """Run generation for ``site`` in the worker; None when no model, cancelled or superseded.

        ``supersede``: an interactive request (completion, inline) that a newer interactive request
        for the same document replaces. Requests the user asked for explicitly (code actions,
        commands) neither supersede nor get superseded: they run in their own lane, and yield to
        interactive requests between model steps (see features/scheduler.py)."""
        live = self.docs.get(uri)
        if live is None:
            return None
        doc = live.snapshot()  # the worker reads a frozen copy while edits keep arriving
        path = workspace_index.uri_path(uri)
        try:
            lane = f"{uri}#interactive" if supersede else f"{uri}#explicit-{id(site)}"
            result = await self.scheduler.run(
                lane, lambda cancel: self.generator.bodies(doc, site, key=uri, cancel=cancel, n=n, path=path),
                interactive=supersede,
            )
        except (ModelUnavailable, Cancelled, Superseded) as exc:
            log.debug("no bodies for %s: %s", site.qualname, type(exc).__name__)
            return None
        if not result.from_cache:
            self.last_latency_ms = round(result.seconds * 1000, 1)
            if supersede:  # what the user waits for while typing
                self.acceptance.latency(self.model_name(), result.seconds * 1000)
                acceptance.schedule_flush(self)
            log.info(
                "%s: %d valid of %d in %.0f ms (prompt %d tok, %d from prefix cache)",
                site.qualname, len(result.candidates), len(result.raw), result.seconds * 1000,
                result.prompt_tokens, result.cached_prompt_tokens,
            )
            self.report_status("ready", f"{site.qualname}: {self.last_latency_ms} ms")
        return result



def _sets(raw: Any, key: str) -> bool:
    """Whether a settings object (bare or under ``codegenLsp``) names ``key``."""
    if not isinstance(raw, dict):
        return False
    section = raw.get("codegenLsp")
    return key in raw or (isinstance(section, dict) and key in section)


def create_server() -> CodegenServer:
    """A fresh server with every feature registered (one per process in practice)."""
    srv = CodegenServer()
    _register(srv)
    return srv


def _register(ls: CodegenServer) -> None:
    lifecycle.register(ls)
    actions.register(ls, CMD_GENERATE_BODY, CMD_GENERATE_ALL)
    acceptance.register(ls)
    workspace_index.register(ls)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        ls.docs.open(params)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        ls.docs.change(params)
        ls.typing.edit(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        ls.docs.close(params)
        ls.typing.forget(params.text_document.uri)
        ls.inline_offers.forget(params.text_document.uri)
        workspace_index.file_changed(ls, params.text_document.uri, None)  # unsaved edits are gone: disk

    @ls.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["\n", ":"], resolve_provider=False),
    )
    async def completion(params: types.CompletionParams) -> types.CompletionList | None:
        if not ls.settings.enable_completion:
            return None
        found = await ls.bodies_at(params.text_document.uri, params.position)
        if found is None:
            return None
        doc, site, result = found
        if not result.candidates:
            return types.CompletionList(is_incomplete=True, items=[])
        items = completion_items(doc, site, result.candidates, params.position, result.seconds)
        acceptance.tag_completion_items(ls, items)
        return types.CompletionList(is_incomplete=False, items=items)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        if not ls.settings.enable_inline:
            return None
        return await inline.answer(ls, params)

    @ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[actions.KIND], resolve_provider=True),
    )
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction] | None:
        if not ls.settings.enable_code_actions:
            return None
        doc = ls.docs.get(params.text_document.uri)
        if doc is None:
            return None
        return actions.actions_for_range(ls, params, find_sites(doc), doc.version)
