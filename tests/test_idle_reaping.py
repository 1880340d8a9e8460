"""Idle reaping: ``idle_timeout=`` makes a worker idle that long exit, down
to ``min_workers``; the next task starts one again; a worker running a task
is never reaped; a wake-up that races the timeout is never lost. Both
cores, ConcurrentExecutor, ThreadPoolExecutor and KeyedExecutor."""

from __future__ import annotations

import math
import random
import threading
import time
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import bind_core, each_worker_takes_a_task


@pytest.fixture(params=["ConcurrentExecutor", "ThreadPoolExecutor", "KeyedExecutor"])
def Pool(request: pytest.FixtureRequest, core: ModuleType) -> Any:  # noqa: N802 - a class
    return bind_core(getattr(conexe, request.param), core)


def submitter(ex: Any) -> Any:
    """``submit(fn, *args)`` for any of the three (a KeyedExecutor gets a
    fresh key per task, so they run in parallel)."""
    if isinstance(ex, conexe.KeyedExecutor):
        keys = iter(range(10**9))
        return lambda fn, *args: ex.submit(next(keys), fn, *args)
    return ex.submit


def live_threads(ex: Any) -> int:
    return len(ex._threads)


def test_idle_workers_exit_and_the_next_task_starts_one(Pool: Any, wait_until: Any) -> None:
    with Pool(3, idle_timeout=0.05) as ex:
        submit = submitter(ex)
        # Three tasks that meet at a barrier: three workers at once. (Their
        # count is not read after: a slow machine may reap them already.)
        each_worker_takes_a_task(submit, 3)
        wait_until(lambda: ex.stats().workers == 0 and live_threads(ex) == 0, what="all reaped")
        assert submit(pow, 2, 5).result(timeout=30) == 32  # a thread started for it
        each_worker_takes_a_task(submit, 3)  # back to full size when work needs it
        wait_until(lambda: ex.stats().workers == 0, what="all reaped again")


def test_min_workers_stay(Pool: Any, wait_until: Any) -> None:
    with Pool(4, idle_timeout=0.02, min_workers=2) as ex:
        each_worker_takes_a_task(submitter(ex), 4)
        wait_until(lambda: ex.stats().workers == 2, what="reaped down to min_workers")
        time.sleep(0.2)  # ten idle timeouts: the last two stay
        assert ex.stats().workers == 2 and live_threads(ex) == 2


def test_without_idle_timeout_workers_stay(Pool: Any) -> None:
    with Pool(2) as ex:
        each_worker_takes_a_task(submitter(ex), 2)
        time.sleep(0.2)
        assert ex.stats().workers == 2 and live_threads(ex) == 2


def test_a_running_task_is_never_reaped(Pool: Any, wait_until: Any) -> None:
    with Pool(2, idle_timeout=0.01) as ex:
        gate = threading.Event()
        fut = submitter(ex)(gate.wait, 30)
        time.sleep(0.1)  # ten idle timeouts while it runs
        assert ex.stats().workers >= 1 and not fut.done()
        gate.set()
        assert fut.result(timeout=30) is True
        wait_until(lambda: ex.stats().workers == 0, what="reaped once idle")


def test_no_task_is_lost_when_a_wake_up_races_the_timeout(Pool: Any) -> None:
    # An idle timeout about as long as the gaps between submits: workers
    # time out just as they are woken, again and again.
    rng = random.Random(7)
    with Pool(4, idle_timeout=0.0005) as ex:
        submit = submitter(ex)
        futures = []
        for i in range(600):
            futures.append(submit(abs, -i))
            if i % 3 == 0:
                time.sleep(rng.uniform(0, 0.001))
        assert [f.result(timeout=30) for f in futures] == list(range(600))
    s = ex.stats()
    assert (s.submitted, s.completed, s.workers) == (600, 600, 0)


def test_shutdown_of_a_reaped_pool_returns(Pool: Any, wait_until: Any) -> None:
    ex = Pool(2, idle_timeout=0.01)
    submit = submitter(ex)
    submit(abs, -1).result(timeout=30)
    wait_until(lambda: ex.stats().workers == 0, what="reaped")
    ex.shutdown(wait=True)
    assert live_threads(ex) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be a number of seconds > 0"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout must be a number of seconds > 0"),
        ({"idle_timeout": math.nan}, ValueError, "idle_timeout"),
        ({"idle_timeout": math.inf}, ValueError, "idle_timeout"),
        ({"idle_timeout": True}, TypeError, "idle_timeout"),
        ({"idle_timeout": "1"}, TypeError, "idle_timeout"),
        ({"min_workers": -1}, ValueError, "min_workers must be >= 0"),
        ({"min_workers": 3}, ValueError, r"min_workers \(3\) must be <= max_workers \(2\)"),
        ({"min_workers": 1.0}, TypeError, "min_workers must be an int"),
    ],
)
def test_options_are_checked_at_the_call(
    Pool: Any, kwargs: dict[str, Any], error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        Pool(2, **kwargs)
