"""What only the Dask front ends have: the optional import, the mapping of
conexe priorities onto Dask's, and the errors of a task that can't travel."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types

import pytest

pytest.importorskip("distributed")

import _dask_tasks as t  # noqa: E402

from conexe import Task  # noqa: E402
from conexe import dask as conexe_dask  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_import_without_distributed_says_what_to_install():
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "try:\n    import conexe.dask\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert 'pip install "conexe[dask]"' in out.stdout, out.stderr


def test_core_package_does_not_import_the_dask_edge():
    code = "import sys, conexe; print('conexe.dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_priority_becomes_the_dask_priority(dask_client, tmp_path):
    with conexe_dask.ConcurrentExecutor(dask_client) as ex:
        release = tmp_path / "release"
        fut = ex.submit_task(
            Task("p", t.block, (str(tmp_path / "started"), str(release), 1), priority=7)
        )
        key = ex._pending[fut].key
        assert t.wait_for(tmp_path / "started")
        # Dask's TaskState.priority starts with the negated user priority.
        assert dask_client.run_on_scheduler(t.user_priority, key) == 7
        t.touch(release)
        assert fut.result(t.WAIT) == 1


def test_start_timeout_is_refused_with_a_reason(dask_client):
    with conexe_dask.ConcurrentExecutor(dask_client) as ex:
        with pytest.raises(ValueError, match="start_timeout"):
            ex.submit_task(Task("t", t.square, (2,), start_timeout=1.0))


def test_a_run_timeout_is_refused_with_a_reason(dask_client):
    # Task(timeout=) is a deadline the task reads through conexe.current_task(),
    # which a task on a Dask worker doesn't have: refused, not dropped.
    with conexe_dask.ConcurrentExecutor(dask_client) as ex:
        with pytest.raises(ValueError, match=r"Task\(timeout=\.\.\.\) is not supported"):
            ex.submit_task(Task("t", t.square, (2,), timeout=1.0))
    with conexe_dask.KeyedExecutor(dask_client) as keyed:
        with pytest.raises(ValueError, match=r"Task\(timeout=\.\.\.\) is not supported"):
            keyed.submit_task("k", Task("t", t.square, (2,), timeout=1.0))
        assert keyed.submit_task("k", Task("t", t.square, (3,))).result(t.WAIT) == 9


def test_task_that_does_not_pickle_fails_at_submit_and_frees_its_slot(dask_client):
    with conexe_dask.ConcurrentExecutor(dask_client, max_queue_size=1) as ex:
        with pytest.raises(TypeError, match="must pickle"):
            ex.submit(t.square, threading.Lock())
        assert ex.submit(t.square, 3).result(t.WAIT) == 9
        assert ex.stats()["in_flight"] == 0


def test_keyed_shutdown_waits_for_a_future_whose_key_is_already_free(dask_client):
    # A key is freed just before its future completes (so that whoever the
    # result wakes can submit on it again); shutdown(wait=True) must still
    # return only once the future is done. Completing is slowed down here
    # to hold that window open.
    from conexe._impl import core

    class SlowToComplete(core.Future):
        def set_result(self, result):
            time.sleep(0.3)
            super().set_result(result)

    class Keyed(conexe_dask.KeyedExecutor):
        _core = types.SimpleNamespace(Future=SlowToComplete)

    with Keyed(dask_client) as ex:
        fut = ex.submit("k", t.square, 3)
    assert fut.done() and fut.result() == 9


def test_keyed_waiting_task_fails_at_its_start_deadline_and_the_key_moves_on(dask_client, tmp_path):
    release = tmp_path / "release"
    with conexe_dask.KeyedExecutor(dask_client) as ex:
        head = ex.submit("k", t.block, str(tmp_path / "started"), str(release), "head")
        late = ex.submit_task("k", Task("late", t.square, (2,), start_timeout=0.01))
        with pytest.raises(TimeoutError):
            late.result(t.WAIT)
        after = ex.submit("k", t.square, 3)
        t.touch(release)
        assert head.result(t.WAIT) == "head" and after.result(t.WAIT) == 9
        assert ex.stats().failed == 1


def test_a_client_is_required():
    with pytest.raises(TypeError, match="distributed.Client"):
        conexe_dask.ConcurrentExecutor(object())


def test_runner_kill_cancels_queued_tasks_and_spares_running_ones(dask_client, tmp_path):
    log = t.ResourceLog(str(tmp_path))
    runner = conexe_dask.Runner(dask_client, log.create, log.destroy)
    release = tmp_path / "release"
    running = [
        runner.submit(t.BlockOnResource(str(tmp_path / f"started-{i}"), str(release)))
        for i in range(2)
    ]
    for i in range(2):
        assert t.wait_for(tmp_path / f"started-{i}")
    queued = [runner.submit(t.resource_id) for _ in range(3)]
    killer = threading.Thread(target=runner.kill)
    killer.start()
    for f in queued:
        with pytest.raises(Exception):  # noqa: B017 - CancelledError
            f.result(t.WAIT)
    assert all(f.cancelled() for f in queued)
    t.touch(release)
    killer.join(t.WAIT)
    assert [f.result(t.WAIT) for f in running] == ["done", "done"]
    assert sorted(t.lines(tmp_path / "created")) == sorted(t.lines(tmp_path / "destroyed"))


def test_results_that_end_together_come_back_in_batches(dask_client, tmp_path):
    """The executor gathers the results of the tasks that ended together in
    one request (counted through the client's own gather); each future still
    gets its own outcome, failures included."""
    release = tmp_path / "release"
    batches: list[int] = []
    real_gather = dask_client.gather

    def counting_gather(futures, *args, **kwargs):
        batches.append(len(futures))
        return real_gather(futures, *args, **kwargs)

    dask_client.gather = counting_gather  # the real one, counted
    try:
        with conexe_dask.ConcurrentExecutor(dask_client) as ex:
            # All of them end at about once: they wait for the same file.
            futs = [ex.submit(t.block, str(tmp_path / f"s{i}"), str(release), i) for i in range(4)]
            futs += [ex.submit(t.square, i) for i in range(60)]
            futs.append(ex.submit(t.fail, "boom"))
            t.touch(release)
            assert [f.result(timeout=60) for f in futs[:64]] == [0, 1, 2, 3] + [
                i * i for i in range(60)
            ]
            with pytest.raises(ValueError, match="boom"):
                futs[-1].result(timeout=60)
    finally:
        del dask_client.gather
    assert max(batches) > 1  # at least one gather brought several back
    assert sum(batches) <= 64  # never more than one fetch per result
