"""ConcurrentExecutor as a concurrent.futures executor: submit, map,
shutdown and the context manager, the errors ThreadPoolExecutor raises, and
where it does better (cancelled futures wake their waiters, map is lazy).

Every test runs against both cores through the ``Executor`` fixture."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import itertools
import logging
import threading
import weakref
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

import pytest

import conexe
from support import Blocker, let_worker_run

# -- submit, errors at the call ------------------------------------------------


def test_submit_passes_args_and_kwargs_even_named_fn_and_self(make_executor: Any) -> None:
    ex = make_executor(2)

    def capture(*args: Any, **kwargs: Any) -> Any:
        return args, kwargs

    assert ex.submit(pow, 2, 10).result() == 1024
    assert ex.submit(capture, 1, fn=2, self=3).result() == ((1,), {"fn": 2, "self": 3})


def test_it_is_a_concurrent_futures_executor_returning_concurrent_futures(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    assert isinstance(ex, cf.Executor)
    assert isinstance(ex.submit(int).result(), int)
    assert isinstance(ex.submit(int), cf.Future)


def test_submit_after_shutdown_raises_thread_pool_executors_runtime_error(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(pow, 2, 2)


@pytest.mark.parametrize("bad", [0, -1])
def test_max_workers_not_positive_raises_value_error(Executor: Any, bad: int) -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        Executor(bad)


def test_non_callable_fn_raises_type_error_at_the_call(make_executor: Any) -> None:
    ex = make_executor(1)
    with pytest.raises(TypeError, match="not callable"):
        ex.submit(42)
    with pytest.raises(TypeError, match="not callable"):
        ex.map(42, [1])
    with pytest.raises(TypeError, match="callable"):
        conexe.Task("t", 42)
    assert ex.stats().submitted == 0


def test_submit_without_a_callable_raises_type_error_at_the_call(make_executor: Any) -> None:
    ex = make_executor(1)
    with pytest.raises(TypeError, match="positional argument"):
        ex.submit()
    with pytest.raises(TypeError, match="positional argument"):
        ex.submit(fn=abs)  # fn is positional-only, as in ThreadPoolExecutor
    assert ex.stats().submitted == 0


@pytest.mark.parametrize("on_full", ["raise", "block", "caller_runs"])
def test_a_subclass_overriding_submit_keeps_its_override(Executor: Any, on_full: str) -> None:
    calls: list[Any] = []

    class Logged(Executor):  # type: ignore[misc, valid-type]
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            calls.append(fn)
            return super().submit(fn, *args, **kwargs)

    with Logged(2, on_full=on_full) as ex:
        assert ex.submit(pow, 2, 5).result() == 32
        assert list(ex.map(abs, [-1])) == [1]  # map submits through submit() too
    assert len(calls) == 2 and calls[0] is pow


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_queue_size": -1}, "max_queue_size must be >= 0"),
        ({"block_timeout": -1.0}, "block_timeout must be >= 0"),
        ({"on_full": "drop"}, "on_full must be one of 'raise', 'block', 'caller_runs'"),
    ],
)
def test_bad_sizes_and_unknown_full_queue_policy_raise_value_error(
    Executor: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Executor(2, **kwargs)


def test_resize_to_a_bad_size_raises_and_keeps_the_pool(make_executor: Any) -> None:
    ex = make_executor(2)
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        ex.resize(0)
    with pytest.raises(TypeError):
        ex.resize(1.5)
    assert ex.max_workers == 2
    assert ex.submit(abs, -3).result() == 3


def test_map_chunksize_below_one_raises_value_error(make_executor: Any) -> None:
    ex = make_executor(1)
    with pytest.raises(ValueError, match="chunksize must be >= 1"):
        ex.map(abs, [1], chunksize=0)


# -- initializer ---------------------------------------------------------------


def test_initializer_runs_in_each_worker_thread_with_its_initargs(
    make_executor: Any,
) -> None:
    seen: dict[int, Any] = {}
    local = threading.local()

    def init(tag: str) -> None:
        local.tag = tag
        seen[threading.get_ident()] = tag

    ex = make_executor(3, initializer=init, initargs=("ready",))
    barrier = threading.Barrier(3, timeout=10)

    def task() -> Any:
        barrier.wait()  # three tasks at once: three workers
        return local.tag

    assert [f.result() for f in [ex.submit(task) for _ in range(3)]] == ["ready"] * 3
    assert len(seen) == 3


@pytest.mark.thread_unsafe(
    reason="caplog.at_level sets a logger's level; threads restoring it at once can leave it raised"
)
def test_failing_initializer_breaks_the_pool_like_thread_pool_executor(
    make_executor: Any, caplog: pytest.LogCaptureFixture, wait_until: Any
) -> None:
    def init() -> None:
        raise ValueError("no database")

    ex = make_executor(2, initializer=init)
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        try:
            fut = ex.submit(abs, -1)
        except BrokenThreadPool:
            pass  # already broken
        else:
            with pytest.raises(BrokenThreadPool, match="initializer failed"):
                fut.result(timeout=10)
        # ThreadPoolExecutor's exception type, so `except BrokenThreadPool`
        # and `except BrokenExecutor` written for it still work.
        with pytest.raises(cf.BrokenExecutor):
            ex.submit(abs, -1)
        with pytest.raises(conexe.BrokenExecutor):
            ex.submit(abs, -1)
    assert any(
        "Exception in initializer" in r.getMessage() and r.exc_info[1].args == ("no database",)
        for r in caplog.records
    )


# -- shutdown and the context manager ------------------------------------------


def test_context_manager_waits_for_accepted_work_then_refuses_more(Executor: Any) -> None:
    done = []
    with Executor(2) as ex:
        futures = [ex.submit(done.append, i) for i in range(50)]
    assert sorted(done) == list(range(50))
    assert all(f.done() and not f.cancelled() for f in futures)
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


def test_shutdown_without_wait_returns_while_a_task_runs_and_the_task_completes(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    running = ex.submit(blocker, "finished")
    queued = ex.submit(abs, -5)
    assert blocker.started.wait(10)
    ex.shutdown(wait=False)
    assert not running.done()
    blocker.release()
    assert running.result(timeout=10) == "finished"
    assert queued.result(timeout=10) == 5


def test_shutdown_cancel_futures_cancels_queued_tasks_only(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    running = ex.submit(blocker, "ran")
    assert blocker.started.wait(10)
    queued = [ex.submit(abs, -i) for i in range(10)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    blocker.release()
    assert running.result(timeout=10) == "ran"


@pytest.mark.parametrize("waiter", ["wait", "as_completed", "result"])
def test_cancel_futures_wakes_everyone_waiting_on_the_cancelled_futures(
    make_executor: Any, waiter: str
) -> None:
    # CPython issue 87893: ThreadPoolExecutor leaves concurrent.futures.wait()
    # blocked on futures that shutdown(cancel_futures=True) cancelled.
    ex = make_executor(1)
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    queued = [ex.submit(abs, -i) for i in range(5)]
    outcome: list[Any] = []

    def wait_for_them() -> None:
        if waiter == "wait":
            done, not_done = cf.wait(queued, return_when=cf.ALL_COMPLETED)
            outcome.append((len(done), len(not_done)))
        elif waiter == "as_completed":
            outcome.append((len(list(cf.as_completed(queued))), 0))
        else:
            with pytest.raises(cf.CancelledError):
                queued[-1].result()
            outcome.append((5, 0))

    t = threading.Thread(target=wait_for_them)
    t.start()
    try:
        ex.shutdown(wait=False, cancel_futures=True)
        t.join(10)
        assert not t.is_alive(), f"{waiter} still blocked on cancelled futures"
        assert outcome == [(5, 0)]
    finally:
        blocker.release()
        t.join(10)


def test_a_bound_submit_keeps_its_executor_alive(Executor: Any) -> None:
    # As with ThreadPoolExecutor: ex.submit is a bound method of ex, so a
    # temporary executor works, and a kept ex.submit keeps the executor.
    assert Executor(1).submit(abs, -1).result(10) == 1
    ex = Executor(1, thread_name_prefix="kept-submit")
    submit = ex.submit
    assert submit.__self__ is ex
    ref = weakref.ref(ex)
    del ex
    gc.collect()
    assert ref() is not None
    assert submit(abs, -2).result(10) == 2
    threads = ref()._threads.threads()
    del submit
    gc.collect()
    assert ref() is None
    for t in threads:
        t.join(10)
        assert not t.is_alive()


def test_dropped_executor_finishes_its_work_and_its_threads_leave(Executor: Any) -> None:
    ex = Executor(2, thread_name_prefix="dropped-pool")
    futures = [ex.submit(abs, -i) for i in range(20)]
    threads = ex._threads.threads()
    assert threads
    del ex
    gc.collect()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert [f.result() for f in futures] == list(range(20))


# -- map -----------------------------------------------------------------------


def test_map_returns_results_in_order_over_several_iterables(make_executor: Any) -> None:
    ex = make_executor(3)
    assert list(ex.map(pow, range(100), itertools.repeat(2))) == [i * i for i in range(100)]
    assert list(ex.map(pow, [1, 2, 3], [2, 2])) == [1, 4]  # shortest wins
    assert list(ex.map(abs, [])) == []
    assert list(ex.map(abs, range(-50, 0), chunksize=7)) == list(range(50, 0, -1))


def test_map_over_an_endless_iterator_reads_ahead_only_a_bounded_window(
    make_executor: Any,
) -> None:
    ex = make_executor(2)
    read = itertools.count()

    def endless() -> Any:
        for i in itertools.count():
            next(read)
            yield i

    results = ex.map(lambda x: x * 2, endless())
    first = list(itertools.islice(results, 3000))
    assert first == [2 * i for i in range(3000)]
    consumed = next(read)
    # Read ahead is a bounded window beyond what was consumed, not "all".
    assert 3000 <= consumed < 3000 + 100_000
    results.close()  # cancels the chunks still queued


@pytest.mark.parametrize("n", [1000, 5000])  # the input read at once, or a window at a time
def test_map_runs_the_inputs_last_items_one_to_a_chunk_on_every_worker(
    make_executor: Any, n: int
) -> None:
    # The last items meet at a barrier: they only get past it if each one
    # runs on a worker of its own, not one after another in a shared chunk.
    workers = 4
    ex = make_executor(workers)
    barrier = threading.Barrier(workers, timeout=10)

    def f(i: int) -> int:
        if i >= n - workers:
            barrier.wait()
        return i

    assert list(ex.map(f, range(n))) == list(range(n))


def test_map_runs_items_after_a_failing_one_and_raises_when_iteration_reaches_it(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(2)
    ran = set()

    def f(i: int) -> int:
        ran.add(i)
        if i == 3:
            raise ValueError("item 3")
        return i

    results = ex.map(f, range(10))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    # Items after the failing one run whether or not anyone reads them yet
    # (reaching the failure then cancels what hasn't started, as in TPE).
    wait_until(lambda: len(ran) == 10, what="every item to run")
    with pytest.raises(ValueError, match="item 3"):
        next(results)
    ex.shutdown(wait=True)
    assert ran == set(range(10))  # every item ran, as with ThreadPoolExecutor


def test_map_timeout_raises_timeout_error_and_cancels_what_did_not_start(
    make_executor: Any,
) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    ran = []
    results = ex.map(ran.append, range(5), timeout=0.05)
    with pytest.raises(TimeoutError):
        next(results)
    blocker.release()
    ex.shutdown(wait=True)
    assert ran == []  # the timed-out map's items were cancelled, never run


def test_map_submits_before_iteration_like_thread_pool_executor(make_executor: Any) -> None:
    ex = make_executor(2)
    ran = []
    ex.map(ran.append, range(10))  # never iterated
    ex.shutdown(wait=True)
    assert sorted(ran) == list(range(10))


# -- failures never kill a worker ----------------------------------------------


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, ValueError])
def test_base_exception_in_a_task_lands_in_its_future_and_the_worker_survives(
    make_executor: Any, exc_type: type[BaseException]
) -> None:
    ex = make_executor(1)
    worker_ident = ex.submit(threading.get_ident).result()

    def fail() -> None:
        raise exc_type("from the task")

    fut = ex.submit(fail)
    assert isinstance(fut.exception(timeout=10), exc_type)
    with pytest.raises(exc_type):
        fut.result()
    assert ex.submit(threading.get_ident).result(timeout=10) == worker_ident
    s = ex.stats()
    assert (s.workers, s.failed, s.completed) == (1, 1, 2)


@pytest.mark.thread_unsafe(
    reason="reads caplog: pytest's log capture is not shared safely between threads"
)
def test_raising_done_callback_is_logged_and_the_worker_goes_on(
    make_executor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    fut = ex.submit(blocker, 7)
    called = threading.Event()

    def bad_callback(f: Any) -> None:
        raise RuntimeError("callback bug")

    fut.add_done_callback(bad_callback)
    fut.add_done_callback(lambda f: called.set())
    with caplog.at_level(logging.ERROR):
        blocker.release()  # the callbacks run in the worker thread
        assert called.wait(10)
        assert ex.submit(abs, -2).result(timeout=10) == 2
    assert fut.result() == 7
    errors = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert [str(r.exc_info[1]) for r in errors] == ["callback bug"]
    assert ex.stats().workers == 1


# -- references ------------------------------------------------------------------


class Payload:
    pass


def test_arguments_are_released_once_the_task_is_done(make_executor: Any, wait_until: Any) -> None:
    ex = make_executor(1)
    arg, kwarg = Payload(), Payload()
    refs = [weakref.ref(arg), weakref.ref(kwarg)]
    fut = ex.submit(lambda a, k=None: None, arg, k=kwarg)
    del arg, kwarg
    fut.result(timeout=10)
    wait_until(lambda: all(r() is None for r in refs), what="arguments released")
    assert fut.done()  # the future itself is still held


def test_result_is_released_once_the_future_is_dropped(make_executor: Any, wait_until: Any) -> None:
    ex = make_executor(1)
    fut = ex.submit(Payload)
    ref = weakref.ref(fut.result(timeout=10))
    del fut
    # At once on a GIL build; on a free-threaded one, once the worker that
    # made the result runs again (support.let_worker_run).
    wait_until(lambda: (let_worker_run(ex.submit), ref() is None)[1], what="result released")


def test_an_exception_with_its_traceback_is_released_once_the_future_is_dropped(
    make_executor: Any, wait_until: Any
) -> None:
    class Boom(Exception):
        pass

    def fail(payload: Payload) -> None:
        raise Boom()

    ex = make_executor(1)
    payload = Payload()
    ref = weakref.ref(payload)
    fut = ex.submit(fail, payload)
    del payload
    exc_ref = weakref.ref(fut.exception(timeout=10))
    del fut
    # The traceback's frame holds the argument: a reference cycle through
    # the exception, which the collector must be able to free.
    wait_until(
        lambda: (gc.collect(), ref() is None and exc_ref() is None)[1],
        what="exception and arguments released",
    )


# -- stats and resize ----------------------------------------------------------------


def _invariant_holds(s: Any) -> bool:
    return s.submitted == s.completed + s.failed + s.cancelled + s.queued + s.running


def test_stats_counters_add_up_at_every_quiet_moment(make_executor: Any) -> None:
    ex = make_executor(1)
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    ok = [ex.submit(abs, -i) for i in range(6)]
    bad = [ex.submit(divmod, 1, 0) for _ in range(3)]
    to_cancel = [ex.submit(abs, 1) for _ in range(4)]
    assert all(f.cancel() for f in to_cancel)
    s = ex.stats()
    assert (s.submitted, s.running, s.workers) == (14, 1, 1)
    assert _invariant_holds(s)
    blocker.release()
    cf.wait(ok + bad, timeout=10)
    ex.shutdown(wait=True)
    s = ex.stats()
    assert (s.submitted, s.completed, s.failed, s.cancelled) == (14, 7, 3, 4)
    assert (s.queued, s.running, s.rejected) == (0, 0, 0)
    assert _invariant_holds(s)


def test_resize_up_lets_more_tasks_run_at_once(make_executor: Any) -> None:
    ex = make_executor(1)
    ex.resize(3)
    assert ex.max_workers == 3
    barrier = threading.Barrier(3, timeout=10)
    # Three tasks can only all pass the barrier if three workers run them.
    futures = [ex.submit(barrier.wait) for _ in range(3)]
    assert sorted(f.result(timeout=20) for f in futures) == [0, 1, 2]
    assert ex.stats().workers == 3


def test_resize_down_lets_running_tasks_finish_and_workers_converge(
    make_executor: Any, wait_until: Any
) -> None:
    ex = make_executor(4)
    blockers = [Blocker() for _ in range(4)]
    running = [ex.submit(b, i) for i, b in enumerate(blockers)]
    for b in blockers:
        assert b.started.wait(10)
    ex.resize(1)
    assert ex.max_workers == 1
    for b in blockers:
        b.release()
    assert [f.result(timeout=10) for f in running] == [0, 1, 2, 3]
    wait_until(lambda: ex.stats().workers == 1, what="workers == 1 after resize(1)")
    assert ex.submit(abs, -9).result(timeout=10) == 9
    s = ex.stats()
    assert (s.completed, s.failed, s.cancelled) == (5, 0, 0)


def test_resize_after_shutdown_raises_runtime_error(make_executor: Any) -> None:
    ex = make_executor(2)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.resize(4)


# -- asyncio -----------------------------------------------------------------------


def test_loop_run_in_executor_and_wrap_future_work(make_executor: Any) -> None:
    ex = make_executor(2)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(ex, pow, 3, 4)
        b = await asyncio.wrap_future(ex.submit(sum, [1, 2, 3]))
        many = await asyncio.gather(*(loop.run_in_executor(ex, abs, -i) for i in range(50)))
        with pytest.raises(ZeroDivisionError):
            await loop.run_in_executor(ex, divmod, 1, 0)
        return a, b, many

    assert asyncio.run(main()) == (81, 6, list(range(50)))


def test_nothing_is_lost_under_concurrent_submit_cancel_and_resize(make_executor: Any) -> None:
    ex = make_executor(4)
    per_thread, producers = 2000, 4
    futures: list[list[Any]] = [[] for _ in range(producers)]

    def produce(k: int) -> None:
        for i in range(per_thread):
            f = ex.submit(abs, -i)
            futures[k].append(f)
            if i % 7 == 0:
                f.cancel()
            if k == 0 and i % 500 == 0:
                ex.resize(1 + (i // 500) % 4)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    flat = [f for fs in futures for f in fs]
    done, not_done = cf.wait(flat, timeout=60)
    assert not not_done
    cancelled = sum(f.cancelled() for f in flat)
    ok = sum(1 for f in flat if not f.cancelled() and f.result() >= 0)
    ex.shutdown(wait=True)
    s = ex.stats()
    assert s.submitted == producers * per_thread
    assert (s.completed, s.cancelled, s.failed) == (ok, cancelled, 0)
    assert _invariant_holds(s) and s.queued == s.running == 0
