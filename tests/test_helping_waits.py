"""Helping waits: a task that waits (``result()``, ``exception()``) for a
task of its own executor that no worker has taken runs it inline, so
recursive fan-out completes on a small pool (the stdlib pool deadlocks
there); the stale lane entry is skipped uncounted, and shutdown counts
stay exact. Keyed tasks are not run out of their key's order. Both cores."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import bind_core


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(conexe.KeyedExecutor, core)


def test_recursive_fan_out_completes_on_two_workers(Executor: Any) -> None:
    with Executor(2) as ex:

        def fib(n: int) -> int:
            if n < 2:
                return n
            a, b = ex.submit(fib, n - 1), ex.submit(fib, n - 2)
            return int(a.result()) + int(b.result())

        assert ex.submit(fib, 15).result(timeout=120) == 610
        s = ex.stats()
    assert s.submitted == s.completed == 1973  # fib(15)'s call tree
    assert (s.queued, s.failed, s.cancelled) == (0, 0, 0)


def test_the_waiting_worker_runs_the_task_itself(Executor: Any) -> None:
    with Executor(1) as ex:

        def parent() -> tuple[int, int, Any]:
            child = ex.submit(threading.get_ident)
            err = ex.submit(int, "x").exception()  # exception() helps too
            return threading.get_ident(), child.result(), type(err)

        here, child_ran_in, err = ex.submit(parent).result(timeout=30)
    assert here == child_ran_in and err is ValueError


def test_a_helped_tasks_stale_entry_is_not_counted_at_shutdown(Executor: Any) -> None:
    ex = Executor(1)
    gate = threading.Event()
    helped = threading.Event()

    def parent() -> int:
        value = int(ex.submit(abs, -7).result())  # helped: its lane entry stays
        helped.set()
        assert gate.wait(30)
        return value

    fut = ex.submit(parent)
    assert helped.wait(30)
    ex.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert fut.result(timeout=30) == 7
    ex.shutdown(wait=True)
    s = ex.stats()
    assert (s.submitted, s.completed, s.cancelled, s.failed, s.queued) == (2, 2, 0, 0, 0)


def test_a_task_other_workers_run_is_waited_for(Executor: Any) -> None:
    with Executor(2) as ex:
        started = threading.Event()
        gate = threading.Event()

        def slow() -> int:
            started.set()
            assert gate.wait(30)
            return threading.get_ident()

        def parent() -> bool:
            other = ex.submit(slow)
            assert started.wait(30)  # taken by the other worker: nothing to help
            gate.set()
            return other.result() != threading.get_ident()

        assert ex.submit(parent).result(timeout=30) is True


def test_keyed_tasks_are_not_run_out_of_their_keys_order(Keyed: Any) -> None:
    with Keyed(2) as ex:

        def parent() -> bool:
            child = ex.submit("other key", threading.get_ident)
            return child.result() != threading.get_ident()

        assert ex.submit("k", parent).result(timeout=30) is True
