"""``KeyedExecutor(max_per_key=...)``: up to that many of a key's tasks in
flight at once, started in submission order; a function of the key gives
each key its own width; other keys are unaffected; shutdown with pending
work drains a wide key cleanly. Both cores."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import Blocker, bind_core


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(conexe.KeyedExecutor, core)


class Recorder:
    """A task that records when it starts (in order) and holds its worker
    until released; counts how many of one key run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.running = 0
        self.most = 0
        self.gate = threading.Event()

    def __call__(self, i: int) -> int:
        with self.lock:
            self.started.append(i)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.gate.wait(30)
            return i
        finally:
            with self.lock:
                self.running -= 1


def test_a_key_runs_up_to_its_width_at_once_in_submission_order(
    Keyed: Any, wait_until: Any
) -> None:
    with Keyed(4, max_per_key=2) as ex:
        task = Recorder()
        futures = [ex.submit("k", task, i) for i in range(6)]
        wait_until(lambda: task.running == 2 and ex.stats().pending == 4, what="2 running")
        # Two workers record their starts in whatever order the OS runs
        # them, so the order shows as *which* tasks started, not their list order.
        assert sorted(task.started) == [0, 1]
        task.gate.set()
        assert [f.result(timeout=30) for f in futures] == list(range(6))
    assert task.most == 2
    assert sorted(task.started) == list(range(6))
    assert ex.stats().active_keys == 0


def test_a_function_of_the_key_gives_each_key_its_width(Keyed: Any, wait_until: Any) -> None:
    with Keyed(6, max_per_key=lambda key: 3 if key == "wide" else 1) as ex:
        wide, narrow = Recorder(), Recorder()
        futures = [ex.submit("wide", wide, i) for i in range(5)]
        futures += [ex.submit("narrow", narrow, i) for i in range(3)]
        wait_until(lambda: wide.running + narrow.running == 4, what="3 wide, 1 narrow running")
        assert sorted(wide.started) == [0, 1, 2] and narrow.started == [0]
        wide.gate.set()
        narrow.gate.set()
        for f in futures:
            f.result(timeout=30)
    assert (wide.most, narrow.most) == (3, 1)


def test_other_keys_run_beside_a_wide_key(Keyed: Any, wait_until: Any) -> None:
    with Keyed(3, max_per_key=2) as ex:
        task = Recorder()
        held = [ex.submit("k", task, i) for i in range(4)]
        wait_until(lambda: ex.stats().running == 2, what="2 of k running")
        assert ex.submit("other", abs, -5).result(timeout=30) == 5
        task.gate.set()
        for f in held:
            f.result(timeout=30)


def test_shutdown_cancelling_drains_a_wide_key_in_the_lanes(Keyed: Any) -> None:
    ex = Keyed(1, max_per_key=3)
    hold = Blocker()
    ex.submit("busy", hold)  # holds the only worker
    assert hold.started.wait(10)
    wide = [ex.submit("k", abs, -i) for i in range(5)]  # 3 in the lanes, 2 behind them
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in wide)
    hold.release()
    ex.shutdown(wait=True)
    s = ex.stats()
    assert s.submitted == s.completed + s.failed + s.cancelled
    assert (s.cancelled, s.active_keys, s.pending) == (5, 0, 0)


def test_unique_still_means_nothing_queued_or_running(Keyed: Any) -> None:
    with Keyed(2, max_per_key=2) as ex:
        gate = threading.Event()
        first = ex.submit_unique("k", gate.wait, 30)
        assert first is not None
        assert ex.submit_unique("k", gate.wait, 30) is None  # busy, though width is 2
        gate.set()
        assert first.result(timeout=30) is True


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (True, TypeError), ("2", TypeError), (1.5, TypeError)]
)
def test_max_per_key_is_checked_at_the_call(Keyed: Any, value: Any, error: type) -> None:
    with pytest.raises(error, match="max_per_key"):
        Keyed(1, max_per_key=value)


def test_a_width_function_giving_a_bad_width_fails_the_submit(Keyed: Any) -> None:
    with Keyed(1, max_per_key=lambda key: 0) as ex:
        with pytest.raises(ValueError, match="max_per_key must be >= 1, got 0"):
            ex.submit("k", abs, -1)
        assert ex.stats().submitted == 0
