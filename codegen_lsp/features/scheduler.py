"""Runs inference off the event loop: one worker thread, interactive requests first.

Two kinds of job share the worker (the engine runs one generation at a time):

* interactive (completion, inline): the newest request per document wins; a newer one sets the
  older one's cancel token, which the engine checks before every model step;
* explicit (code actions, generate commands): the user asked for them; typing never cancels them.

An interactive request never waits behind explicit work: explicit jobs get a :class:`YieldingToken`
and the engine calls its ``run_waiting()`` between model steps, which runs the waiting interactive
jobs right there, on the worker thread, before the explicit decode goes on (its KV state is local
to the call, so nothing is shared). A ``$/cancelRequest`` (pygls cancels the awaiting task) sets the
job's token too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..engine import release_heap

T = TypeVar("T")


class Superseded(Exception):
    """A newer request for the same document replaced this one (or the server is shutting down)."""


class YieldingToken(threading.Event):
    """The cancel token of an explicit job: also lets waiting interactive jobs run first."""

    def __init__(self, scheduler: RequestScheduler) -> None:
        super().__init__()
        self._scheduler = scheduler

    def run_waiting(self) -> float:
        """Run the interactive jobs waiting now (on the worker thread only); seconds they took."""
        return self._scheduler.run_interactive_now()


@dataclass
class _Job(Generic[T]):
    fn: Callable[[threading.Event], T]
    cancel: threading.Event
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


class RequestScheduler:
    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._interactive: deque[_Job[Any]] = deque()
        self._explicit: deque[_Job[Any]] = deque()
        self._closed = False
        self._current: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="codegen-infer", daemon=True)

    async def run(self, key: str, job: Callable[[threading.Event], T], interactive: bool = True) -> T:
        """Run ``job(cancel)`` on the worker. ``key`` names the lane: an interactive job cancels the
        previous job of its lane."""
        cancel: threading.Event = threading.Event() if interactive else YieldingToken(self)
        with self._lock:
            if interactive and key in self._current:
                self._current[key].set()
            self._current[key] = cancel
        loop = asyncio.get_running_loop()
        item: _Job[T] = _Job(job, cancel, loop, loop.create_future())
        with self._cv:
            if self._closed:
                raise Superseded()
            if not self._worker.is_alive():  # started by the first job
                self._worker.start()
            (self._interactive if interactive else self._explicit).append(item)
            self._cv.notify()
        try:
            return await item.future
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            with self._lock:
                if self._current.get(key) is cancel:
                    del self._current[key]

    # -- worker thread ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cv:
                while not (self._closed or self._interactive or self._explicit):
                    self._cv.wait()
                if self._closed:
                    return
                item = (self._interactive or self._explicit).popleft()
            self._execute(item)
            # After the answer is on its way: keeps the worker's heap from creeping up (5-8 ms).
            release_heap()

    def run_interactive_now(self) -> float:
        """Run every waiting interactive job now, if called on the worker thread; seconds spent."""
        if threading.current_thread() is not self._worker:
            return 0.0
        t0 = time.perf_counter()
        while True:
            with self._cv:
                if self._closed or not self._interactive:
                    break
                item = self._interactive.popleft()
            self._execute(item)
        return time.perf_counter() - t0

    @staticmethod
    def _execute(item: _Job[Any]) -> None:
        outcome: tuple[bool, Any]
        if item.cancel.is_set() or item.future.done():
            outcome = (False, Superseded())
        else:
            try:
                outcome = (True, item.fn(item.cancel))
            except BaseException as exc:  # delivered to the awaiting handler, which decides
                outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed at exit
            item.loop.call_soon_threadsafe(_settle, item.future, outcome)

    # -- control ---------------------------------------------------------------------------------
    def cancel_all(self) -> None:
        with self._lock:
            for ev in self._current.values():
                ev.set()

    def shutdown(self) -> None:
        self.cancel_all()
        with self._cv:
            self._closed = True
            dropped = [*self._interactive, *self._explicit]
            self._interactive.clear()
            self._explicit.clear()
            self._cv.notify_all()
        for item in dropped:
            with contextlib.suppress(RuntimeError):
                item.loop.call_soon_threadsafe(_settle, item.future, (False, Superseded()))


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the awaiting task was cancelled meanwhile
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
