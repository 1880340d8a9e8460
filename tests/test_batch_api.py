"""The Go ``conexe`` batch API on ConcurrentExecutor: ``Task``,
``enqueue_task`` (never blocks, QueueFull when full), ``start_execution``,
``wait_for_completion`` (every task of the batch, cancelled ones included)
and ``close``. Both cores, through the ``Executor`` fixture."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any

import pytest

import conexe
from conexe import Task, TaskResponse
from support import Blocker


def fail(message: str) -> None:
    raise ValueError(message)


def test_enqueued_tasks_wait_for_start_execution_then_all_are_reported(
    make_executor: Any,
) -> None:
    ex = make_executor(2)
    ex.enqueue_task(Task("square", pow, (7, 2)))
    ex.enqueue_task(Task("kw", "{x}!".format, kwargs={"x": "hi"}))
    ex.enqueue_task(Task("bad", fail, ("nope",)))
    assert ex.stats().submitted == 0  # staged, not queued
    ex.start_execution()
    out = ex.wait_for_completion(timeout=10)
    assert set(out) == {"square", "kw", "bad"}
    assert out["square"] == TaskResponse("square", value=49)
    assert out["square"].ok
    assert out["kw"].value == "hi!"
    assert not out["bad"].ok
    assert isinstance(out["bad"].error, ValueError)
    assert str(out["bad"].error) == "nope"


def test_wait_before_start_execution_says_what_to_do(make_executor: Any) -> None:
    ex = make_executor(1)
    ex.enqueue_task(Task("t", abs, (-1,)))
    with pytest.raises(RuntimeError, match="start_execution"):
        ex.wait_for_completion()
    ex.start_execution()
    assert ex.wait_for_completion(timeout=10)["t"].value == 1


def test_enqueue_task_never_blocks_and_raises_queue_full_when_full(make_executor: Any) -> None:
    # Even with on_full="block", enqueue_task must not block.
    ex = make_executor(1, max_queue_size=2, on_full="block")
    ex.enqueue_task(Task("a", abs, (-1,)))
    ex.enqueue_task(Task("b", abs, (-2,)))
    with pytest.raises(conexe.QueueFull):
        ex.enqueue_task(Task("c", abs, (-3,)))
    ex.start_execution()
    assert {k: r.value for k, r in ex.wait_for_completion(timeout=10).items()} == {
        "a": 1,
        "b": 2,
    }

    # While running: the worker held, the queue full.
    blocker = Blocker()
    ex.enqueue_task(Task("hold", blocker, (True,)))
    assert blocker.started.wait(10)
    ex.enqueue_task(Task("q1", abs, (-1,)))
    ex.enqueue_task(Task("q2", abs, (-2,)))
    try:
        with pytest.raises(conexe.QueueFull):
            ex.enqueue_task(Task("q3", abs, (-3,)))
    finally:
        blocker.release()
    assert set(ex.wait_for_completion(timeout=10)) == {"hold", "q1", "q2"}


def test_enqueue_while_execution_runs_starts_at_once(make_executor: Any) -> None:
    ex = make_executor(2)
    ex.start_execution()
    done = threading.Event()
    ex.enqueue_task(Task("signal", done.set))
    assert done.wait(10)  # ran without another start_execution()
    ex.enqueue_task(Task("more", abs, (-5,)))
    out = ex.wait_for_completion(timeout=10)
    assert set(out) == {"signal", "more"}
    assert out["more"].value == 5


def test_a_second_batch_reports_only_its_own_tasks(make_executor: Any) -> None:
    ex = make_executor(2)
    ex.enqueue_task(Task("first", abs, (-1,)))
    ex.start_execution()
    assert set(ex.wait_for_completion(timeout=10)) == {"first"}
    ex.enqueue_task(Task("second", abs, (-2,)))
    ex.enqueue_task(Task("first", abs, (-3,)))  # an id may be reused in a new batch
    out = ex.wait_for_completion(timeout=10)
    assert set(out) == {"second", "first"}
    assert out["first"].value == 3
    assert ex.wait_for_completion(timeout=10) == {}


def test_duplicate_id_in_a_batch_raises_value_error(make_executor: Any) -> None:
    ex = make_executor(1)
    ex.enqueue_task(Task("same", abs, (-1,)))
    with pytest.raises(ValueError, match="'same' is already in this batch"):
        ex.enqueue_task(Task("same", abs, (-2,)))
    ex.start_execution()
    assert ex.wait_for_completion(timeout=10)["same"].value == 1


def test_tasks_cancelled_by_shutdown_are_reported_with_cancelled_error(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    ex.start_execution()
    ex.enqueue_task(Task("hold", blocker, (True,)))
    assert blocker.started.wait(10)
    for i in range(3):
        ex.enqueue_task(Task(f"queued-{i}", abs, (-i,)))
    ex.shutdown(wait=False, cancel_futures=True)
    blocker.release()
    out = ex.wait_for_completion(timeout=10)
    assert set(out) == {"hold", "queued-0", "queued-1", "queued-2"}
    assert out["hold"].value is True
    for i in range(3):
        assert isinstance(out[f"queued-{i}"].error, cf.CancelledError)


def test_close_cancels_never_started_tasks_and_reports_them(make_executor: Any) -> None:
    ex = make_executor(1)
    ran: list[str] = []
    ex.enqueue_task(Task("never-1", ran.append, ("1",)))
    ex.enqueue_task(Task("never-2", ran.append, ("2",)))
    ex.close()
    out = ex.wait_for_completion(timeout=10)
    assert set(out) == {"never-1", "never-2"}
    assert all(isinstance(r.error, cf.CancelledError) for r in out.values())
    assert ran == []
    with pytest.raises(RuntimeError, match="after close"):
        ex.enqueue_task(Task("late", abs, (1,)))


def test_close_after_start_runs_everything_enqueued(make_executor: Any) -> None:
    ex = make_executor(2)
    ex.start_execution()
    for i in range(20):
        ex.enqueue_task(Task(f"t{i}", abs, (-i,)))
    ex.close()
    out = ex.wait_for_completion(timeout=10)
    assert {k: r.value for k, r in out.items()} == {f"t{i}": i for i in range(20)}


def test_wait_for_completion_timeout_keeps_the_batch(make_executor: Any) -> None:
    ex = make_executor(1)
    slow = Blocker()
    ex.start_execution()
    ex.enqueue_task(Task("slow", slow, (True,)))
    with pytest.raises(TimeoutError, match="1 tasks of the batch are not done"):
        ex.wait_for_completion(timeout=0.05)
    slow.release()
    assert ex.wait_for_completion(timeout=10)["slow"].value is True


def test_enqueue_task_rejects_what_is_not_a_task(make_executor: Any) -> None:
    ex = make_executor(1)
    with pytest.raises(TypeError, match="takes a conexe.Task"):
        ex.enqueue_task(("id", abs))
    with pytest.raises(TypeError, match="Task id must be a str"):
        Task(1, abs)  # type: ignore[arg-type]


def test_batch_tasks_keep_their_priority(make_executor: Any) -> None:
    ex = make_executor(1)
    order: list[str] = []
    for name, p in [("low", 0), ("high", 9), ("mid", 4)]:
        ex.enqueue_task(Task(name, order.append, (name,), priority=p))
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    ex.start_execution()  # all three queue behind the held worker
    blocker.release()
    ex.wait_for_completion(timeout=10)
    assert order == ["high", "mid", "low"]
