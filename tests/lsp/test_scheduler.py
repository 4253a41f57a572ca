"""The inference worker's rules: interactive requests (completion, inline) never wait behind explicit
work (generate body / all), the newest interactive request per document wins, explicit work is never
cancelled by typing, and shutdown answers everything still queued."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from codegen_lsp.engine import GenerationConfig, load_engine
from codegen_lsp.features.scheduler import RequestScheduler, Superseded, YieldingToken
from tests.scripted_rules import RULES


async def _until(flag: threading.Event, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not flag.is_set():
        assert time.monotonic() - t0 < timeout, "the worker never got there"
        await asyncio.sleep(0.005)


async def test_an_interactive_request_runs_at_the_next_step_of_explicit_work() -> None:
    sched = RequestScheduler()
    order: list[str] = []
    started = threading.Event()

    def long_generate_all(cancel: threading.Event) -> str:
        started.set()
        t0 = time.monotonic()
        while "inline" not in order and time.monotonic() - t0 < 10:  # model steps, yielding between them
            assert isinstance(cancel, YieldingToken)
            cancel.run_waiting()
            time.sleep(0.002)
        order.append("explicit")
        return "bodies"

    explicit = asyncio.ensure_future(sched.run("a.py#explicit", long_generate_all, interactive=False))
    await _until(started)
    inline = await sched.run("a.py#interactive", lambda cancel: order.append("inline") or "ghost text")
    assert inline == "ghost text" and not explicit.done()
    assert await explicit == "bodies"
    assert order == ["inline", "explicit"]
    sched.shutdown()


async def _blocked(sched: RequestScheduler) -> tuple[threading.Event, asyncio.Future[str]]:
    """The worker busy with explicit work that does not yield until ``release`` is set."""
    release, started = threading.Event(), threading.Event()

    def hold(cancel: threading.Event) -> str:
        started.set()
        release.wait(10)
        return "held"

    fut = asyncio.ensure_future(sched.run("x#explicit", hold, interactive=False))
    await _until(started)
    return release, fut


async def test_queued_interactive_work_goes_before_queued_explicit_work() -> None:
    sched = RequestScheduler()
    release, held = await _blocked(sched)
    order: list[str] = []
    later_explicit = asyncio.ensure_future(sched.run("y#explicit", lambda c: order.append("explicit"), False))
    await asyncio.sleep(0.01)
    inline = asyncio.ensure_future(sched.run("y#interactive", lambda c: order.append("inline")))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(held, later_explicit, inline)
    assert order == ["inline", "explicit"]
    sched.shutdown()


async def test_the_newest_interactive_request_per_lane_wins_and_explicit_work_is_kept() -> None:
    sched = RequestScheduler()
    release, held = await _blocked(sched)
    ran: list[str] = []
    old = asyncio.ensure_future(sched.run("a#interactive", lambda c: ran.append("old")))
    await asyncio.sleep(0.01)
    other_doc = asyncio.ensure_future(sched.run("b#interactive", lambda c: ran.append("b")))
    new = asyncio.ensure_future(sched.run("a#interactive", lambda c: ran.append("new")))
    mine = asyncio.ensure_future(sched.run("a#explicit-1", lambda c: ran.append("explicit"), False))
    await asyncio.sleep(0.01)
    release.set()
    assert await held == "held"
    with pytest.raises(Superseded):
        await old
    await asyncio.gather(other_doc, new, mine)
    assert ran == ["b", "new", "explicit"]
    sched.shutdown()


async def test_shutdown_answers_queued_work() -> None:
    sched = RequestScheduler()
    release, held = await _blocked(sched)
    queued = asyncio.ensure_future(sched.run("a#interactive", lambda c: "never"))
    await asyncio.sleep(0.01)
    sched.shutdown()
    release.set()
    with pytest.raises(Superseded):
        await queued
    await held
    with pytest.raises(Superseded):
        await sched.run("a#interactive", lambda c: "after shutdown")


class _Pausing:
    """An explicit job's token as the engine sees it: other work runs in ``run_waiting``."""

    def __init__(self, pause_s: float) -> None:
        self.pause_s, self.calls = pause_s, 0

    def is_set(self) -> bool:
        return False

    def run_waiting(self) -> float:
        self.calls += 1
        if self.calls == 1:
            time.sleep(self.pause_s)
            return self.pause_s
        return 0.0


def test_the_engine_yields_between_steps_and_time_spent_elsewhere_is_not_charged(scripted_pkg: Path) -> None:
    engine = load_engine(scripted_pkg, device="cpu", prefix_cache_entries=0)
    token = _Pausing(pause_s=1.5)
    out = engine.generate(RULES[0].after, GenerationConfig(max_new_tokens=64, time_budget_s=1.0), cancel=token)
    assert token.calls >= 2  # once per decode step
    assert [g.text for g in out.generations] == [RULES[0].write[0]]
    assert out.generations[0].finish_reason != "time"


def test_a_generation_run_inside_another_leaves_both_intact(scripted_pkg: Path) -> None:
    engine = load_engine(scripted_pkg, device="cpu")
    inner: list[str] = []

    class Nesting(_Pausing):
        def run_waiting(self) -> float:
            self.calls += 1
            if self.calls == 3:  # mid-decode: an inline request on the same engine and thread
                inner.append(engine.generate(RULES[1].after, GenerationConfig(max_new_tokens=64)).generations[0].text)
            return 0.0

    out = engine.generate(RULES[0].after, GenerationConfig(max_new_tokens=64), cancel=Nesting(0.0))
    assert inner == [RULES[1].write[0]]
    assert out.generations[0].text == RULES[0].write[0]
