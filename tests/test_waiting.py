"""Every way users wait on conexe futures, on both cores: the stdlib's own
``concurrent.futures.wait()`` (each ``return_when``, with and without a
timeout), ``as_completed()``, a FIRST_COMPLETED refill loop,
``add_done_callback`` per task, ``asyncio.wrap_future``; mixed lists with
stdlib futures; cancellation and exceptions while waited on; the
``_condition`` those helpers hold; and a race of completion against the
waiters' registration (no lost wake-up)."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from conexe import KeyedExecutor, Runner
from support import Blocker, bind_core, wait_until


def boom(msg: str = "boom") -> None:
    raise ValueError(msg)


def no_waiters_left(futs: Any) -> bool:
    return all(not f._waiters for f in futs)


# -- wait() -----------------------------------------------------------------------
def test_wait_all_completed_returns_every_future_done(make_executor: Any) -> None:
    ex = make_executor(4)
    futs = [ex.submit(pow, i, 2) for i in range(2000)]
    done, not_done = cf.wait(futs)
    assert not not_done and done == set(futs)
    assert sorted(f.result() for f in done) == [i * i for i in range(2000)]
    assert no_waiters_left(futs)


def test_wait_all_completed_with_a_timeout_reports_what_is_still_running(
    make_executor: Any,
) -> None:
    ex = make_executor(2)
    blocker = Blocker()
    slow = ex.submit(blocker, "late")
    quick = [ex.submit(abs, -i) for i in range(50)]
    assert blocker.started.wait(10)
    t0 = time.monotonic()
    done, not_done = cf.wait([slow, *quick], timeout=0.2)
    assert time.monotonic() - t0 >= 0.15
    assert not_done == {slow} and done == set(quick)
    assert no_waiters_left([slow, *quick])
    blocker.release()
    done, not_done = cf.wait([slow, *quick], timeout=10)
    assert not not_done and slow.result() == "late"


def test_wait_first_completed_returns_as_soon_as_one_is_done(make_executor: Any) -> None:
    ex = make_executor(2)
    blocker = Blocker()
    slow = ex.submit(blocker)
    quick = Blocker()
    second = ex.submit(quick, True)
    assert blocker.started.wait(10)
    threading.Timer(0.05, quick.release).start()
    done, not_done = cf.wait([slow, second], timeout=10, return_when=cf.FIRST_COMPLETED)
    assert done == {second} and not_done == {slow}
    assert no_waiters_left([slow, second])
    blocker.release()


def test_wait_first_completed_times_out_with_nothing_done(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    slow = ex.submit(blocker)
    queued = ex.submit(abs, -1)
    done, not_done = cf.wait([slow, queued], timeout=0.1, return_when=cf.FIRST_COMPLETED)
    assert not done and not_done == {slow, queued}
    blocker.release()
    assert queued.result(10) == 1


def test_wait_first_exception_stops_at_the_first_failure(make_executor: Any) -> None:
    ex = make_executor(3)
    blocker = Blocker()
    slow = ex.submit(blocker)
    fail_later = Blocker(then=lambda _: boom("later"))
    failing = ex.submit(fail_later)
    fine = ex.submit(abs, -2)
    assert blocker.started.wait(10)
    threading.Timer(0.05, fail_later.release).start()
    done, not_done = cf.wait([slow, failing, fine], timeout=10, return_when=cf.FIRST_EXCEPTION)
    assert failing in done and fine in done and not_done == {slow}
    assert isinstance(failing.exception(), ValueError)
    blocker.release()


def test_wait_first_exception_without_failures_waits_for_all(make_executor: Any) -> None:
    ex = make_executor(4)
    futs = [ex.submit(time.sleep, 0.001) for _ in range(40)]
    done, not_done = cf.wait(futs, timeout=30, return_when=cf.FIRST_EXCEPTION)
    assert not not_done and len(done) == 40


def test_wait_first_exception_with_a_failure_already_done_returns_at_once(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    failed = ex.submit(boom)
    cf.wait([failed])
    blocker = Blocker()
    slow = ex.submit(blocker)
    done, not_done = cf.wait([failed, slow], return_when=cf.FIRST_EXCEPTION)
    assert done == {failed} and not_done == {slow}
    blocker.release()


def test_wait_counts_a_duplicated_future_once(make_executor: Any) -> None:
    ex = make_executor(2)
    f = ex.submit(time.sleep, 0.02)
    done, not_done = cf.wait([f, f, f], timeout=10)
    assert done == {f} and not not_done


def test_wait_rejects_an_unknown_return_when(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    f = ex.submit(blocker)
    with pytest.raises(ValueError, match="Invalid return condition"):
        cf.wait([f], return_when="SOMETIME")
    blocker.release()


# -- as_completed() ------------------------------------------------------------------
def test_as_completed_yields_each_future_once_as_it_completes(make_executor: Any) -> None:
    ex = make_executor(4)
    gates = [Blocker() for _ in range(3)]
    futs = [ex.submit(g, True) for g in gates]
    done_first = ex.submit(abs, -7)
    cf.wait([done_first])
    order = []
    it = cf.as_completed([*futs, done_first, done_first], timeout=10)
    order.append(next(it))
    for g in reversed(gates):  # release 2, 1, 0: they complete in that order
        g.release()
        order.append(next(it))
    assert list(it) == []
    assert order == [done_first, futs[2], futs[1], futs[0]]
    assert no_waiters_left(futs)


def test_as_completed_over_many_tasks(make_executor: Any) -> None:
    ex = make_executor(4)
    futs = [ex.submit(abs, -i) for i in range(3000)]
    seen = [f.result() for f in cf.as_completed(futs)]
    assert sorted(seen) == list(range(3000))
    assert no_waiters_left(futs)


def test_as_completed_times_out_naming_what_is_unfinished(make_executor: Any) -> None:
    ex = make_executor(2)
    blocker = Blocker()
    slow = ex.submit(blocker)
    quick = ex.submit(abs, -1)
    got = []
    with pytest.raises(TimeoutError, match=r"1 \(of 2\) futures unfinished"):
        for f in cf.as_completed([slow, quick], timeout=0.2):
            got.append(f)
    assert got == [quick]
    assert no_waiters_left([slow, quick])  # the generator removed its waiter
    blocker.release()


def test_as_completed_abandoned_midway_leaves_no_waiter(make_executor: Any) -> None:
    ex = make_executor(2)
    blocker = Blocker()
    futs = [ex.submit(abs, -1), ex.submit(blocker)]
    it = cf.as_completed(futs)
    next(it)
    it.close()  # the generator's finally: every future drops the waiter
    assert no_waiters_left(futs)
    blocker.release()


# -- the refill loop, callbacks, asyncio ------------------------------------------------
def test_first_completed_refill_loop_runs_every_task(make_executor: Any) -> None:
    ex = make_executor(4)
    todo = iter(range(2000))
    pending = {ex.submit(abs, -next(todo)) for _ in range(16)}
    total = 0
    while pending:
        done, pending = cf.wait(pending, timeout=30, return_when=cf.FIRST_COMPLETED)
        assert done
        for f in done:
            total += f.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.add(ex.submit(abs, -nxt))
    assert total == sum(range(2000))


def test_add_done_callback_per_task_runs_each_once(make_executor: Any) -> None:
    ex = make_executor(4)
    seen: list[Any] = []
    lock = threading.Lock()
    all_done = threading.Event()
    n = 2000

    def record(f: Any) -> None:
        with lock:
            seen.append(f)
            if len(seen) == n:
                all_done.set()

    futs = [ex.submit(abs, -i) for i in range(n)]
    for f in futs:
        f.add_done_callback(record)
    assert all_done.wait(30)
    assert len(seen) == n and set(seen) == set(futs)


def test_wrap_future_of_futures_made_outside_a_loop(make_executor: Any) -> None:
    ex = make_executor(4)
    futs = [ex.submit(pow, i, 2) for i in range(500)]

    async def main() -> list[Any]:
        return await asyncio.gather(*[asyncio.wrap_future(f) for f in futs])

    assert asyncio.run(main()) == [i * i for i in range(500)]


def test_wrap_future_carries_exceptions_and_cancellation(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    running = ex.submit(blocker)
    queued = ex.submit(abs, -1)
    failed = ex.submit(boom, "in a task")

    async def main() -> None:
        assert blocker.started.wait(10)
        wrapped = asyncio.wrap_future(queued)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wrapped
        blocker.release()
        assert await asyncio.wrap_future(running) is None
        with pytest.raises(ValueError, match="in a task"):
            await asyncio.wrap_future(failed)

    asyncio.run(main())


# -- mixed lists ---------------------------------------------------------------------
def test_mixed_lists_of_conexe_and_stdlib_futures(make_executor: Any) -> None:
    ex = make_executor(2)
    plain: cf.Future[int] = cf.Future()
    with cf.ThreadPoolExecutor(1) as tpe:
        theirs = tpe.submit(time.sleep, 0.05)
        ours = [ex.submit(time.sleep, 0.01) for _ in range(10)]
        threading.Timer(0.05, plain.set_result, (5,)).start()
        everything = [plain, theirs, *ours]
        done, not_done = cf.wait(everything, timeout=10)
        assert not not_done and done == set(everything)
        assert set(cf.as_completed(everything, timeout=10)) == set(everything)

        late: cf.Future[int] = cf.Future()
        blocker = Blocker()
        slow = ex.submit(blocker)
        threading.Timer(0.05, late.set_result, (1,)).start()
        done, not_done = cf.wait([late, slow], timeout=10, return_when=cf.FIRST_COMPLETED)
        assert done == {late} and not_done == {slow}
        blocker.release()
        assert [f for f in cf.as_completed([slow, late], timeout=10)] in (
            [slow, late],
            [late, slow],
        )


# -- cancellation while waited on --------------------------------------------------------
def test_cancelling_a_queued_future_wakes_wait_and_as_completed(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    running = ex.submit(blocker)
    queued = ex.submit(abs, -1)
    assert blocker.started.wait(10)
    out: dict[str, Any] = {}

    def wait_first() -> None:
        out["wait"] = cf.wait([running, queued], timeout=10, return_when=cf.FIRST_COMPLETED)

    def iterate() -> None:
        out["as_completed"] = next(cf.as_completed([running, queued], timeout=10))

    threads = [threading.Thread(target=wait_first), threading.Thread(target=iterate)]
    for t in threads:
        t.start()
    wait_until(lambda: len(queued._waiters) == 2, what="wait() and as_completed() to block")
    assert queued.cancel()
    for t in threads:
        t.join(10)
    assert out["wait"].done == {queued} and out["as_completed"] is queued
    blocker.release()
    assert no_waiters_left([running, queued])


def test_a_stdlib_style_cancel_then_set_running_notifies_waiters(core: ModuleType) -> None:
    fut = core.Future()
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(cf.wait([fut], timeout=10)))
    t.start()
    assert fut.cancel()
    assert fut.set_running_or_notify_cancel() is False
    t.join(10)
    assert results[0].done == {fut}


# -- _condition, as wait()/as_completed() use it ---------------------------------------
def test_completion_waits_for_a_thread_holding_condition(core: ModuleType) -> None:
    fut = core.Future()
    assert fut.set_running_or_notify_cancel()
    setter = threading.Thread(target=fut.set_result, args=(1,))
    with fut._condition:
        setter.start()
        time.sleep(0.05)
        # The state can't change under the lock wait() holds while it
        # reads the state and installs its waiter.
        assert not fut.done()
    setter.join(10)
    assert fut.result(0) == 1


def test_condition_is_reentrant_and_refuses_a_release_it_does_not_hold(core: ModuleType) -> None:
    fut = core.Future()
    cond = fut._condition
    assert cond.acquire() and cond.acquire(timeout=1)
    other: list[bool] = []
    t = threading.Thread(target=lambda: other.append(fut._condition.acquire(blocking=False)))
    t.start()
    t.join(10)
    assert other == [False]
    cond.release()
    cond.release()
    with pytest.raises(RuntimeError):
        cond.release()
    with fut._condition:  # and still usable
        pass


def test_condition_wait_and_notify_work_as_a_condition(core: ModuleType) -> None:
    fut = core.Future()
    with fut._condition:
        assert fut._condition.wait(0.01) is False
        assert fut._condition.wait_for(lambda: True, 0)
    woke: list[bool] = []

    def waiter() -> None:
        with fut._condition:
            woke.append(fut._condition.wait_for(fut.done, 10))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    fut.set_running_or_notify_cancel()
    fut.set_result(3)  # completing notifies the Condition, as the stdlib's does
    t.join(10)
    assert woke == [True]
    with pytest.raises(RuntimeError):
        fut._condition.notify()


def test_condition_acquire_waits_for_the_holder_or_times_out(core: ModuleType) -> None:
    fut = core.Future()
    cond = fut._condition
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with cond:
            holding.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    t0 = time.monotonic()
    assert cond.acquire(timeout=0.05) is False  # held elsewhere: times out
    assert time.monotonic() - t0 >= 0.04
    got: list[float] = []

    def contender() -> None:
        assert cond.acquire()  # blocks until the holder lets go
        got.append(time.monotonic())
        cond.release()

    c = threading.Thread(target=contender)
    c.start()
    time.sleep(0.05)
    assert got == []
    released_at = time.monotonic()
    release.set()
    c.join(10)
    t.join(10)
    assert len(got) == 1 and got[0] >= released_at


def test_condition_excludes_every_other_thread_under_contention(core: ModuleType) -> None:
    # Threads taking turns (and sleeping on the lock while another holds it,
    # with the holder switched out mid-section): never two inside at once,
    # no acquire lost, no thread left asleep.
    cond = core.Future()._condition
    inside, overlaps, entries = [0], [0], [0]

    def hammer() -> None:
        for i in range(2000):
            with cond:
                inside[0] += 1
                if inside[0] != 1:
                    overlaps[0] += 1
                entries[0] += 1
                if i % 100 == 0:
                    time.sleep(0.0005)  # let the others find it held and sleep
                inside[0] -= 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert (overlaps[0], entries[0]) == (0, 8000)
    assert cond.acquire(blocking=False)  # free again, and usable
    cond.release()


# -- the race: completion against registration --------------------------------------------
@pytest.mark.parametrize("how", ["wait", "first_completed", "as_completed"])
def test_no_lost_wake_up_when_completion_races_registration(make_executor: Any, how: str) -> None:
    ex = make_executor(4)
    for _ in range(150):
        start = threading.Barrier(3)

        def task(i: int, start: threading.Barrier = start) -> int:
            start.wait(10)
            return i

        futs = [ex.submit(task, 0), ex.submit(task, 1)]
        start.wait(10)  # the tasks finish while wait() installs its waiter
        if how == "wait":
            done, not_done = cf.wait(futs, timeout=10)
            assert not not_done
        elif how == "first_completed":
            done, _ = cf.wait(futs, timeout=10, return_when=cf.FIRST_COMPLETED)
            assert done
            assert not cf.wait(futs, timeout=10).not_done
        else:
            assert len(list(cf.as_completed(futs, timeout=10))) == 2
        assert no_waiters_left(futs)


def test_many_threads_wait_on_the_same_futures(make_executor: Any) -> None:
    ex = make_executor(4)
    futs = [ex.submit(time.sleep, 0.0005) for _ in range(400)]
    outcomes: list[int] = []
    lock = threading.Lock()

    def one_waiter(k: int) -> None:
        if k % 2:
            n = len(cf.wait(futs, timeout=30).done)
        else:
            n = sum(1 for _ in cf.as_completed(futs, timeout=30))
        with lock:
            outcomes.append(n)

    threads = [threading.Thread(target=one_waiter, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes == [400] * 6
    assert no_waiters_left(futs)


# -- KeyedExecutor and Runner -----------------------------------------------------------
def test_keyed_futures_waited_on_with_wait_keep_per_key_order(core: ModuleType) -> None:
    ex = bind_core(KeyedExecutor, core)(max_workers=4)
    try:
        seen: dict[int, list[int]] = {k: [] for k in range(8)}
        futs = [ex.submit(i % 8, seen[i % 8].append, i) for i in range(800)]
        done, not_done = cf.wait(futs, timeout=30)
        assert not not_done and len(done) == 800
        assert all(seen[k] == list(range(k, 800, 8)) for k in seen)
        more = [ex.submit(k, abs, -k) for k in range(8)]
        assert {f.result() for f in cf.as_completed(more, timeout=30)} == set(range(8))
        done, _ = cf.wait(more, timeout=30, return_when=cf.FIRST_COMPLETED)
        assert done
    finally:
        ex.shutdown(wait=True)


def test_runner_futures_waited_on_with_wait(core: ModuleType) -> None:
    made = iter(range(100))
    runner = bind_core(Runner, core)(lambda: next(made), worker_count=3)
    try:
        futs = [runner.submit(lambda r, i=i: (r, i)) for i in range(600)]
        done, not_done = cf.wait(futs, timeout=30)
        assert not not_done
        assert sorted(f.result()[1] for f in done) == list(range(600))
        assert {f.result()[0] for f in done} <= {0, 1, 2}
        failing = runner.submit(lambda r: boom("resource"))
        done, _ = cf.wait([failing], timeout=30, return_when=cf.FIRST_EXCEPTION)
        assert done == {failing}
    finally:
        runner.stop()


class _Finalized:
    """Garbage whose finalizer runs Python code: a GC pass collecting it
    can hand the GIL to another thread mid-allocation."""

    def __del__(self) -> None:
        for _ in range(50):
            pass


def test_no_callback_is_lost_when_a_gc_pass_runs_while_it_is_added(make_executor: Any) -> None:
    import gc

    ex = make_executor(4)
    old = gc.get_threshold()
    gc.set_threshold(50)
    try:
        for _ in range(40):
            for _ in range(200):
                junk = _Finalized()
                junk.cycle = [junk]  # type: ignore[attr-defined]
            del junk
            seen: list[Any] = []
            all_ran = threading.Event()

            def record(f: Any, seen: list[Any] = seen, all_ran: threading.Event = all_ran) -> None:
                # list.append is atomic: the thread adding the 2000th sees it
                seen.append(f)
                if len(seen) == 2000:
                    all_ran.set()

            for f in [ex.submit(abs, -i) for i in range(2000)]:
                f.add_done_callback(record)
            assert all_ran.wait(10), f"{2000 - len(seen)} callback(s) lost"
    finally:
        gc.set_threshold(*old)


def test_done_callbacks_keep_their_order_through_removals(make_executor: Any) -> None:
    ex = make_executor(1)
    gate = Blocker()
    ex.submit(gate)
    gate.started.wait(10)
    calls: list[str] = []

    def named(name: str) -> Any:
        return lambda f: calls.append(name)

    a, b, c, d = named("a"), named("b"), named("c"), named("d")
    fut = ex.submit(abs, -1)  # queued behind the gate
    fut.add_done_callback(a)
    fut.add_done_callback(b)
    assert fut.remove_done_callback(a) == 1  # the first one goes: b stays first
    fut.add_done_callback(c)
    fut.add_done_callback(a)
    assert fut._done_callbacks == [b, c, a]  # the live list, in order
    fut._done_callbacks.append(d)
    other = ex.submit(abs, -2)
    other.add_done_callback(a)
    assert other.remove_done_callback(a) == 1 and other.remove_done_callback(a) == 0
    other.add_done_callback(b)
    gate.release()
    assert fut.result(10) == 1 and other.result(10) == 2
    wait_until(lambda: len(calls) == 5, what="the callbacks")
    assert calls[:4] == ["b", "c", "a", "d"] and calls[4] == "b"


def test_a_cycle_through_a_done_callback_is_freed_once_the_task_ends(
    make_executor: Any,
) -> None:
    import gc
    import weakref

    ex = make_executor(1)
    gate = Blocker()
    ex.submit(gate)
    gate.started.wait(10)
    ran = threading.Event()
    ran_fut = ex.submit(abs, -1)
    queued = ex.submit(abs, -2)
    refs = []
    for fut in (ran_fut, queued):
        fut.add_done_callback(lambda f, me=fut: ran.set() if me is f else None)  # fut -> cb -> fut
        refs.append(weakref.ref(fut))
    del fut
    assert queued.cancel()  # cancelled while queued: its callback runs too
    del queued
    gate.release()
    assert ran_fut.result(10) == 1 and ran.wait(10)
    del ran_fut
    wait_until(lambda: (gc.collect(), all(r() is None for r in refs))[1], what="the futures freed")
