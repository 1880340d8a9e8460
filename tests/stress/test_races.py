"""Targeted races the stress runner found, hammered until they would show.

Each is probabilistic (no mocks of conexe: real threads, real timing), so
it runs many short attempts; it failed within the attempts here before its
fix."""

from __future__ import annotations

import sys
import threading
import time
from types import ModuleType

import conexe
from conexe import Task
from support import Blocker, bind_core


def test_cancel_futures_racing_start_deadlines_counts_each_task_once(core: ModuleType) -> None:
    # close(cancel=True) takes a queued task off its lane, counts it
    # cancelled, then cancels its future; the deadline reaper must not
    # fail that future with TimeoutError in between (the counters then said
    # "cancelled" for a future that says "failed").
    Ex = bind_core(conexe.ConcurrentExecutor, core)
    mismatches = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: open the window wide
    try:
        _attempts(Ex, mismatches)
    finally:
        sys.setswitchinterval(interval)
    assert mismatches == []


def _attempts(Ex: type, mismatches: list[tuple[int, ...]]) -> None:
    for attempt in range(150):
        ex = Ex(1)
        gate = Blocker()
        # The gate's own task counts too: on a loaded machine the worker may
        # not have taken it yet when the shutdown cancels what is queued.
        futs = [ex.submit(gate, True)]
        futs += [
            ex.submit_task(Task("t", int, start_timeout=0.002 + (i % 20) * 0.0001))
            for i in range(200)
        ]
        time.sleep(0.002)  # land the shutdown among the deadlines
        ex.shutdown(wait=False, cancel_futures=True)
        gate.release()
        ex.shutdown(wait=True)
        s = ex.stats()
        cancelled = sum(f.cancelled() for f in futs)
        failed = sum(1 for f in futs if not f.cancelled() and f.exception() is not None)
        if (s.cancelled, s.failed) != (cancelled, failed):
            mismatches.append((attempt, s.cancelled, cancelled, s.failed, failed))


def test_event_loops_racing_completions_cancels_and_timeouts(core: ModuleType) -> None:
    # Several threads, each running its own event loop, push tasks through
    # loop-bound futures while asyncio cancels some (queued or running)
    # and times others out: every awaited future must end exactly once
    # with the right outcome, and the counters must add up.
    import asyncio
    import random

    Ex = bind_core(conexe.ConcurrentExecutor, core)
    ex = Ex(3)
    problems: list[str] = []
    all_futures: list[object] = []

    def square(i: int) -> int:
        if i % 7 == 0:
            time.sleep(0.0005)
        return i * i

    async def one_loop(seed: int) -> None:
        rnd = random.Random(seed)
        loop = asyncio.get_running_loop()
        for _ in range(15):
            futs = [loop.run_in_executor(ex, square, i) for i in range(150)]
            all_futures.extend(futs)
            waiters = []
            for f in futs:
                r = rnd.random()
                if r < 0.1:
                    waiters.append(asyncio.wait_for(f, rnd.choice((0.0, 0.0001, 0.001))))
                else:
                    waiters.append(f)
            tasks = [asyncio.ensure_future(w) for w in waiters]
            for t in rnd.sample(tasks, 10):
                t.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            # A wait_for cancelled before it ran never touched its future,
            # which runs on and must still reach the loop as done.
            _, pending = await asyncio.wait(futs, timeout=30)
            if pending:
                problems.append(f"{len(pending)} futures never reported done to the loop")
            for i, out in enumerate(outcomes):
                if isinstance(out, BaseException):
                    if not isinstance(out, (asyncio.CancelledError, asyncio.TimeoutError)):
                        problems.append(f"future {i}: unexpected {out!r}")
                elif out != i * i:
                    problems.append(f"future {i}: {out!r} != {i * i}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [
            threading.Thread(target=asyncio.run, args=(one_loop(seed),)) for seed in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(interval)
    ex.shutdown(wait=True)
    s = ex.stats()
    assert problems == []
    assert all(f.done() for f in all_futures)  # type: ignore[attr-defined]
    assert s.submitted == len(all_futures) == 4 * 15 * 150
    assert s.submitted == s.completed + s.failed + s.cancelled
    assert s.failed == 0
