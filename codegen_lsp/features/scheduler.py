"""Runs inference off the event loop: one worker, newest request per document wins.

A request's cancel token is set when the client sends $/cancelRequest (pygls cancels the awaiting
task) or when a newer request for the same document arrives; the engine checks it every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..engine import release_heap

T = TypeVar("T")


class Superseded(Exception):
    """A newer request for the same document replaced this one."""


class RequestScheduler:
    def __init__(self) -> None:
        # One worker: the engine runs one generation at a time; a queue of stale work is avoided
        # because each new request cancels the previous one for its document.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codegen-infer")
        self._current: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    async def run(self, key: str, job: Callable[[threading.Event], T], supersede: bool = True) -> T:
        cancel = threading.Event()
        with self._lock:
            if supersede and key in self._current:
                self._current[key].set()
            self._current[key] = cancel
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, lambda: self._guarded(job, cancel))
        try:
            return await fut
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            # Queued behind the job, after its answer: keeps the worker's heap from creeping up.
            with contextlib.suppress(RuntimeError):  # the pool is shut down at exit
                self._pool.submit(release_heap)
            with self._lock:
                if self._current.get(key) is cancel:
                    del self._current[key]

    @staticmethod
    def _guarded(job: Callable[[threading.Event], T], cancel: threading.Event) -> T:
        if cancel.is_set():
            raise Superseded()
        return job(cancel)

    def cancel_all(self) -> None:
        with self._lock:
            for ev in self._current.values():
                ev.set()

    def shutdown(self) -> None:
        self.cancel_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
