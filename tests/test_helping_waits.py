"""Helping waits: a task that waits for a task of its own executor that no
worker has taken runs it inline, so recursive fan-out completes on a small
pool (the stdlib pool deadlocks there), whichever way it waits:
``result()``/``exception()``, ``concurrent.futures.wait()``/``as_completed()``,
or a submit into a full queue with ``on_full="block"``. The stale lane entry
is skipped uncounted and shutdown counts stay exact. Keyed tasks run only in
their key's turn; priorities hold; waits off the pool, or on another
executor's tasks, never run anything. Both cores."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import bind_core


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


FIB = {"c": (25, 242785), "py": (18, 8361)}  # n, and its call tree's size


def test_fib_25_by_nested_submits_completes_on_two_workers(Executor: Any, core: ModuleType) -> None:
    n, calls = FIB["py" if core.__name__.endswith("_py") else "c"]
    with Executor(2) as ex:

        def fib(k: int) -> int:
            if k < 2:
                return k
            a, b = ex.submit(fib, k - 1), ex.submit(fib, k - 2)
            return int(a.result()) + int(b.result())

        assert ex.submit(fib, n).result(timeout=300) == {25: 75025, 18: 2584}[n]
        s = ex.stats()
    assert s.submitted == s.completed == calls
    assert (s.queued, s.failed, s.cancelled) == (0, 0, 0)


def fan_out_wait_all(ex: Any, fn: Any, k: int) -> int:
    fs = [ex.submit(fn, k - 1), ex.submit(fn, k - 2)]
    done, not_done = cf.wait(fs)
    assert not not_done
    return sum(int(f.result()) for f in done)


def fan_out_as_completed(ex: Any, fn: Any, k: int) -> int:
    fs = [ex.submit(fn, k - 1), ex.submit(fn, k - 2)]
    return sum(int(f.result()) for f in cf.as_completed(fs, timeout=120))


def fan_out_first_completed(ex: Any, fn: Any, k: int) -> int:
    fs = {ex.submit(fn, k - 1), ex.submit(fn, k - 2)}
    total = 0
    while fs:
        done, fs = cf.wait(fs, return_when=cf.FIRST_COMPLETED)
        assert done
        total += sum(int(f.result()) for f in done)
    return total


@pytest.mark.parametrize(
    "fan_out", [fan_out_wait_all, fan_out_as_completed, fan_out_first_completed]
)
def test_recursive_fan_out_through_cf_waits_completes_on_two_workers(
    Executor: Any, fan_out: Any
) -> None:
    with Executor(2) as ex:

        def fib(k: int) -> int:
            return k if k < 2 else fan_out(ex, fib, k)

        assert ex.submit(fib, 14).result(timeout=120) == 377
        s = ex.stats()
    assert s.submitted == s.completed == 1219  # fib(14)'s call tree
    assert (s.queued, s.failed, s.cancelled) == (0, 0, 0)


def test_cf_wait_on_a_worker_runs_the_tasks_itself(Executor: Any) -> None:
    with Executor(1) as ex:

        def parent() -> tuple[int, set[int]]:
            fs = [ex.submit(threading.get_ident) for _ in range(5)]
            done, _ = cf.wait(fs, timeout=30)
            return threading.get_ident(), {f.result() for f in done}

        here, ran_in = ex.submit(parent).result(timeout=30)
    assert ran_in == {here}


def test_as_completed_on_a_worker_runs_one_task_a_step(Executor: Any) -> None:
    with Executor(1) as ex:

        def parent() -> list[tuple[str, int]]:
            log: list[tuple[str, int]] = []
            fs = [ex.submit(log.append, ("ran", i)) for i in range(3)]
            for f in cf.as_completed(fs, timeout=30):
                log.append(("yielded", fs.index(f)))
            return log

        log = ex.submit(parent).result(timeout=30)
    assert [what for what, _ in log] == ["ran", "yielded"] * 3
    assert sorted(i for what, i in log if what == "yielded") == [0, 1, 2]


def test_waits_off_the_pool_or_on_another_executors_tasks_run_nothing(
    Executor: Any,
) -> None:
    gate = threading.Event()
    with Executor(1) as busy, Executor(1) as ex:
        busy.submit(gate.wait, 30)
        queued = busy.submit(threading.get_ident)
        # Off the pool (this thread): wait() only waits.
        done, not_done = cf.wait([queued], timeout=0.05)
        assert (done, not_done) == (set(), {queued})

        def other_executor() -> tuple[bool, bool]:
            done, _ = cf.wait([queued], timeout=0.05)
            with pytest.raises(cf.TimeoutError):
                queued.result(timeout=0.05)
            return bool(done), queued.done()

        assert ex.submit(other_executor).result(timeout=30) == (False, False)
        gate.set()
        assert queued.result(timeout=30) != threading.get_ident()


def test_a_submit_into_a_full_queue_on_a_worker_runs_queued_tasks(Executor: Any) -> None:
    with Executor(1, max_queue_size=2, on_full="block") as ex:

        def parent() -> int:
            children = [ex.submit(abs, -i) for i in range(50)]  # 2 fit in the queue
            return sum(int(f.result()) for f in children)

        assert ex.submit(parent).result(timeout=60) == sum(range(50))
        s = ex.stats()
    assert s.submitted == s.completed == 51
    assert (s.queued, s.failed, s.cancelled, s.rejected) == (0, 0, 0, 0)


def test_a_full_queue_is_helped_in_priority_order(Executor: Any) -> None:
    from conexe import Task

    with Executor(1, max_queue_size=2, on_full="block") as ex:

        def parent() -> list[str]:
            order: list[str] = []
            ex.submit_task(Task("low", order.append, ("low",), priority=-1))
            ex.submit_task(Task("high", order.append, ("high",), priority=1))
            ex.submit_task(Task("third", order.append, ("third",)))  # full: helps once
            order.append("room")
            return order

        order = ex.submit(parent).result(timeout=30)
        ex.shutdown(wait=True)
    assert order[:2] == ["high", "room"]
    assert sorted(order[2:]) == ["low", "third"]


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(conexe.KeyedExecutor, core)


def test_a_keyed_task_in_its_lane_is_run_by_the_waiting_worker(Keyed: Any) -> None:
    with Keyed(1) as ex:

        def parent() -> tuple[int, list[int]]:
            # The first of "b" is in a lane; each one's end puts the next there.
            fs = [ex.submit("b", threading.get_ident) for _ in range(3)]
            return threading.get_ident(), [f.result() for f in fs]

        here, ran_in = ex.submit("a", parent).result(timeout=30)
        s = ex.stats()
    assert ran_in == [here] * 3
    assert (s.submitted, s.completed, s.pending, s.active_keys) == (4, 4, 0, 0)


def test_a_keyed_task_behind_its_keys_running_task_is_waited_for(Keyed: Any) -> None:
    gate = threading.Event()
    order: list[str] = []
    with Keyed(2) as ex:
        started = threading.Event()

        def first() -> None:
            started.set()
            assert gate.wait(30)
            order.append("b1")

        ex.submit("b", first)
        assert started.wait(30)

        def parent() -> bool:
            second = ex.submit("b", order.append, "b2")  # behind b1: not its turn
            with pytest.raises(cf.TimeoutError):
                second.result(timeout=0.1)
            done, _ = cf.wait([second], timeout=0.1)
            gate.set()
            second.result(timeout=30)
            return not done

        assert ex.submit("a", parent).result(timeout=30) is True
    assert order == ["b1", "b2"]
