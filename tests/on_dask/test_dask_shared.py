"""Behaviour shared by the local executors and their Dask twins: each test
runs against every local core and against a real 2-process LocalCluster."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools
import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import _dask_tasks as t  # noqa: E402 - after the skip

from conexe import MaxRetriesExceeded, QueueFull, Task  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def start_blockers(ex, tmp_path: Path, n: int = 2) -> tuple[list[cf.Future], Path]:
    """Occupy ``n`` workers until the returned release file is touched.

    Each blocker is running before the next is submitted: with a queue
    bound of 1, a second blocker submitted while the first still waits in
    the queue would find it full (and, under ``on_full="caller_runs"``,
    block the caller itself)."""
    release = tmp_path / "release"
    futures = []
    for i in range(n):
        started = tmp_path / f"started-{i}"
        futures.append(ex.submit(t.block, str(started), str(release), f"blocker-{i}"))
        assert t.wait_for(started), "a blocker never started"
    return futures, release


# -- ConcurrentExecutor -----------------------------------------------------------------


def test_submit_returns_a_stdlib_future_with_the_result(backend):
    with backend.executor() as ex:
        futures = [ex.submit(t.square, i) for i in range(6)]
        assert all(isinstance(f, cf.Future) for f in futures)
        done, not_done = cf.wait(futures, timeout=t.WAIT)
        assert not not_done
        assert sorted(f.result() for f in cf.as_completed(futures)) == [i * i for i in range(6)]


def test_futures_work_with_asyncio(backend):
    async def main(ex):
        loop = asyncio.get_running_loop()
        a = await asyncio.wrap_future(ex.submit(t.square, 7))
        b = await loop.run_in_executor(ex, t.square, 8)
        return a, b

    with backend.executor() as ex:
        assert asyncio.run(main(ex)) == (49, 64)


def test_identical_calls_each_run(backend, tmp_path):
    log = tmp_path / "log"
    with backend.executor() as ex:
        futures = [ex.submit(t.append, str(log), "same") for _ in range(3)]
        assert [f.result() for f in futures] == ["same"] * 3
    assert t.lines(log) == ["same"] * 3


def test_exceptions_reach_the_future(backend):
    with backend.executor() as ex:
        fut = ex.submit(t.fail, "bad input")
        with pytest.raises(ValueError, match="bad input"):
            fut.result()
        assert isinstance(fut.exception(), ValueError)


def test_map_yields_results_in_order_and_raises_at_the_failing_item(backend):
    with backend.executor() as ex:
        assert list(ex.map(t.square, range(5))) == [0, 1, 4, 9, 16]
        results = ex.map(t.fail, ["first"])
        with pytest.raises(ValueError, match="first"):
            next(results)


def test_map_buffersize_reads_only_that_far_ahead(backend):
    # Python 3.14's Executor.map(buffersize=), on every Python and backend.
    taken = []

    def numbers():
        for i in itertools.count():
            taken.append(i)
            yield i

    with backend.executor() as ex:
        with pytest.raises(TypeError, match="buffersize must be an integer or None"):
            ex.map(t.square, range(3), buffersize=2.0)
        with pytest.raises(ValueError, match="buffersize must be None or > 0"):
            ex.map(t.square, range(3), buffersize=0)
        results = ex.map(t.square, numbers(), buffersize=3)
        assert len(taken) == 3
        assert [next(results) for _ in range(4)] == [0, 1, 4, 9]
        assert len(taken) == 3 + 4
        assert list(ex.map(t.square, range(5), buffersize=2)) == [0, 1, 4, 9, 16]


def test_submit_after_shutdown_raises_runtime_error(backend):
    ex = backend.executor()
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(t.square, 2)


def test_full_bound_raises_queue_full_and_accepted_tasks_still_finish(backend, tmp_path):
    with backend.executor(max_queue_size=backend.bound(1)) as ex:
        blockers, release = start_blockers(ex, tmp_path)
        accepted = []
        with pytest.raises(QueueFull):
            for i in range(4):
                accepted.append(ex.submit(t.square, i))
        assert len(accepted) == 1
        t.touch(release)
        assert [f.result(t.WAIT) for f in blockers] == ["blocker-0", "blocker-1"]
        assert [f.result(t.WAIT) for f in accepted] == [i * i for i in range(len(accepted))]


def test_block_policy_gives_up_after_block_timeout(backend, tmp_path):
    bound = backend.bound(1)
    with backend.executor(max_queue_size=bound, on_full="block", block_timeout=0.05) as ex:
        blockers, release = start_blockers(ex, tmp_path)
        with pytest.raises(QueueFull):
            for i in range(4):
                ex.submit(t.square, i)
        t.touch(release)
        assert [f.result(t.WAIT) for f in blockers] == ["blocker-0", "blocker-1"]


def test_block_policy_waits_for_room(backend, tmp_path):
    with backend.executor(max_queue_size=backend.bound(1), on_full="block") as ex:
        blockers, release = start_blockers(ex, tmp_path)
        results = []
        submitter = threading.Thread(
            target=lambda: results.extend(ex.submit(t.square, i) for i in range(3))
        )
        submitter.start()
        t.touch(release)
        submitter.join(t.WAIT)
        assert not submitter.is_alive()
        assert [f.result(t.WAIT) for f in results] == [0, 1, 4]


def test_caller_runs_policy_runs_the_task_in_the_caller(backend, tmp_path):
    with backend.executor(max_queue_size=backend.bound(1), on_full="caller_runs") as ex:
        blockers, release = start_blockers(ex, tmp_path)
        futures = [ex.submit(t.where) for _ in range(3)]
        t.touch(release)
        here = (os.getpid(), threading.get_ident())
        assert here in [f.result(t.WAIT) for f in futures]


def test_cancelled_queued_task_never_runs_and_its_waiters_wake(backend, tmp_path):
    log = tmp_path / "log"
    with backend.executor() as ex:
        blockers, release = start_blockers(ex, tmp_path)
        doomed = ex.submit(t.append, str(log), "doomed")
        dropped = backend.cancelled_on_cluster(ex, [doomed])
        assert doomed.cancel()
        dropped()
        done, _ = cf.wait([doomed], timeout=t.WAIT)
        assert doomed in done and doomed.cancelled()
        with pytest.raises(cf.CancelledError):
            doomed.result()
        t.touch(release)
        after = ex.submit(t.append, str(log), "after")
        assert after.result(t.WAIT) == "after"
        cf.wait(blockers, timeout=t.WAIT)
    assert t.lines(log) == ["after"]


def test_shutdown_cancel_futures_cancels_what_has_not_started(backend, tmp_path):
    ex = backend.executor()
    blockers, release = start_blockers(ex, tmp_path)
    queued = [ex.submit(t.square, i) for i in range(4)]
    dropped = backend.cancelled_on_cluster(ex, queued)
    ex.shutdown(wait=False, cancel_futures=True)
    dropped()
    done, _ = cf.wait(queued, timeout=t.WAIT)
    assert all(f.cancelled() for f in queued) and len(done) == 4
    t.touch(release)
    assert [f.result(t.WAIT) for f in blockers] == ["blocker-0", "blocker-1"]
    ex.shutdown(wait=True)


TIMED_OUT = r"shutdown timed out after 0\.2 s: .*nothing is dropped"


def test_shutdown_with_a_timeout_raises_past_it_and_drops_nothing(backend, tmp_path):
    ex = backend.executor()
    blockers, release = start_blockers(ex, tmp_path)
    queued = ex.submit(t.square, 3)
    with pytest.raises(TimeoutError, match=TIMED_OUT):
        ex.shutdown(timeout=0.2)
    with pytest.raises(RuntimeError):
        ex.submit(t.square, 4)
    t.touch(release)
    ex.shutdown(timeout=t.WAIT)  # a second call waits for what was accepted
    assert [f.result(0) for f in blockers] == ["blocker-0", "blocker-1"]
    assert queued.result(0) == 9


def test_higher_priority_task_starts_first(backend, tmp_path):
    if backend.is_dask:
        pytest.skip(
            "Dask hands a task to a busy worker when it arrives (unless its group is "
            "large), so a later, higher priority can't overtake it: test_dask_only.py "
            "checks the priority reaches the scheduler"
        )
    log = tmp_path / "log"
    with backend.executor() as ex:
        blockers, release = start_blockers(ex, tmp_path)
        low = [ex.submit_task(Task(f"low{i}", t.append, (str(log), "low"))) for i in range(3)]
        high = [
            ex.submit_task(Task(f"high{i}", t.append, (str(log), "high"), priority=5))
            for i in range(3)
        ]
        t.touch(release)
        cf.wait(blockers + low + high, timeout=t.WAIT)
    order = t.lines(log)
    # Every high task is claimed before any low one. With two workers the
    # third high may still be running (and log late) while the lows run, but
    # no low can start before both workers have finished a high: the first
    # two lines are high.
    assert order[:2] == ["high", "high"], order
    assert sorted(order) == ["high"] * 3 + ["low"] * 3, order


# -- KeyedExecutor ----------------------------------------------------------------------


def test_keyed_tasks_of_a_key_run_in_order_and_never_overlap(backend, tmp_path):
    with backend.keyed() as ex:
        futures = t.submit_exclusive_steps(ex, ("a", "b"), 6, tmp_path)
        cf.wait(futures, timeout=t.WAIT)
    for key in ("a", "b"):
        assert t.lines(tmp_path / f"{key}.log") == [f"{key}{i}" for i in range(6)]


def test_keyed_different_keys_run_at_the_same_time(backend, tmp_path):
    with backend.keyed() as ex:
        a = ex.submit("a", t.meet, str(tmp_path / "a"), str(tmp_path / "b"))
        b = ex.submit("b", t.meet, str(tmp_path / "b"), str(tmp_path / "a"))
        assert a.result(t.WAIT) and b.result(t.WAIT)


def test_keyed_failure_does_not_stop_the_key(backend):
    with backend.keyed() as ex:
        first = ex.submit("k", t.square, 3)
        broken = ex.submit("k", t.fail, "boom")
        after = ex.submit("k", t.square, 4)
        assert first.result(t.WAIT) == 9
        with pytest.raises(ValueError, match="boom"):
            broken.result(t.WAIT)
        assert after.result(t.WAIT) == 16


def test_keyed_submit_unique_refuses_a_busy_key(backend, tmp_path):
    release = tmp_path / "release"
    with backend.keyed() as ex:
        busy = ex.submit_unique("k", t.block, str(tmp_path / "started"), str(release), 1)
        assert busy is not None
        assert ex.submit_unique("k", t.square, 2) is None
        other = ex.submit_unique("other", t.square, 3)
        assert other is not None and other.result(t.WAIT) == 9
        t.touch(release)
        assert busy.result(t.WAIT) == 1
        again = ex.submit_unique("k", t.square, 5)
        assert again is not None and again.result(t.WAIT) == 25


def test_keyed_key_is_free_once_its_result_is_back(backend):
    # Whoever a result wakes may submit_unique on the key at once: the key
    # is released before the future completes, never just after.
    with backend.keyed() as ex:
        for i in range(30):
            fut = ex.submit_unique("k", t.square, i)
            assert fut is not None, f"refused on round {i}"
            assert fut.result(t.WAIT) == i * i
        # A done-callback runs as the future completes: the key is free there too.
        resubmitted = []
        called = threading.Event()

        def resubmit(_):
            resubmitted.append(ex.submit_unique("k", t.square, 3))
            called.set()

        first = ex.submit_unique("k", t.square, 2)
        first.add_done_callback(resubmit)
        assert first.result(t.WAIT) == 4
        assert called.wait(t.WAIT)
        assert resubmitted[0] is not None and resubmitted[0].result(t.WAIT) == 9


def test_keyed_cancelled_waiting_task_is_skipped(backend, tmp_path):
    log = tmp_path / "log"
    release = tmp_path / "release"
    with backend.keyed() as ex:
        head = ex.submit("k", t.block, str(tmp_path / "started"), str(release), "head")
        assert t.wait_for(tmp_path / "started")
        doomed = ex.submit("k", t.append, str(log), "doomed")
        last = ex.submit("k", t.append, str(log), "last")
        assert doomed.cancel()
        assert not head.cancel()  # it is running
        t.touch(release)
        assert head.result(t.WAIT) == "head" and last.result(t.WAIT) == "last"
    assert t.lines(log) == ["last"]


def test_keyed_stats_count_active_keys(backend, tmp_path):
    release = tmp_path / "release"
    with backend.keyed() as ex:
        head = ex.submit("k", t.block, str(tmp_path / "started"), str(release), 1)
        waiting = ex.submit("k", t.square, 2)
        assert t.wait_for(tmp_path / "started")
        s = ex.stats()
        assert (s.active_keys, s.pending, s.running) == (1, 1, 1)
        t.touch(release)
        assert head.result(t.WAIT) == 1 and waiting.result(t.WAIT) == 4
        ex.shutdown(wait=True)
        s = ex.stats()
        assert (s.active_keys, s.pending, s.running, s.submitted, s.completed) == (0, 0, 0, 2, 2)


def test_keyed_execute_reports_failures_to_the_error_handler(backend):
    seen = []
    done = threading.Event()

    def handler(key, exc):
        seen.append((key, type(exc).__name__, str(exc)))
        done.set()

    with backend.keyed(error_handler=handler) as ex:
        ex.execute("k", t.fail, "nope")
        assert done.wait(t.WAIT)
    assert seen == [("k", "ValueError", "nope")]


def test_keyed_shutdown_with_a_timeout_raises_past_it_and_drops_nothing(backend, tmp_path):
    ex = backend.keyed()
    release = tmp_path / "release"
    started = tmp_path / "started"
    held = ex.submit("k", t.block, str(started), str(release), "held")
    assert t.wait_for(started)
    behind = ex.submit("k", t.square, 5)
    with pytest.raises(TimeoutError, match=TIMED_OUT):
        ex.shutdown(timeout=0.2)
    t.touch(release)
    ex.shutdown(timeout=t.WAIT)
    assert held.result(0) == "held"
    assert behind.result(0) == 25


def test_keyed_shutdown_cancel_futures_cancels_waiting_tasks(backend, tmp_path):
    release = tmp_path / "release"
    ex = backend.keyed()
    head = ex.submit("k", t.block, str(tmp_path / "started"), str(release), "head")
    assert t.wait_for(tmp_path / "started")
    waiting = [ex.submit("k", t.square, i) for i in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in waiting)
    t.touch(release)
    assert head.result(t.WAIT) == "head"
    ex.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        ex.submit("k", t.square, 1)


def test_keyed_unhashable_key_is_refused(backend):
    with backend.keyed() as ex, pytest.raises(TypeError, match="hashable"):
        ex.submit(["a", "list"], t.square, 1)


# -- Runner -----------------------------------------------------------------------------


def test_runner_tasks_get_a_resource_made_by_their_worker(backend, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    with backend.runner(log.create, log.destroy) as runner:
        assert all(runner.queue_task(t.resource_is_mine) for _ in range(6))
        ids = {runner.submit(t.resource_id).result(t.WAIT) for _ in range(6)}
        assert 1 <= len(ids) <= 2  # one resource per worker (2 workers)
    created, destroyed = t.lines(tmp_path / "created"), t.lines(tmp_path / "destroyed")
    assert ids <= set(created)
    assert sorted(created) == sorted(destroyed)  # stop() released every one


def test_runner_retries_on_a_fresh_resource_after_a_broken_one(backend, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    marker = tmp_path / "broken-id"
    with backend.runner(log.create, log.destroy, check_health=t.healthy, max_retries=1) as runner:
        fresh = runner.queue_task(t.BreakFirst(str(marker)))
        assert fresh != marker.read_text()
        assert runner.stats().retried == 1
    assert marker.read_text() in t.lines(tmp_path / "destroyed")


def test_runner_gives_up_after_max_retries(backend, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    tries = tmp_path / "tries"
    with backend.runner(log.create, log.destroy, check_health=t.healthy, max_retries=2) as runner:
        with pytest.raises(MaxRetriesExceeded) as info:
            runner.queue_task(t.AlwaysBreak(str(tries)))
        assert isinstance(info.value.__cause__, t.Broken)
        assert len(t.lines(tries)) == 3
        with pytest.raises(t.Broken):
            runner.queue_task_once(t.AlwaysBreak(str(tries)))
        assert len(t.lines(tries)) == 4


def test_runner_healthy_failure_is_not_retried(backend, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    with backend.runner(log.create, check_health=t.healthy, max_retries=3) as runner:
        with pytest.raises(ValueError, match="plain"):
            runner.queue_task(t.fail_plain)
        assert runner.stats().retried == 0


def test_runner_run_task_runs_in_the_caller_on_a_temporary_resource(backend, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    with backend.runner(log.create, log.destroy) as runner:
        assert runner.run_task(t.resource_is_mine)
        rid = runner.run_task(t.resource_id)
        assert rid in t.lines(tmp_path / "destroyed")


def test_runner_stop_refuses_new_tasks(backend, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    runner = backend.runner(log.create, log.destroy)
    assert runner.queue_task(t.resource_id) in t.lines(tmp_path / "created")
    runner.stop()
    assert runner.stopped
    with pytest.raises(RuntimeError):
        runner.submit(t.resource_id)
    with pytest.raises(RuntimeError):
        runner.run_task(t.resource_id)
