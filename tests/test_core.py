"""The core (both implementations): the future's protocol, the lanes, the
wake-up policy, the garbage collector's view of futures, and the twin's
parity with the extension."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import logging
import threading
import weakref
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from conexe._impl import cores
from support import FREE_THREADED, Blocker, wait_until


class Pool:
    """An engine with ``n`` worker threads, for driving the core directly."""

    def __init__(self, core: ModuleType, n: int, **engine_kw: Any) -> None:
        self.engine = core.Engine(**engine_kw)
        self.workers = [core.Worker() for _ in range(n)]
        self.engine.add_workers(n)
        self.threads = [
            threading.Thread(target=self.engine.worker_loop, args=(w,)) for w in self.workers
        ]
        for t in self.threads:
            t.start()

    def wait_parked(self, n: int) -> None:
        wait_until(lambda: self.engine.stats()["idle"] >= n, what=f"{n} parked workers")
        assert self.engine.stats()["idle"] == n

    def close(self) -> None:
        self.engine.close()
        for t in self.threads:
            t.join()


@pytest.fixture
def pool(core: ModuleType) -> Iterator[Any]:
    made: list[Pool] = []

    def make(n: int, **kw: Any) -> Pool:
        p = Pool(core, n, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# -- the future's protocol ----------------------------------------------------


def test_future_is_a_concurrent_futures_future(core: ModuleType) -> None:
    f = core.Future()
    assert isinstance(f, cf.Future)
    assert not f.done() and not f.running() and not f.cancelled()
    assert f.set_running_or_notify_cancel() is True
    assert f.running()
    f.set_result(42)
    assert f.done() and f.result() == 42 and f.exception() is None
    assert "state=finished returned int" in repr(f)


def test_future_set_twice_raises_invalid_state(core: ModuleType) -> None:
    f = core.Future()
    f.set_result(1)
    with pytest.raises(cf.InvalidStateError):
        f.set_result(2)
    with pytest.raises(cf.InvalidStateError):
        f.set_exception(ValueError())
    assert f.result() == 1


def test_future_exception_is_raised_by_result(core: ModuleType) -> None:
    f = core.Future()
    err = KeyError("k")
    f.set_exception(err)
    assert f.exception() is err
    with pytest.raises(KeyError):
        f.result()
    assert "raised KeyError" in repr(f)


def test_future_result_timeout(core: ModuleType) -> None:
    f = core.Future()
    with pytest.raises(TimeoutError):
        f.result(timeout=0.01)
    with pytest.raises(TimeoutError):
        f.exception(timeout=0)


def test_cancelled_future_wakes_blocked_waiter(core: ModuleType) -> None:
    f = core.Future()
    got: list[str] = []

    def waiter() -> None:
        try:
            f.result()
        except cf.CancelledError:
            got.append("cancelled")

    t = threading.Thread(target=waiter)
    t.start()
    assert f.cancel()
    t.join(5)
    assert got == ["cancelled"]
    assert f.set_running_or_notify_cancel() is False


@pytest.mark.thread_unsafe(
    reason="caplog.at_level sets a logger's level; threads restoring it at once can leave it raised"
)
def test_callbacks_run_once_in_order_and_raising_one_is_logged(
    core: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    f = core.Future()
    seen: list[int] = []
    f.add_done_callback(lambda _: seen.append(1))
    f.add_done_callback(lambda _: 1 / 0)
    f.add_done_callback(lambda _: seen.append(3))
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        f.set_result(None)
    assert seen == [1, 3]
    assert "exception calling callback" in caplog.text
    f.add_done_callback(lambda _: seen.append(4))  # already done: runs now
    assert seen == [1, 3, 4]


def test_many_threads_blocked_on_one_future_all_wake(core: ModuleType) -> None:
    f = core.Future()
    results: list[int] = []
    lock = threading.Lock()

    def waiter() -> None:
        v = f.result(timeout=10)
        with lock:
            results.append(v)

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for t in threads:
        t.start()
    f.set_result(7)
    for t in threads:
        t.join(10)
    assert results == [7] * 8


def test_wait_and_as_completed_accept_core_futures(core: ModuleType) -> None:
    fs = [core.Future() for _ in range(4)]
    fs[0].set_result(0)
    fs[1].cancel()
    done, not_done = cf.wait(fs, timeout=0)
    assert done == {fs[0], fs[1]} and not_done == {fs[2], fs[3]}

    def finish() -> None:
        fs[2].set_result(2)
        fs[3].set_exception(ValueError())

    threading.Timer(0.02, finish).start()
    assert set(cf.as_completed(fs, timeout=10)) == set(fs)
    done, _ = cf.wait(fs, return_when=cf.FIRST_EXCEPTION)
    assert fs[3] in done


# -- lanes and priorities -----------------------------------------------------


def test_higher_priority_first_fifo_within_a_level(core: ModuleType, pool: Any) -> None:
    p = pool(1)
    blocker = Blocker()
    p.engine.submit(blocker, (), None)
    assert blocker.started.wait(10)  # the worker is busy: everything below queues
    order: list[tuple[int, int]] = []
    prios = [0, 3, -2, 3, 7, 0, -2, 7, 1]
    try:
        fs = [
            p.engine.submit_with(order.append, ((prio, i),), None, priority=prio)
            for i, prio in enumerate(prios)
        ]
        assert p.engine.stats()["priority_queued"] == 5
    finally:
        blocker.release()
    for f in fs:
        f.result(timeout=10)
    expected = sorted(((prio, i) for i, prio in enumerate(prios)), key=lambda t: (-t[0], t[1]))
    assert order == expected


def test_ring_grows_and_wraps_without_losing_order(core: ModuleType, pool: Any) -> None:
    p = pool(1)
    blocker = Blocker()
    p.engine.submit(blocker, (), None)
    out: list[int] = []
    fs = [p.engine.submit(out.append, (i,), None) for i in range(5000)]
    blocker.release()
    for f in fs:
        f.result(timeout=10)
    assert out == list(range(5000))


def test_counters_add_up(core: ModuleType, pool: Any) -> None:
    p = pool(2)
    fs = [p.engine.submit(divmod, (1, i % 3), None) for i in range(300)]
    cf.wait(fs)
    p.wait_parked(2)
    s = p.engine.stats()
    assert s["submitted"] == 300
    assert s["failed"] == 100 and s["completed"] == 200
    accounted = s["completed"] + s["failed"] + s["cancelled"] + s["queued"] + s["running"]
    assert s["submitted"] == accounted


# -- waking workers -----------------------------------------------------------


def test_one_task_wakes_one_of_many_idle_workers(core: ModuleType, pool: Any) -> None:
    p = pool(16)
    p.wait_parked(16)
    before = p.engine.stats()["wakeups"]
    p.engine.submit(int, (), None).result(timeout=10)
    p.wait_parked(16)
    assert p.engine.stats()["wakeups"] - before == 1


def test_flood_of_submits_costs_far_fewer_wakeups_than_tasks(core: ModuleType, pool: Any) -> None:
    p = pool(4)
    p.wait_parked(4)
    before = p.engine.stats()["wakeups"]
    fs = [p.engine.submit(int, (), None) for _ in range(20000)]
    for f in fs:
        f.result(timeout=30)
    # With the GIL, a woken worker drains many tasks before the producer
    # runs again (4-9 wake-ups in 40 quiet runs here; < 10 % allowed). With it
    # off the producer runs in parallel, a worker that finds the queue empty
    # parks, and the next push wakes it: 100-5131 on the C core in 40 quiet
    # runs on 2 cores, more under load, so the bound is half the tasks, still
    # far from the one wake-up per task of a semaphore-per-submit pool.
    bound = 10000 if FREE_THREADED else 2000
    assert p.engine.stats()["wakeups"] - before < bound


# -- the garbage collector ----------------------------------------------------


def test_cycle_through_arguments_is_collected_after_the_task(core: ModuleType, pool: Any) -> None:
    p = pool(1)

    class Holder:
        pass

    h = Holder()
    h.futures = []  # type: ignore[attr-defined]
    f = p.engine.submit(len, (h.futures,), None)
    h.futures.append(f)  # type: ignore[attr-defined]
    f.result(timeout=10)
    ref = weakref.ref(h)
    del h, f
    gc.collect()
    assert ref() is None


def test_future_holding_its_own_exception_cycle_is_collected(core: ModuleType, pool: Any) -> None:
    p = pool(1)

    def boom() -> None:
        raise ValueError("x")

    f = p.engine.submit(boom, (), None)
    with pytest.raises(ValueError):
        f.result(timeout=10)  # the traceback now refers to this frame, holding f
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None


def test_result_is_released_when_the_future_is_dropped(core: ModuleType, pool: Any) -> None:
    p = pool(1)

    class Big:
        pass

    f = p.engine.submit(Big, (), None)
    ref = weakref.ref(f.result(timeout=10))
    del f
    gc.collect()
    assert ref() is None


# -- the two cores agree --------------------------------------------------------


@pytest.mark.c_extension
def test_twin_and_extension_give_the_same_messages() -> None:
    assert "c" in cores, "conexe._core is not built: build it, or pass --no-c-extensions"
    msgs = []
    for core in (cores["c"], cores["py"]):
        e = core.Engine(1)
        e.submit(int, (), None)
        got = []
        for call in (
            lambda e=e: e.submit(int, (), None),
            lambda e=e: e.submit(3, (), None),
            lambda core=core: core.Engine(-1),
        ):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - comparing messages
                got.append((type(exc).__name__, str(exc)))
        e.close()
        try:
            e.submit(int, (), None)
        except RuntimeError as exc:
            got.append(("RuntimeError", str(exc)))
        msgs.append(got)
    assert msgs[0] == msgs[1]
    assert len(msgs[0]) == 4
