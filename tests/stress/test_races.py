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
from support import bind_core


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
        gate = threading.Event()
        ex.submit(gate.wait, 10)
        futs = [
            ex.submit_task(Task("t", int, start_timeout=0.002 + (i % 20) * 0.0001))
            for i in range(200)
        ]
        time.sleep(0.002)  # land the shutdown among the deadlines
        ex.shutdown(wait=False, cancel_futures=True)
        gate.set()
        ex.shutdown(wait=True)
        s = ex.stats()
        cancelled = sum(f.cancelled() for f in futs)
        failed = sum(1 for f in futs if not f.cancelled() and f.exception() is not None)
        if (s.cancelled, s.failed) != (cancelled, failed):
            mismatches.append((attempt, s.cancelled, cancelled, s.failed, failed))
