"""``shutdown(timeout=...)`` on the three executors: past the timeout it
raises TimeoutError saying what is still running and queued, drops nothing
(a later ``shutdown()`` waits for it all), and is checked at the call.
Both cores."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

import conexe
from support import Blocker, bind_core


@pytest.fixture(params=["ConcurrentExecutor", "KeyedExecutor", "Runner"])
def make(request: pytest.FixtureRequest, core: ModuleType) -> Any:
    """Makes a one-worker executor of each kind, and ``submit(fn, arg)``
    for it (a Runner's task gets its resource first: the stand-in ignores it)."""
    kind = request.param
    made: list[Any] = []

    def make() -> tuple[Any, Any]:
        if kind == "Runner":
            ex = bind_core(conexe.Runner, core)(lambda: "resource", worker_count=1)
            made.append(ex)
            return ex, lambda fn, arg: ex.submit(lambda _resource: fn(arg))
        ex = bind_core(getattr(conexe, kind), core)(1)
        made.append(ex)
        if kind == "KeyedExecutor":
            return ex, lambda fn, arg: ex.submit(arg, fn, arg)
        return ex, ex.submit

    yield make
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)


def test_past_the_timeout_it_says_what_runs_and_drops_nothing(make: Any) -> None:
    ex, submit = make()
    hold = Blocker()
    running = submit(hold, "held")
    assert hold.started.wait(10)
    queued = [submit(abs, -i) for i in range(1, 4)]
    with pytest.raises(TimeoutError) as info:
        ex.shutdown(timeout=0.05)
    message = str(info.value)
    assert "timed out after 0.05 s" in message
    assert "1 task still running, 3 queued" in message
    assert "nothing is dropped" in message
    # Shut down: no new task; what was accepted still runs.
    with pytest.raises(RuntimeError):
        submit(abs, -9)
    assert not running.done() and not any(f.done() for f in queued)
    hold.release()
    ex.shutdown(timeout=30)  # a second call waits for them
    assert running.result(timeout=0) == "held"
    assert [f.result(timeout=0) for f in queued] == [1, 2, 3]


def test_cancel_futures_with_a_timeout_cancels_the_queued_and_waits_for_the_running(
    make: Any,
) -> None:
    ex, submit = make()
    hold = Blocker()
    running = submit(hold, "held")
    assert hold.started.wait(10)
    queued = [submit(abs, -i) for i in range(1, 4)]
    with pytest.raises(TimeoutError, match="1 task still running, 0 queued"):
        ex.shutdown(cancel_futures=True, timeout=0.05)
    assert all(f.cancelled() for f in queued)
    hold.release()
    ex.shutdown(timeout=30)
    assert running.result(timeout=0) == "held"


def test_a_timeout_long_enough_returns_once_everything_ran(make: Any) -> None:
    ex, submit = make()
    futures = [submit(abs, -i) for i in range(5)]
    ex.shutdown(timeout=30)
    assert [f.result(timeout=0) for f in futures] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("timeout", "error"), [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError)]
)
def test_the_timeout_is_checked_at_the_call(make: Any, timeout: Any, error: type) -> None:
    ex, submit = make()
    with pytest.raises(error, match="timeout"):
        ex.shutdown(timeout=timeout)
    assert submit(abs, -1).result(timeout=10) == 1  # the bad call shut nothing down


def test_a_runner_shut_down_without_waiting_finishes_its_stop_in_the_background(
    core: ModuleType,
) -> None:
    destroyed: list[str] = []
    runner = bind_core(conexe.Runner, core)(lambda: "db", destroyed.append, worker_count=1)
    hold = Blocker()
    running = runner.submit(hold)
    assert hold.started.wait(10)
    queued = runner.submit(lambda db: db)
    runner.shutdown(wait=False, cancel_futures=True)  # returns at once
    assert queued.cancelled()
    assert runner.stopped and destroyed == []
    hold.release()
    assert running.result(timeout=10) == "db"
    runner.stop(timeout=30)  # the background stop's work, waited for here
    assert destroyed == ["db"]
