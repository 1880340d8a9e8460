"""``KeyedExecutor(rate_per_key=..., burst_per_key=...)``: a key's tasks
start at most that many per second (GCRA: the k-th start comes at least
``k - burst + 1`` intervals after the first), a held task holds no worker,
other keys go on, the pace outlives an idle spell, and shutdown runs or
cancels what is held; nothing accepted is lost. Both cores.

Timing is asserted only as lower bounds, which a slow or busy machine
can't break. The pace holds for the moments workers take the tasks; a
task's body runs some time after that, so starts are measured from a time
read before the first submit (never later than the first take), not
from the first task's own, possibly late, body."""

from __future__ import annotations

import gc
import math
import threading
import time
import weakref
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import Blocker, bind_core

# Only the float rounding of (tat - tolerance) against a fresh clock read:
# the engine and time.monotonic() read the same clock.
EPS = 1e-6


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(conexe.KeyedExecutor, core)


def starts(futures: list[Any]) -> list[float]:
    return [f.result(timeout=30) for f in futures]


def assert_paced(times: list[float], since: float, interval: float, burst: int = 1) -> None:
    """The k-th start (in time order) came at least ``k - burst + 1``
    intervals after ``since``, a time read before the first submit."""
    for k, t in enumerate(sorted(times)):
        assert t - since >= (k - burst + 1) * interval - EPS, (k, since, times)


def test_a_key_starts_at_most_rate_tasks_per_second(Keyed: Any) -> None:
    with Keyed(4, rate_per_key=40) as ex:
        t0 = time.monotonic()
        times = starts([ex.submit("api", time.monotonic) for _ in range(6)])
    assert times == sorted(times)
    assert_paced(times, t0, 1 / 40)


def test_keys_have_their_own_pace(Keyed: Any) -> None:
    with Keyed(4, rate_per_key=4) as ex:
        t0 = time.monotonic()
        a = [ex.submit("a", time.monotonic) for _ in range(2)]
        b = [ex.submit("b", time.monotonic) for _ in range(2)]
        ta, tb = starts(a), starts(b)
    assert_paced(ta, t0, 1 / 4)
    assert_paced(tb, t0, 1 / 4)
    # b's first start did not wait for a's pace (a's second: 0.25 s on).
    assert tb[0] < ta[1]


def test_a_held_task_holds_no_worker(Keyed: Any, wait_until: Any) -> None:
    with Keyed(1, rate_per_key=2) as ex:  # one worker; "a" again only in 0.5 s
        t0 = time.monotonic()
        a1 = ex.submit("a", time.monotonic)
        a1.result(timeout=30)
        a2 = ex.submit("a", time.monotonic)
        wait_until(lambda: ex.stats().idle == 1, what="the worker free while a2 waits")
        b = ex.submit("b", time.monotonic)
        assert b.result(timeout=30) < a2.result(timeout=30)
        assert a2.result() - t0 >= 0.5 - EPS


def test_a_function_of_the_key_paces_some_keys_only(Keyed: Any) -> None:
    def rate(key: str) -> float | None:
        return 40 if key == "slow" else None

    with Keyed(2, rate_per_key=rate) as ex:
        t0 = time.monotonic()
        slow = starts([ex.submit("slow", time.monotonic) for _ in range(3)])
        fast = [ex.submit("fast", time.monotonic) for _ in range(5)]
        for f in fast:
            f.result(timeout=30)
    assert_paced(slow, t0, 1 / 40)


def test_burst_lets_that_many_start_at_once(Keyed: Any, wait_until: Any) -> None:
    with Keyed(4, max_per_key=4, rate_per_key=0.01, burst_per_key=3) as ex:
        hold = Blocker()
        futures = [ex.submit("k", hold) for _ in range(5)]
        wait_until(lambda: ex.stats().running == 3, what="the burst of 3 running")
        # The 4th start is 100 s away: held, out of the lanes, no worker on it.
        assert ex.stats().pending == 2
        hold.release()
        ex.shutdown(wait=True, cancel_futures=True)
    assert [f.cancelled() for f in futures] == [False] * 3 + [True] * 2
    s = ex.stats()
    assert (s.completed, s.cancelled, s.pending, s.active_keys) == (3, 2, 0, 0)


def test_the_pace_outlives_an_idle_key(Keyed: Any) -> None:
    with Keyed(2, rate_per_key=40) as ex:
        t0 = time.monotonic()
        times = [ex.submit("k", time.monotonic).result(timeout=30) for _ in range(4)]
        assert ex.stats().active_keys == 0
    assert_paced(times, t0, 1 / 40)


def test_an_idle_key_is_not_busy_for_submit_unique(Keyed: Any) -> None:
    with Keyed(1, rate_per_key=0.01) as ex:
        assert ex.submit("k", abs, -1).result(timeout=30) == 1
        # Its entry is kept for its pace, but nothing is queued or running.
        again = ex.submit_unique("k", abs, -2)
        assert again is not None
        assert ex.submit_unique("k", abs, -3) is None  # held: 100 s to go
        ex.shutdown(wait=True, cancel_futures=True)
        assert again.cancelled()


def test_shutdown_waits_for_held_tasks(Keyed: Any) -> None:
    ex = Keyed(2, rate_per_key=40)
    t0 = time.monotonic()
    futures = [ex.submit("k", time.monotonic) for _ in range(4)]
    ex.shutdown(wait=True)
    assert all(f.done() and not f.cancelled() for f in futures)
    assert_paced(starts(futures), t0, 1 / 40)
    s = ex.stats()
    assert (s.completed, s.pending, s.workers) == (4, 0, 0)


def test_shutdown_without_waiting_still_runs_held_tasks(Keyed: Any) -> None:
    ex = Keyed(2, rate_per_key=40)
    t0 = time.monotonic()
    futures = [ex.submit("k", time.monotonic) for _ in range(3)]
    ex.shutdown(wait=False)
    assert_paced(starts(futures), t0, 1 / 40)


def test_a_cancelled_held_task_is_skipped(Keyed: Any) -> None:
    with Keyed(1, rate_per_key=20) as ex:
        t0 = time.monotonic()
        first = ex.submit("k", time.monotonic)
        first.result(timeout=30)
        held = ex.submit("k", time.monotonic)
        assert held.cancel()
        last = ex.submit("k", time.monotonic)
        assert last.result(timeout=30) - t0 >= 1 / 20 - EPS
    s = ex.stats()
    assert (s.completed, s.cancelled, s.submitted) == (2, 1, 3)


def test_kept_entries_are_freed_once_their_pace_is_forgotten(Keyed: Any) -> None:
    class Key:
        pass

    key = Key()
    ref = weakref.ref(key)
    with Keyed(1, rate_per_key=50) as ex:
        ex.submit(key, abs, -1).result(timeout=30)
        del key
        time.sleep(0.05)  # one interval: nothing of its pace is left to keep
        ex.submit("another", abs, -1).result(timeout=30)  # a new entry sweeps
        gc.collect()
        assert ref() is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.5, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (True, TypeError),
        ("2", TypeError),
    ],
)
def test_rate_per_key_is_checked_at_the_call(Keyed: Any, value: Any, error: type) -> None:
    with pytest.raises(error, match="rate_per_key"):
        Keyed(1, rate_per_key=value)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (True, TypeError), (1.5, TypeError)])
def test_burst_per_key_is_checked_at_the_call(Keyed: Any, value: Any, error: type) -> None:
    with pytest.raises(error, match="burst_per_key"):
        Keyed(1, rate_per_key=1, burst_per_key=value)


def test_a_rate_function_giving_a_bad_rate_fails_the_submit(Keyed: Any) -> None:
    with Keyed(1, rate_per_key=lambda key: -1) as ex:
        with pytest.raises(ValueError, match="rate_per_key must be a finite number > 0"):
            ex.submit("k", abs, -1)
        assert ex.stats().submitted == 0


def test_many_keys_from_many_threads_keep_their_pace(Keyed: Any) -> None:
    with Keyed(4, rate_per_key=100, burst_per_key=2, max_per_key=2) as ex:
        results: dict[int, tuple[float, list[Any]]] = {}

        def produce(key: int) -> None:
            t0 = time.monotonic()
            results[key] = (t0, [ex.submit(key, time.monotonic) for _ in range(8)])

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for t0, futures in results.values():
            assert_paced(starts(futures), t0, 1 / 100, burst=2)
    s = ex.stats()
    assert (s.completed, s.pending, s.active_keys) == (48, 0, 0)
