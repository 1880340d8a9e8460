"""``conexe.current_task()`` and ``Future.request_cancel()``: a running task
sees whether it was asked to stop and its deadline (``Task(timeout=)``);
the tasks it submits inherit both; groups that end and
``shutdown(cancel_futures=True)`` ask running tasks to stop the same way;
``cancel()`` keeps the stdlib's meaning. Both cores."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from types import ModuleType
from typing import Any

import pytest

import conexe
from conexe import Task, TaskCancelled, current_task
from support import bind_core


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(conexe.KeyedExecutor, core)


def until_asked(started: threading.Event | None = None) -> str:
    """A task that runs until asked to stop (at most 30 s)."""
    if started is not None:
        started.set()
    task = current_task()
    assert task is not None
    give_up = time.monotonic() + 30
    while not task.cancel_requested:
        assert time.monotonic() < give_up, "never asked to stop"
        time.sleep(0.001)
    return "stopped when asked"


def wait_running(fut: Any) -> None:
    give_up = time.monotonic() + 30
    while not (fut.running() or fut.done()):
        assert time.monotonic() < give_up
        time.sleep(0.001)


def test_outside_a_task_there_is_none(Executor: Any) -> None:
    assert current_task() is None
    with Executor(1) as ex:
        seen = ex.submit(lambda: (current_task() is not None, current_task().deadline)).result()
    assert seen == (True, None)
    assert current_task() is None


def test_request_cancel_asks_a_running_task_and_cancel_keeps_its_meaning(Executor: Any) -> None:
    with Executor(1) as ex:
        fut = ex.submit(until_asked)
        wait_running(fut)
        assert fut.cancel() is False  # the stdlib's meaning: a running task can't be
        assert fut.request_cancel() is True
        assert fut.result(timeout=30) == "stopped when asked"
        assert not fut.cancelled()
        assert fut.request_cancel() is False  # it has ended


def test_request_cancel_cancels_a_task_not_started(Executor: Any) -> None:
    with Executor(1) as ex:
        gate = threading.Event()
        ex.submit(gate.wait, 30)
        queued = ex.submit(abs, -1)
        assert queued.request_cancel() is True
        assert queued.cancelled()
        gate.set()


def test_check_raises_task_cancelled_once_asked(Executor: Any) -> None:
    started = threading.Event()

    def steps() -> int:
        n = 0
        while True:
            current_task().check()  # type: ignore[union-attr]
            n += 1
            started.set()
            time.sleep(0.001)

    with Executor(1) as ex:
        fut = ex.submit(steps)
        assert started.wait(30)
        fut.request_cancel()
        err = fut.exception(timeout=30)
    assert isinstance(err, TaskCancelled) and isinstance(err, cf.CancelledError)
    assert not fut.cancelled()


def test_a_task_sees_its_deadline_and_check_raises_past_it(Executor: Any) -> None:
    def look() -> tuple[float | None, float | None]:
        task = current_task()
        assert task is not None
        before = task.time_left()
        while task.time_left():
            time.sleep(0.001)
        with pytest.raises(TimeoutError):
            task.check()
        return task.deadline, before

    with Executor(1) as ex:
        t0 = time.monotonic()
        deadline, left = ex.submit_task(Task("t", look, timeout=0.05)).result(timeout=30)
    assert deadline is not None and t0 < deadline <= time.monotonic()
    assert left is not None and 0 <= left <= 0.05  # 0 if it started late


def test_a_submitted_task_inherits_the_deadline_unless_its_own_comes_first(
    Executor: Any,
) -> None:
    with Executor(2) as ex:

        def parent() -> tuple[Any, ...]:
            mine = current_task().deadline  # type: ignore[union-attr]
            plain = ex.submit(lambda: current_task().deadline).result()  # type: ignore[union-attr]
            sooner = ex.submit_task(
                Task("c", lambda: current_task().deadline, timeout=1)  # type: ignore[union-attr]
            ).result()
            later = ex.submit_task(
                Task("c", lambda: current_task().deadline, timeout=600)  # type: ignore[union-attr]
            ).result()
            return mine, plain, sooner, later

        mine, plain, sooner, later = ex.submit_task(Task("p", parent, timeout=300)).result(30)
    assert plain == mine and later == mine
    assert sooner < mine


def test_a_request_reaches_the_tasks_it_submitted(Executor: Any) -> None:
    with Executor(3) as ex:
        child_started = threading.Event()
        children: list[Any] = []

        def parent() -> str:
            children.append(ex.submit(until_asked, child_started))
            children.append(ex.submit(until_asked))
            gate = threading.Event()
            children.append(ex.submit(gate.wait, 30))  # queued: 3 workers, all busy
            return until_asked()

        fut = ex.submit(parent)
        assert child_started.wait(30)
        give_up = time.monotonic() + 30
        while len(children) < 3:
            assert time.monotonic() < give_up
            time.sleep(0.001)
        wait_running(children[1])
        assert fut.request_cancel()
        assert fut.result(timeout=30) == "stopped when asked"
        assert [children[i].result(timeout=30) for i in (0, 1)] == ["stopped when asked"] * 2
        assert children[2].cancelled()


def test_a_task_submitted_after_the_request_is_asked_from_the_start(Executor: Any) -> None:
    with Executor(2) as ex:

        def parent() -> bool:
            until_asked()
            return bool(ex.submit(lambda: current_task().cancel_requested).result())  # type: ignore[union-attr]

        fut = ex.submit(parent)
        wait_running(fut)
        fut.request_cancel()
        assert fut.result(timeout=30) is True


def test_shutdown_cancelling_asks_running_tasks_to_stop(Executor: Any) -> None:
    ex = Executor(2)
    started = threading.Event()
    running = ex.submit(until_asked, started)
    gate = threading.Event()
    ex.submit(gate.wait, 30)
    queued = ex.submit(abs, -1)
    assert started.wait(30)
    ex.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    assert running.result(timeout=30) == "stopped when asked"
    gate.set()
    ex.shutdown(wait=True)


def test_a_group_that_ends_asks_its_running_tasks_to_stop(Executor: Any) -> None:
    started = threading.Event()

    def fail_when_ready() -> None:
        assert started.wait(30)
        raise ValueError("boom")

    with Executor(2) as ex:
        with pytest.raises(ExceptionGroup) as caught:
            with ex.group(fail_fast=True) as g:
                patient = g.submit(until_asked, started)
                g.submit(fail_when_ready)
        assert patient.result(timeout=30) == "stopped when asked"
    assert [type(e) for e in caught.value.exceptions] == [ValueError]


def test_keyed_tasks_see_requests_and_deadlines(Keyed: Any) -> None:
    with Keyed(2) as ex:
        fut = ex.submit("k", until_asked)
        wait_running(fut)
        later = ex.submit("k", lambda: current_task().cancel_requested)  # type: ignore[union-attr]
        assert fut.request_cancel()
        assert fut.result(timeout=30) == "stopped when asked"
        assert later.result(timeout=30) is False  # not its parent: the key's next task
        got = ex.submit_task("k", Task("t", lambda: current_task().deadline, timeout=5))  # type: ignore[union-attr]
        assert got.result(timeout=30) is not None


def test_a_long_task_keeps_only_unfinished_children(Executor: Any) -> None:
    # 5000 quick children from one task: all run (the list of children
    # drops ended ones as it grows), and a request made after them still
    # reaches the one that runs at the end.
    with Executor(2) as ex:
        ready = threading.Event()

        def parent() -> str:
            for f in [ex.submit(abs, -i) for i in range(5000)]:
                f.result()
            last = ex.submit(until_asked)
            wait_running(last)
            ready.set()
            until_asked()
            return str(last.result(timeout=30))

        fut = ex.submit(parent)
        assert ready.wait(30)
        assert fut.request_cancel()
        assert fut.result(timeout=30) == "stopped when asked"
