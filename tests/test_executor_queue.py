"""The bounded queue: ``max_queue_size`` and each ``on_full`` policy
("raise", "block" with and without ``block_timeout``, "caller_runs"), and
the ``rejected`` counter. Both cores, through the ``Executor`` fixture."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import conexe
from support import Blocker


def full_executor(make_executor: Any, size: int = 2, **kwargs: Any) -> tuple[Any, Any, list[Any]]:
    """A 1-worker executor whose worker is held and whose queue is full.

    Returns (executor, blocker, queued futures); ``blocker.release()`` frees
    the worker."""
    ex = make_executor(1, max_queue_size=size, **kwargs)
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    queued = [ex.submit(abs, -i) for i in range(size)]
    assert ex.stats().queued == size
    return ex, blocker, queued


def test_full_queue_raises_queue_full_by_default_and_counts_the_rejection(
    make_executor: Any,
) -> None:
    ex, blocker, queued = full_executor(make_executor)
    with pytest.raises(conexe.QueueFull, match="max_queue_size=2"):
        ex.submit(abs, -99)
    with pytest.raises(conexe.QueueFull):
        ex.submit_task(conexe.Task("t", abs, (-99,)))
    s = ex.stats()
    assert (s.rejected, s.submitted, s.queued) == (2, 3, 2)
    blocker.release()
    assert [f.result(timeout=10) for f in queued] == [0, 1]
    assert ex.submit(abs, -3).result(timeout=10) == 3  # room again


def test_queue_full_is_an_exception_users_can_catch_broadly() -> None:
    assert issubclass(conexe.QueueFull, Exception)


def test_block_policy_waits_for_room_then_queues_the_task(make_executor: Any) -> None:
    ex, blocker, queued = full_executor(make_executor, on_full="block")
    returned = threading.Event()
    result: list[Any] = []

    def producer() -> None:
        result.append(ex.submit(abs, -42))
        returned.set()

    t = threading.Thread(target=producer)
    t.start()
    # Still blocked: nothing left the queue yet.
    assert not returned.wait(0.2)
    assert ex.stats().rejected == 0
    blocker.release()  # the worker takes a task: room for the producer
    assert returned.wait(10)
    t.join(10)
    assert result[0].result(timeout=10) == 42
    assert [f.result(timeout=10) for f in queued] == [0, 1]
    assert ex.stats().rejected == 0


def test_block_policy_with_timeout_raises_queue_full_when_no_room_comes(
    make_executor: Any,
) -> None:
    ex, blocker, queued = full_executor(make_executor, on_full="block", block_timeout=0.1)
    try:
        with pytest.raises(conexe.QueueFull):
            ex.submit(abs, -1)
        assert ex.stats().rejected == 1
        assert ex.stats().queued == 2
    finally:
        blocker.release()
    assert [f.result(timeout=10) for f in queued] == [0, 1]


def test_blocked_producer_is_released_by_shutdown(make_executor: Any) -> None:
    ex, blocker, queued = full_executor(make_executor, on_full="block")
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            ex.submit(abs, -1)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=producer)
    t.start()
    ex.shutdown(wait=False, cancel_futures=True)
    t.join(10)
    blocker.release()
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


def test_caller_runs_policy_runs_the_task_in_the_calling_thread(make_executor: Any) -> None:
    ex, blocker, queued = full_executor(make_executor, on_full="caller_runs")
    try:
        fut = ex.submit(threading.get_ident)
        assert fut.done()
        assert fut.result() == threading.get_ident()
        failing = ex.submit(divmod, 1, 0)
        assert isinstance(failing.exception(), ZeroDivisionError)
        assert ex.stats().rejected == 2
        assert ex.stats().queued == 2
    finally:
        blocker.release()
    assert [f.result(timeout=10) for f in queued] == [0, 1]


def test_unbounded_queue_never_rejects(make_executor: Any) -> None:
    ex = make_executor(1)  # max_queue_size=0: unbounded
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    futures = [ex.submit(abs, -i) for i in range(5000)]
    assert ex.stats().queued == 5000
    blocker.release()
    assert [f.result(timeout=30) for f in futures][-1] == 4999
    assert ex.stats().rejected == 0


@pytest.mark.parametrize("on_full", ["raise", "block", "caller_runs"])
@pytest.mark.parametrize("chunksize", [None, 1, 7])
@pytest.mark.parametrize("n", [3000, 300])  # 300: the whole input in the first read
def test_map_never_overflows_a_bounded_queue_by_itself(
    make_executor: Any, on_full: str, chunksize: int | None, n: int
) -> None:
    ex = make_executor(4, max_queue_size=2, on_full=on_full)
    results = list(ex.map(abs, range(-n, 0), chunksize=chunksize))
    assert results == list(range(n, 0, -1))
    s = ex.stats()
    assert s.rejected == 0
    assert s.submitted == s.completed


def test_map_on_a_queue_full_of_other_work_raises_queue_full_and_leaves_nothing_behind(
    make_executor: Any,
) -> None:
    ex, blocker, queued = full_executor(make_executor)
    ran: list[int] = []
    try:
        with pytest.raises(conexe.QueueFull):
            ex.map(ran.append, range(10))
    finally:
        blocker.release()
    assert [f.result(timeout=10) for f in queued] == [0, 1]
    ex.shutdown(wait=True)
    assert ran == []
    s = ex.stats()
    assert s.submitted == s.completed + s.failed + s.cancelled
