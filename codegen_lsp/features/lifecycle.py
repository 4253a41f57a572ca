"""Initialize, settings, model loading with $/progress, and exit when the editor goes away."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING

from lsprotocol import types

from . import workspace_index
from .log import ClientLogHandler

if TYPE_CHECKING:
    from ..server import CodegenServer

log = logging.getLogger(__name__)

CMD_RELOAD = "codegen-lsp.reloadModel"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists. On Windows ``os.kill(pid, 0)`` would send CTRL_C_EVENT, so
    the process handle is asked instead."""
    if os.name == "nt":
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    import ctypes

    synchronize, wait_timeout = 0x00100000, 0x00000102
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if not handle:
        return bool(kernel32.GetLastError() == 5)  # ERROR_ACCESS_DENIED: it exists; else it is gone
    try:
        return bool(kernel32.WaitForSingleObject(handle, 0) == wait_timeout)
    finally:
        kernel32.CloseHandle(handle)


def watch_parent(pid: int | None, interval: float = 2.0) -> None:
    """Exit when the editor process (processId from initialize, or our parent) has died, so an
    editor crash never leaves a server (and a model in memory) behind."""
    start_ppid = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(interval)
            dead = (pid is not None and not _alive(pid)) or os.getppid() != start_ppid
            if dead:
                log.warning("editor process is gone; exiting")
                os._exit(0)

    threading.Thread(target=loop, name="parent-watchdog", daemon=True).start()


def register(ls: CodegenServer) -> None:
    @ls.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        ls.apply_settings(params.initialization_options)
        watch_parent(params.process_id)

    @ls.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        ls.bind_loop()
        ls.client_ready = True
        ls.flush_warnings()
        handler = ClientLogHandler(ls)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger("codegen_lsp").addHandler(handler)
        log.info("codegen-lsp started; model: %s", ls.generator.model_dir())
        workspace_index.start_indexing(ls)
        await load_model_with_progress(ls)

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        before = ls.settings.engine_key
        ls.apply_settings(params.settings)
        workspace_index.start_indexing(ls)
        if ls.settings.engine_key != before:
            ls._said_error = False
            await load_model_with_progress(ls)

    @ls.command(CMD_RELOAD)
    async def reload_model() -> bool:
        """Drop the engine (and a remembered failure) and load the package again, e.g. after
        ``make model`` or ``codegen-lsp models install``."""
        ls.generator.reset(ls.settings, reload=True)
        ls._said_error = False
        await load_model_with_progress(ls)
        return ls.generator.engine is not None

    @ls.feature(types.SHUTDOWN)
    def shutdown(params: None) -> None:
        ls.scheduler.shutdown()
        ls.acceptance.flush()  # counts not yet on disk (features/acceptance.py writes in bursts)


async def begin_progress(
    ls: CodegenServer, message: str, percentage: int | None = None, cancellable: bool = False
) -> str | None:
    """Start a work-done progress report where the client supports one; its token, else None (a
    client that refuses progress still gets the work done). ``cancellable``: the client shows a
    cancel button; its ``window/workDoneProgress/cancel`` cancels ``ls.work_done_progress.tokens[token]``."""
    caps = ls.client_capabilities.window
    if not (caps and caps.work_done_progress):
        return None
    token = f"codegen-lsp-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title="codegen-lsp", message=message, percentage=percentage, cancellable=cancellable))
    except Exception:  # noqa: BLE001
        return None
    return token


async def load_model_with_progress(ls: CodegenServer) -> None:
    """Load the model in the worker at start-up so the first request does not pay for it; report
    work-done progress where the client supports it. Failure is reported once, never raised."""
    token = await begin_progress(ls, "loading model")
    loop = asyncio.get_running_loop()
    ok = True
    try:
        await loop.run_in_executor(None, ls.generator.ensure_engine)
    except Exception as exc:  # noqa: BLE001 - ModelUnavailable and anything unexpected alike
        ok = False
        log.error("%s", exc)
    if token is not None:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="model ready" if ok else "model failed"))
