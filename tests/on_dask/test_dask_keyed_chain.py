"""``conexe.dask.KeyedExecutor(chain="cluster")``: a key's order kept by
the scheduler (each task a Dask dependency of its key's previous one) on a
real LocalCluster; what it keeps of the default chain's behaviour, and what
it gives up (cancelling, start deadlines) said at the call."""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest

pytest.importorskip("distributed")

import _dask_tasks as t  # noqa: E402

from conexe import Task  # noqa: E402
from conexe import dask as conexe_dask  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class Unpicklable(Exception):
    def __reduce__(self):  # type: ignore[no-untyped-def]
        raise TypeError("this exception does not pickle")


def fail_unpicklably() -> None:
    raise Unpicklable("kept on the worker")


@pytest.fixture
def chained(dask_client):  # type: ignore[no-untyped-def]
    with conexe_dask.KeyedExecutor(dask_client, chain="cluster") as ex:
        yield ex


def test_a_keys_tasks_run_in_order_and_never_overlap(chained, tmp_path):
    keys = ("a", "b", "c")
    futures = t.submit_exclusive_steps(chained, keys, 12, tmp_path)
    done, not_done = cf.wait(futures, timeout=t.WAIT)
    assert not not_done
    for key in keys:
        assert t.lines(tmp_path / f"{key}.log") == [f"{key}{i}" for i in range(12)]
    assert [f.result() for f in futures[:3]] == ["a0", "b0", "c0"]


def test_different_keys_run_at_the_same_time(chained, tmp_path):
    a = chained.submit("a", t.meet, str(tmp_path / "a"), str(tmp_path / "b"))
    b = chained.submit("b", t.meet, str(tmp_path / "b"), str(tmp_path / "a"))
    assert a.result(t.WAIT) and b.result(t.WAIT)


def test_a_failure_reaches_its_future_and_never_stops_the_key(chained):
    first = chained.submit("k", t.square, 3)
    broken = chained.submit("k", t.fail, "boom")
    after = chained.submit("k", t.square, 4)
    with pytest.raises(ValueError, match="boom"):
        broken.result(t.WAIT)
    assert first.result(t.WAIT) == 9 and after.result(t.WAIT) == 16
    s = chained.stats()
    assert (s.completed, s.failed, s.running, s.active_keys) == (2, 1, 0, 0)


def test_an_exception_that_does_not_pickle_is_described_not_lost(chained):
    broken = chained.submit("k", fail_unpicklably)
    after = chained.submit("k", t.square, 5)
    with pytest.raises(RuntimeError, match=r"Unpicklable: kept on the worker \(the exception"):
        broken.result(t.WAIT)
    assert after.result(t.WAIT) == 25


def test_a_submitted_task_is_on_the_cluster_and_cannot_be_cancelled(chained, tmp_path):
    release = tmp_path / "release"
    head = chained.submit("k", t.block, str(tmp_path / "started"), str(release), "head")
    behind = chained.submit("k", t.square, 6)
    assert t.wait_for(tmp_path / "started")
    assert not behind.cancel() and behind.running()
    assert chained.stats().pending == 0 and chained.stats().running == 2
    t.touch(release)
    assert head.result(t.WAIT) == "head" and behind.result(t.WAIT) == 36


def test_start_timeout_is_refused_at_the_call(chained):
    with pytest.raises(ValueError, match="start_timeout.*chain='client'"):
        chained.submit_task("k", Task("t", t.square, (2,), start_timeout=1.0))
    assert chained.submit_task("k", Task("t", t.square, (3,), priority=2)).result(t.WAIT) == 9


def test_submit_unique_sees_the_key_busy_until_its_last_task_ends(chained, tmp_path):
    release = tmp_path / "release"
    head = chained.submit_unique("k", t.block, str(tmp_path / "started"), str(release), 1)
    assert head is not None
    tail = chained.submit("k", t.square, 2)
    assert chained.submit_unique("k", t.square, 3) is None
    t.touch(release)
    assert head.result(t.WAIT) == 1
    assert tail.result(t.WAIT) == 4
    again = chained.submit_unique("k", t.square, 5)
    assert again is not None and again.result(t.WAIT) == 25


def test_a_task_that_does_not_pickle_fails_and_the_key_goes_on(dask_client):
    with conexe_dask.KeyedExecutor(dask_client, max_queue_size=1, chain="cluster") as ex:
        with pytest.raises(TypeError, match="must pickle"):
            ex.submit("k", t.square, threading.Lock()).result(t.WAIT)
        assert ex.submit("k", t.square, 3).result(t.WAIT) == 9
        s = ex.stats()
        assert (s.failed, s.completed, s.active_keys) == (1, 1, 0)


def test_shutdown_waits_for_every_chain(dask_client, tmp_path):
    ex = conexe_dask.KeyedExecutor(dask_client, chain="cluster")
    futures = [
        ex.submit(k, t.append, str(tmp_path / f"{k}.log"), str(i)) for i in range(20) for k in "ab"
    ]
    ex.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert t.lines(tmp_path / "a.log") == [str(i) for i in range(20)]
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit("a", t.square, 1)


def test_chain_must_be_client_or_cluster(dask_client):
    with pytest.raises(ValueError, match="chain must be 'client' or 'cluster', not 'server'"):
        conexe_dask.KeyedExecutor(dask_client, chain="server")  # type: ignore[arg-type]
