"""Per-task options through ``conexe.Task`` and ``submit_task``: priority
levels (higher first, FIFO within a level) and start deadlines (a task
still queued at its deadline fails with TimeoutError, on time, without
waiting for a worker). Both cores, through the ``Executor`` fixture."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from typing import Any

import pytest

import conexe
from conexe import Task
from support import Blocker, HoldOnRelease, made_in_a_thread_that_ends


def held_executor(make_executor: Any) -> tuple[Any, Blocker]:
    """A 1-worker executor whose worker is held until the blocker is released."""
    ex = make_executor(1)
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    return ex, blocker


def test_higher_priority_starts_first_and_fifo_within_a_level(make_executor: Any) -> None:
    ex, blocker = held_executor(make_executor)
    order: list[str] = []
    plan = [
        ("a0", 0),
        ("b5", 5),
        ("c1", 1),
        ("d5", 5),
        ("e0", 0),
        ("f1", 1),
        ("g10", 10),
        ("h-3", -3),
        ("i0", 0),
    ]
    futures = [ex.submit_task(Task(name, order.append, (name,), priority=p)) for name, p in plan]
    blocker.release()
    cf.wait(futures, timeout=10)
    assert order == ["g10", "b5", "d5", "c1", "f1", "a0", "e0", "i0", "h-3"]


def test_plain_submit_is_priority_zero(make_executor: Any) -> None:
    ex, blocker = held_executor(make_executor)
    order: list[str] = []
    futures = [
        ex.submit(order.append, "plain-1"),
        ex.submit_task(Task("low", order.append, ("low",), priority=-1)),
        ex.submit_task(Task("high", order.append, ("high",), priority=1)),
        ex.submit(order.append, "plain-2"),
    ]
    blocker.release()
    cf.wait(futures, timeout=10)
    assert order == ["high", "plain-1", "plain-2", "low"]


def test_submit_task_passes_kwargs_and_returns_the_result(make_executor: Any) -> None:
    ex = make_executor(1)
    fut = ex.submit_task(Task("fmt", "{a}-{b}".format, kwargs={"a": 1, "b": 2}))
    assert fut.result(timeout=10) == "1-2"


def test_task_still_queued_at_its_deadline_fails_on_time_without_a_worker(
    make_executor: Any,
) -> None:
    ex, blocker = held_executor(make_executor)
    ran = threading.Event()
    start = time.monotonic()
    fut = ex.submit_task(Task("late", ran.set, start_timeout=0.2))
    try:
        exc = fut.exception(timeout=20)
        waited = time.monotonic() - start
        # The worker is still held: only the deadline can have failed it.
        assert not blocker.gate.is_set()
        assert isinstance(exc, TimeoutError)
        assert "start deadline" in str(exc)
        assert waited >= 0.19  # not before the deadline
    finally:
        blocker.release()
    ex.shutdown(wait=True)
    assert not ran.is_set()  # it never ran, even once a worker was free
    s = ex.stats()
    assert (s.submitted, s.completed, s.failed) == (2, 1, 1)
    assert s.submitted == s.completed + s.failed + s.cancelled + s.queued + s.running


def test_task_started_before_its_deadline_runs_normally(make_executor: Any) -> None:
    ex = make_executor(2)
    fut = ex.submit_task(Task("quick", pow, (2, 5), start_timeout=30))
    assert fut.result(timeout=10) == 32


def test_deadline_does_not_cut_a_task_that_already_runs(make_executor: Any) -> None:
    ex = make_executor(1)
    slow = Blocker(then=lambda _: "done")

    # Warm the worker first: a loaded CI machine can take longer than a
    # short deadline to start a thread, and then the task rightly expires.
    assert ex.submit(int, "1").result(timeout=10) == 1
    fut = ex.submit_task(Task("slow", slow, start_timeout=0.5))
    assert slow.started.wait(10)
    # Past its start deadline while running: it still completes.
    assert not threading.Event().wait(0.6)
    slow.release()
    assert fut.result(timeout=10) == "done"


def test_a_task_expired_while_queued_is_done_before_a_worker_can_skip_it(
    make_executor: Any,
) -> None:
    # The reaper fails the task in one step, PENDING -> FINISHED: had it
    # passed through RUNNING, the worker meeting the task meanwhile would
    # count it failed and skip it, and shutdown(wait=True) would return with
    # the future not done. The task's argument is dropped once it is done;
    # its finalizer lets the worker go on and holds the reaper while the
    # executor drains and shuts down.
    ex, blocker = held_executor(make_executor)
    hold = HoldOnRelease(then=blocker.release)
    late = made_in_a_thread_that_ends(
        lambda: ex.submit_task(Task("late", id, (hold.arg(),), start_timeout=0.01))
    )
    try:
        assert hold.released.wait(10)
        ex.shutdown(wait=True)
        done_at_shutdown = late.done()
    finally:
        hold.go.set()
    assert done_at_shutdown
    assert type(late.exception(timeout=10)) is TimeoutError


def test_expired_task_is_not_kept_alive_until_its_deadline(make_executor: Any) -> None:
    import gc
    import weakref

    class Payload:
        pass

    ex = make_executor(1)
    payload = Payload()
    ref = weakref.ref(payload)
    fut = ex.submit_task(Task("t", id, (payload,), start_timeout=3600))
    fut.result(timeout=10)
    del payload, fut
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize(
    "kwargs, exc_type, message",
    [
        ({"priority": 1.5}, TypeError, "priority must be an int"),
        ({"priority": 2**40}, ValueError, "priority must fit in 32 bits"),
        ({"start_timeout": -1}, ValueError, "start_timeout must be >= 0"),
        ({"start_timeout": "soon"}, TypeError, "start_timeout must be a number"),
        ({"args": "abc"}, TypeError, "Task args must be a tuple or list"),
        ({"kwargs": [1]}, TypeError, "Task kwargs must be a dict"),
    ],
)
def test_bad_task_options_fail_when_the_task_is_made(
    kwargs: dict[str, Any], exc_type: type[Exception], message: str
) -> None:
    with pytest.raises(exc_type, match=message):
        Task("t", abs, **kwargs)


def test_submit_task_rejects_what_is_not_a_task(make_executor: Any) -> None:
    ex = make_executor(1)
    with pytest.raises(TypeError, match="takes a conexe.Task"):
        ex.submit_task(abs)
    assert isinstance(Task("t", abs), conexe.Task)
