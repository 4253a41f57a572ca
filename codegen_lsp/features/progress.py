"""Slow work the user asked for (generate all, code actions) as a cancellable work-done progress.

The client's cancel button (``window/workDoneProgress/cancel``) cancels the task doing the work;
the scheduler turns that into the engine's cancel token, so the model stops within one step. The
status notification says what is running, for status bars.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .lifecycle import begin_progress

if TYPE_CHECKING:
    from ..server import CodegenServer

log = logging.getLogger(__name__)


class Job:
    """One progress report: ``report`` as the work goes, ``run`` the work, ``end`` once."""

    def __init__(self, ls: CodegenServer, token: str | None, title: str) -> None:
        self.ls = ls
        self.token = token
        self.title = title
        self.cancelled = False
        self._task: asyncio.Task[Any] | None = None
        if token is not None:
            future = ls.work_done_progress.tokens.get(token)
            if future is not None:
                future.add_done_callback(lambda _f: self.cancel())

    @classmethod
    async def start(cls, ls: CodegenServer, title: str) -> Job:
        token = await begin_progress(ls, title, percentage=0, cancellable=True)
        ls.report_status("busy", title)
        return cls(ls, token, title)

    def cancel(self) -> None:
        """The user's cancel: stop the work (idempotent; called on the event loop)."""
        if self.cancelled:
            return
        self.cancelled = True
        log.info("%s: cancelled by the user", self.title)
        if self._task is not None:
            self._task.cancel()

    def report(self, message: str, done: int, total: int) -> None:
        self.ls.report_status("busy", f"{self.title}: {message}")
        if self.token is not None:
            self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=int(100 * done / max(total, 1)), cancellable=True))

    async def run(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run ``work``; False when the user cancelled it (a ``$/cancelRequest`` of the request
        itself still propagates)."""
        if self.cancelled:
            work.close()
            return False
        self._task = asyncio.ensure_future(work)
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.cancelled and not (current is not None and current.cancelling()):
                return False
            raise
        return True

    def end(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)
        error = self.ls.generator.load_error
        if self.ls.generator.engine is None and error:  # keep showing why nothing was generated
            self.ls.report_status("error", error)
        else:
            self.ls.report_status("ready", message)
