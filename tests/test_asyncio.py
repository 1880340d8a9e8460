"""conexe futures under asyncio, on both cores.

A task submitted from inside a running event loop gets a future bound to
that loop: a plain concurrent.futures.Future until asyncio looks at it, and
from then on, inside that loop, the asyncio future ``wrap_future`` would
have made (``loop.run_in_executor`` returns it as is). These tests hold it
to asyncio's semantics inside its loop, to concurrent.futures' outside it,
and check that completions reach the loop in coalesced batches.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from conexe import KeyedExecutor
from support import FREE_THREADED, Blocker, bind_core, each_worker_takes_a_task, let_worker_run


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the fast path ------------------------------------------------------------


def test_run_in_executor_returns_the_executors_own_future(make_executor: Any) -> None:
    ex = make_executor(2)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(ex, pow, 2, 5)
        assert isinstance(fut, cf.Future)
        assert asyncio.isfuture(fut)
        assert fut.get_loop() is loop
        return await fut

    assert run(main()) == 32


def test_submit_from_a_loop_is_awaitable_without_wrapping(make_executor: Any) -> None:
    ex = make_executor(2)

    async def main() -> Any:
        results = [await ex.submit(divmod, 7, 2)]
        with pytest.raises(ZeroDivisionError):
            await ex.submit(divmod, 1, 0)
        results.append(await asyncio.wrap_future(ex.submit(abs, -3)))
        return results

    assert run(main()) == [(3, 1), 3]


def test_a_future_made_outside_any_loop_is_adopted_by_the_first_loop_that_looks(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    fut = ex.submit(pow, 3, 2)
    assert not asyncio.isfuture(fut)  # no loop runs here
    with pytest.raises(RuntimeError, match="not submitted from a running event loop"):
        fut.get_loop()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        assert asyncio.wrap_future(fut) is fut  # no second future
        assert fut.get_loop() is loop
        return await fut

    assert run(main()) == 9
    assert not asyncio.isfuture(fut)  # outside its loop, a concurrent future
    assert fut.result() == 9


def test_futures_made_outside_reach_the_loop_in_one_wakeup_per_batch(
    make_executor: Any,
) -> None:
    ex = make_executor(2)
    n = 500
    hold = Blocker()
    blockers = [ex.submit(hold, True) for _ in range(2)]  # hold both workers
    futs = [ex.submit(abs, -i) for i in range(n)]  # no loop runs yet

    async def main() -> int:
        loop = asyncio.get_running_loop()
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return real(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        gathered = asyncio.gather(*[asyncio.wrap_future(f) for f in futs])
        hold.release()
        cf.wait(futs, timeout=30)
        each_worker_takes_a_task(ex.submit, workers=2)  # see the test above
        assert await gathered == list(range(n))
        return wakeups

    # With ThreadPoolExecutor's futures: one call_soon_threadsafe per task.
    assert run(main()) == 1
    assert all(b.result(10) for b in blockers)


def test_a_future_adopted_by_one_loop_can_be_awaited_from_another(make_executor: Any) -> None:
    ex = make_executor(1)
    task = Blocker()
    fut = ex.submit(task, "both")
    adopted = threading.Event()

    async def first() -> Any:
        assert asyncio.isfuture(fut)  # adopted: this loop's from now on
        adopted.set()
        return await fut

    async def second() -> Any:
        assert not asyncio.isfuture(fut)  # the other loop's
        return await fut  # through wrap_future

    with cf.ThreadPoolExecutor(2) as loops:  # each loop in its own thread
        in_first = loops.submit(run, first())
        assert adopted.wait(10)
        in_second = loops.submit(run, second())
        task.release()
        assert in_second.result(10) == "both"
        assert in_first.result(10) == "both"


def test_an_adopted_queued_task_cancelled_in_its_loop_is_cancelled_everywhere(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(1)
    hold = Blocker()
    blocker = ex.submit(hold, True)
    ran: list[int] = []
    queued = ex.submit(ran.append, 1)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(queued), 0.05)

    run(main())
    assert queued.cancelled()
    with pytest.raises(cf.CancelledError):  # outside the loop: concurrent.futures' error
        queued.result()
    hold.release()
    assert blocker.result(10)
    wait_until(lambda: ex.stats().cancelled == 1, what="the cancelled task to be counted")
    assert ran == []


def test_a_future_bound_to_one_loop_can_be_awaited_from_another(make_executor: Any) -> None:
    ex = make_executor(2)
    handed: cf.Future[Any] = cf.Future()
    task = Blocker()

    async def producer() -> Any:
        fut = asyncio.get_running_loop().run_in_executor(ex, task, True)
        handed.set_result(fut)
        return await fut

    async def consumer(fut: Any) -> Any:
        assert not asyncio.isfuture(fut)  # bound to the other loop
        return await fut

    with cf.ThreadPoolExecutor(1) as side:
        produced = side.submit(run, producer())
        fut = handed.result(10)
        task.release()
        assert run(consumer(fut)) is True
        assert produced.result(10) is True


def test_gather_wait_as_completed_and_shield(make_executor: Any) -> None:
    ex = make_executor(3)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        many = await asyncio.gather(*(loop.run_in_executor(ex, abs, -i) for i in range(300)))
        futs = [loop.run_in_executor(ex, pow, i, 2) for i in range(10)]
        done, pending = await asyncio.wait(futs)
        squares = sorted(f.result() for f in done)
        strs = [loop.run_in_executor(ex, str, i) for i in range(5)]
        firsts = [await f for f in asyncio.as_completed(strs)]
        shielded = await asyncio.shield(loop.run_in_executor(ex, len, "abc"))
        return many, squares, sorted(firsts), shielded, pending

    many, squares, firsts, shielded, pending = run(main())
    assert many == list(range(300))
    assert squares == [i * i for i in range(10)]
    assert firsts == [str(i) for i in range(5)]
    assert shielded == 3
    assert not pending


def test_completions_reach_the_loop_in_one_wakeup_per_batch(make_executor: Any) -> None:
    ex = make_executor(2)
    n = 500
    hold = Blocker()
    blockers = [ex.submit(hold, True) for _ in range(2)]  # hold both workers

    async def main() -> int:
        loop = asyncio.get_running_loop()
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return real(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        futs = [loop.run_in_executor(ex, abs, -i) for i in range(n)]
        gathered = asyncio.gather(*futs)  # asyncio's callbacks are in place
        # Every task completes while the loop thread is busy here.
        hold.release()
        cf.wait(futs, timeout=30)
        # Done is not yet handed to the loop: a worker posts a completion
        # just after its state change. A worker that took another task has
        # handed over all it completed before.
        each_worker_takes_a_task(ex.submit, workers=2)
        assert await gathered == list(range(n))
        return wakeups

    assert run(main()) == 1
    assert all(b.result(10) for b in blockers)


# -- asyncio's semantics inside the loop -------------------------------------------


def test_wait_for_times_out_promptly_while_the_task_runs_on(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(1)
    task = Blocker()

    async def main() -> Any:
        fut = asyncio.get_running_loop().run_in_executor(ex, task, "late")
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(fut, 0.1)
        return fut, time.monotonic() - t0

    fut, waited = run(main())
    assert waited < 5
    assert fut.cancelled()
    assert not task.finished.is_set()  # it still runs: threads can't be stopped
    assert ex.stats().running == 1
    task.release()
    assert task.finished.wait(10)
    wait_until(lambda: ex.stats().running == 0, what="the task to end")
    s = ex.stats()
    # It ran to its end: counted as completed, its outcome dropped.
    assert (s.completed, s.cancelled, s.failed) == (1, 0, 0)
    assert s.submitted == s.completed + s.failed + s.cancelled + s.queued + s.running
    assert ex.submit(abs, -1).result(10) == 1  # the worker goes on


def test_cancelling_the_awaiting_task_cancels_a_queued_task(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(1)
    hold = Blocker()
    ran: list[int] = []

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(ex, hold, True)
        queued = loop.run_in_executor(ex, ran.append, 1)
        task = asyncio.ensure_future(queued)
        await asyncio.sleep(0)
        task.cancel("no longer needed")
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        hold.release()
        await blocker
        return queued, info.value

    queued, err = run(main())
    assert queued.cancelled()
    assert err.args == ("no longer needed",)
    wait_until(lambda: ex.stats().cancelled == 1, what="the cancelled task to be counted")
    assert ran == []


def test_a_cancelled_future_raises_asyncios_error_inside_its_loop_and_cf_outside(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    task = Blocker()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(ex, task, True)
        fut = loop.run_in_executor(ex, abs, -1)
        assert fut.cancel("why")
        assert not fut.cancel()  # asyncio: a done future can't be cancelled
        with pytest.raises(asyncio.CancelledError, match="why"):
            fut.result()
        with pytest.raises(asyncio.CancelledError):
            fut.exception()
        results = await asyncio.gather(fut, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        task.release()
        await blocker
        return fut

    fut = run(main())
    with pytest.raises(cf.CancelledError):
        fut.result()
    assert isinstance(asyncio.CancelledError(), BaseException)


def test_outside_its_loop_cancel_keeps_concurrent_futures_semantics(make_executor: Any) -> None:
    ex = make_executor(1)
    task = Blocker()

    async def main() -> Any:
        fut = asyncio.get_running_loop().run_in_executor(ex, task, "done")
        assert task.started.wait(10)
        # Another thread (a concurrent.futures user) can't cancel it.
        with cf.ThreadPoolExecutor(1) as other:
            assert other.submit(fut.cancel).result(10) is False
        task.release()
        return await fut

    assert run(main()) == "done"


def test_a_task_submitted_in_a_loop_but_never_given_to_asyncio_is_plain(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    task, called = Blocker(), threading.Event()
    threads: list[str] = []

    def record(f: Any) -> None:
        threads.append(threading.current_thread().name)
        called.set()

    async def main() -> Any:
        fut = ex.submit(task, 5)
        fut.add_done_callback(record)
        assert task.started.wait(10)
        assert fut.cancel() is False  # concurrent.futures: it is running
        task.release()
        # A blocking wait inside the loop still completes: nothing it
        # waits for needs the loop.
        return fut.result(10)

    assert run(main()) == 5
    assert called.wait(10)  # callbacks run just after waiters wake
    assert threads[0] != "MainThread"


def test_a_group_waited_on_inside_a_coroutine_does_not_deadlock(make_executor: Any) -> None:
    ex = make_executor(2)

    async def main() -> Any:
        with ex.group() as group:
            futs = [group.submit(pow, i, 2) for i in range(20)]
        group.wait(timeout=10)
        return [f.result() for f in futs]

    assert run(main()) == [i * i for i in range(20)]


def test_asyncio_callbacks_run_in_the_loop_thread_in_their_context(make_executor: Any) -> None:
    ex = make_executor(1)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[Any] = []

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = Blocker()
        fut = loop.run_in_executor(ex, task, True)
        ctx = contextvars.copy_context()
        ctx.run(var.set, "from-context")
        fut.add_done_callback(
            lambda f: seen.append((threading.get_ident(), var.get())), context=ctx
        )
        task.release()
        await fut
        await asyncio.sleep(0)
        done = loop.run_in_executor(ex, abs, -1)
        await done
        # Added once done: scheduled with call_soon, as asyncio does.
        done.add_done_callback(lambda f: seen.append((threading.get_ident(), "late")))
        assert seen[1:] == []
        await asyncio.sleep(0)
        return threading.get_ident()

    loop_thread = run(main())
    assert seen == [(loop_thread, "from-context"), (loop_thread, "late")]


def test_remove_done_callback_counts_registrations(make_executor: Any) -> None:
    ex = make_executor(1)
    calls: list[int] = []

    def cb(f: Any) -> None:
        calls.append(1)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = Blocker()
        fut = loop.run_in_executor(ex, task, True)
        fut.add_done_callback(cb)
        fut.add_done_callback(cb)
        assert fut.remove_done_callback(cb) == 2
        assert fut.remove_done_callback(cb) == 0
        done, pending = await asyncio.wait([fut], timeout=0.01)  # adds and removes its own
        assert pending == {fut}
        task.release()
        await fut
        await asyncio.sleep(0)

    run(main())
    assert calls == []
    plain = ex.submit(abs, 1)
    plain.result(10)
    assert plain.remove_done_callback(cb) == 0


def test_an_asyncio_callback_that_raises_goes_to_the_loop_exception_handler(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    errors: list[Any] = []

    def bad(f: Any) -> None:
        raise ValueError("bad callback")

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: errors.append(context))
        task = Blocker()
        fut = loop.run_in_executor(ex, task, True)
        fut.add_done_callback(bad)
        task.release()
        return await fut

    assert run(main()) is True
    assert [type(c["exception"]) for c in errors] == [ValueError]


def test_a_loop_closed_before_the_task_ends_loses_nothing_else(
    make_executor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ex = make_executor(1)
    task = Blocker()
    never: list[int] = []

    async def main() -> Any:
        fut = asyncio.get_running_loop().run_in_executor(ex, task, True)
        fut.add_done_callback(lambda f: never.append(1))
        return fut

    fut = run(main())  # the loop is closed now, the task still running
    task.release()
    assert fut.result(10) is True  # concurrent.futures callers still get it
    assert ex.submit(abs, -2).result(10) == 2
    assert never == []  # the closed loop's callback is dropped, as asyncio does
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_futures_accept_attributes(make_executor: Any) -> None:
    ex = make_executor(1)
    fut = ex.submit(abs, -1)
    fut.tag = "mine"
    assert fut.tag == "mine"
    del fut.tag
    with pytest.raises(AttributeError):
        fut.tag  # noqa: B018
    assert fut.result(10) == 1


# -- the other executors --------------------------------------------------------------


def test_keyed_order_holds_when_asyncio_abandons_a_running_head(core: ModuleType) -> None:
    keyed = bind_core(KeyedExecutor, core)(4)
    hold = Blocker()
    log: list[str] = []

    def head() -> None:
        log.append("head start")
        hold()
        log.append("head end")

    async def main() -> Any:
        first = keyed.submit("k", head)
        assert await asyncio.to_thread(hold.started.wait, 30)
        with pytest.raises(asyncio.TimeoutError):  # asyncio abandons the running head
            await asyncio.wait_for(first, 0.05)
        second = keyed.submit("k", log.append, "second")
        stats = keyed.stats()
        assert (stats.pending, stats.running) == (1, 1)  # behind the running head
        assert log == ["head start"]
        hold.release()
        await second
        return first

    try:
        first = run(main())
        assert first.cancelled()
        assert log == ["head start", "head end", "second"]
    finally:
        keyed.shutdown(wait=True)


def test_group_cancel_in_a_coroutine_leaves_running_tasks_alone(make_executor: Any) -> None:
    ex = make_executor(1)
    first = Blocker()

    async def main() -> Any:
        group = ex.group()
        running = group.submit(first, "first")
        queued = group.submit(abs, -1)
        assert asyncio.isfuture(running)  # asyncio has it now
        assert first.started.wait(10)
        assert group.cancel() == 1  # only the queued one
        first.release()
        return await running, queued.cancelled()

    assert run(main()) == ("first", True)


def test_the_loop_and_results_are_freed_by_refcount_once_done(
    make_executor: Any, wait_until: Any
) -> None:
    import gc
    import weakref

    ex = make_executor(2)
    refs: list[Any] = []

    class Result:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        refs.append(weakref.ref(loop))
        out = await asyncio.gather(*(loop.run_in_executor(ex, Result) for _ in range(100)))
        refs.append(weakref.ref(out[0]))

    enabled = gc.isenabled()
    gc.disable()  # no cycle may be left to the collector
    try:
        run(main())
        # A worker may still be returning from the last completion; on a
        # free-threaded build the result goes once the worker that made it
        # runs again (support.let_worker_run).
        wait_until(
            lambda: (let_worker_run(ex.submit, 2), [r() for r in refs] == [None, None])[1],
            what="loop and result freed",
        )
    finally:
        if enabled:
            gc.enable()


def test_await_steps_as_asyncios_own_future_does(make_executor: Any) -> None:
    # The await yields the pending future once to whoever steps it (the
    # Task, in real code), refuses a second step while it is still
    # pending, and returns whatever the task returned, tuples and
    # exception objects included.
    ex = make_executor(1)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = Blocker()
        fut = loop.run_in_executor(ex, task, (1, 2))
        steps = fut.__await__()
        assert steps.send(None) is fut
        with pytest.raises(RuntimeError, match="await wasn't used with future"):
            next(steps)
        task.release()
        assert await fut == (1, 2)
        done_steps = fut.__await__()
        with pytest.raises(StopIteration) as stopped:
            next(done_steps)
        assert stopped.value.value == (1, 2)
        error = await loop.run_in_executor(ex, ValueError, "returned, not raised")
        return await asyncio.gather(fut, loop.run_in_executor(ex, lambda: None)), error

    gathered, error = run(main())
    assert gathered == [(1, 2), None]
    assert type(error) is ValueError and str(error) == "returned, not raised"


def test_asyncio_callbacks_keep_their_order_through_removals(make_executor: Any) -> None:
    ex = make_executor(1)
    seen: list[str] = []

    def note(name: str) -> Any:
        return lambda f: seen.append(name)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = Blocker()
        fut = loop.run_in_executor(ex, task, True)
        first, second = note("first"), note("second")
        fut.add_done_callback(first)
        fut.add_done_callback(second)
        fut.add_done_callback(note("third"))
        assert fut.remove_done_callback(first) == 1
        fut.add_done_callback(note("fourth"))  # after the others, not in first's place
        fut.add_done_callback(first)
        assert fut.remove_done_callback(second) == 1
        task.release()
        await fut
        await asyncio.sleep(0)

    run(main())
    assert seen == ["third", "fourth", "first"]


def test_an_interrupting_callback_leaves_the_rest_to_the_next_drain(make_executor: Any) -> None:
    # KeyboardInterrupt leaves the loop as asyncio lets it; the callbacks
    # after it, of the same future and of the others completed with it,
    # run when the loop runs again, in their order.
    ex = make_executor(1)
    seen: list[str] = []
    task = Blocker()

    def interrupt(f: Any) -> None:
        seen.append("interrupt")
        raise KeyboardInterrupt

    async def submit() -> list[Any]:
        loop = asyncio.get_running_loop()
        first = loop.run_in_executor(ex, task, 1)
        second = loop.run_in_executor(ex, abs, -2)
        first.add_done_callback(lambda f: seen.append("first"))
        first.add_done_callback(interrupt)
        first.add_done_callback(lambda f: seen.append("after"))
        second.add_done_callback(lambda f: seen.append("second"))
        return [first, second]

    loop = asyncio.new_event_loop()
    try:
        futures = loop.run_until_complete(submit())
        task.release()  # both complete while the loop is not running: one drain
        for fut in futures:
            assert fut.result(10) in (1, 2)
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(0.05))
        assert seen == ["first", "interrupt"]
        loop.run_until_complete(asyncio.sleep(0.05))
        assert seen == ["first", "interrupt", "after", "second"]
    finally:
        loop.close()


@pytest.mark.skipif(FREE_THREADED, reason="free-threaded builds keep every future tracked")
def test_a_queued_future_asyncio_awaits_stays_out_of_the_cyclic_gc(core: ModuleType) -> None:
    # The engine settles every future it queued, and settling drops the
    # callbacks that could close a cycle: neither asyncio's flag nor its
    # callback needs the future under the collector (GIL builds, where a
    # gathered batch in flight would otherwise fill the young generation).
    import gc

    import conexe

    if core.__name__ != "conexe._core":
        pytest.skip("the twin's futures are ordinary tracked objects")
    task = Blocker()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        with bind_core(conexe.ConcurrentExecutor, core)(1) as ex:
            loop.set_default_executor(ex)
            fut = loop.run_in_executor(None, task, 5)
            waiting = asyncio.ensure_future(asyncio.wait_for(fut, 30))
            await asyncio.sleep(0.01)
            try:
                assert not fut.done() and not gc.is_tracked(fut)
            finally:
                task.release()
            result = await waiting
            loop._default_executor = None  # type: ignore[attr-defined]
            return result

    assert run(main()) == 5
