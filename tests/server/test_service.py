"""TaskService in-process, on both cores: dedup through the executor's own
dispatch map, refusals on a full queue, listings consistent with the
executor's counters, result retention, graceful stop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import conexe
from conexe.server._schema import TaskSpec
from conexe.server.service import TaskService
from support import Blocker, bind_core

from .conftest import wait_until


@pytest.fixture
def gate() -> Iterator[Blocker]:
    """Handler tasks ``wait`` block until the gate opens (at teardown at the latest)."""
    hold = Blocker()
    yield hold
    hold.release()


@pytest.fixture
def make(core: ModuleType, gate: Blocker) -> Iterator[Callable[..., TaskService]]:
    made: list[TaskService] = []
    handlers = {
        "wait": lambda: gate(True),
        "echo": lambda x: x,
        "fail": lambda: 1 / 0,
        "opaque": lambda: object(),
    }

    def make_service(pool: int = 2, queue: int = 10, **kw: Any) -> TaskService:
        svc = TaskService(
            pool,
            queue,
            handlers=handlers,
            executor_class=bind_core(conexe.KeyedExecutor, core),
            **kw,
        )
        made.append(svc)
        return svc

    yield make_service
    gate.release()
    for svc in made:
        svc.close()


def waiting(name: str) -> TaskSpec:
    return TaskSpec(name, handler="wait")


def names(listing: list[dict[str, Any]]) -> list[str]:
    return [t["name"] for t in listing]


def test_service_runs_on_the_bound_core(make: Callable[..., TaskService], core: ModuleType) -> None:
    assert make().stats()["core"] == core.IMPLEMENTATION


def test_running_and_pending_names_are_duplicates(make: Callable[..., TaskService]) -> None:
    svc = make(pool=1)
    assert svc.submit_batch([waiting("a"), waiting("b")]).accepted == ["a", "b"]
    wait_until(lambda: names(svc.running()) == ["a"], what="a running")
    out = svc.submit_batch([waiting("a"), waiting("b"), waiting("c"), waiting("c")])
    assert (out.accepted, out.duplicate, out.refused) == (["c"], ["a", "b", "c"], [])


def test_name_is_free_once_the_task_ended(make: Callable[..., TaskService]) -> None:
    svc = make()
    svc.submit_batch([TaskSpec("x", handler="echo", args=(1,))])
    wait_until(lambda: (svc.get("x") or {}).get("state") == "done", what="x done")
    assert svc.submit_batch([TaskSpec("x", handler="echo", args=(2,))]).accepted == ["x"]
    wait_until(lambda: (svc.get("x") or {}).get("result") == 2, what="second x done")


def test_full_queue_refuses_the_rest_of_the_batch(
    make: Callable[..., TaskService], gate: Blocker
) -> None:
    svc = make(pool=1, queue=2)
    svc.submit_batch([waiting("run")])
    wait_until(lambda: names(svc.running()) == ["run"], what="run running")
    out = svc.submit_batch([waiting(n) for n in ("p1", "p2", "p3", "run", "p4")])
    assert out.accepted == ["p1", "p2"]
    assert out.refused == ["p3", "p4"]
    assert out.duplicate == ["run"]  # a duplicate even though the queue is full
    assert out.to_json()["RefusedTasks"] == 2
    gate.release()
    wait_until(lambda: not svc.running() and not svc.pending(), what="the queue to empty")


def test_listings_agree_with_the_executor(make: Callable[..., TaskService], gate: Blocker) -> None:
    svc = make(pool=2, queue=10)
    svc.submit_batch([waiting(f"t{i}") for i in range(6)])

    def settled() -> bool:
        stats = svc.stats()
        ex = stats["executor"]
        return (len(svc.running()), len(svc.pending())) == (2, 4) == (ex["running"], ex["pending"])

    wait_until(settled, what="2 running and 4 pending, in the listings and the executor")
    assert names(svc.pending()) == ["t2", "t3", "t4", "t5"]
    gate.release()
    wait_until(lambda: svc.counts()["done"] == 6, what="all done")
    assert svc.stats()["executor"]["completed"] == 6


def test_results_errors_and_unserializable_results(make: Callable[..., TaskService]) -> None:
    svc = make()
    svc.submit_batch(
        [
            TaskSpec("ok", handler="echo", args=([1, "a"],)),
            TaskSpec("bad", handler="fail"),
            TaskSpec("odd", handler="opaque"),
        ]
    )
    wait_until(lambda: svc.counts()["done"] + svc.counts()["failed"] == 3, what="3 ended")
    assert svc.get("ok")["result"] == [1, "a"]  # type: ignore[index]
    assert svc.get("bad")["error"]["type"] == "ZeroDivisionError"  # type: ignore[index]
    odd = svc.get("odd")
    assert odd is not None and odd["result"] is None
    assert odd["result_repr"].startswith("<object object")


def test_finished_tasks_are_forgotten_after_keep_max(make: Callable[..., TaskService]) -> None:
    svc = make(keep_max=2)
    for name in ("f1", "f2", "f3"):
        svc.submit_batch([TaskSpec(name, handler="echo", args=(name,))])
        wait_until(
            lambda name=name: svc.get(name) is not None and svc.get(name)["state"] == "done",
            what=f"{name} done",
        )  # type: ignore[index]
    assert svc.get("f1") is None
    assert svc.get("f3")["result"] == "f3"  # type: ignore[index]


def test_finished_tasks_are_forgotten_after_keep_seconds(make: Callable[..., TaskService]) -> None:
    svc = make(keep_seconds=0)
    svc.submit_batch([TaskSpec("gone", handler="echo", args=(1,))])
    wait_until(lambda: svc.counts()["done"] == 1, what="gone done")
    assert svc.get("gone") is None


def test_history_counts_ended_tasks(make: Callable[..., TaskService]) -> None:
    svc = make()
    svc.submit_batch([TaskSpec(f"h{i}", duration=0) for i in range(7)])
    wait_until(lambda: svc.counts()["done"] == 7, what="7 done")
    history = svc.history(10)
    assert len(history) == 10
    assert sum(history) == 7


def test_stop_cancels_pending_and_waits_for_running(
    make: Callable[..., TaskService], gate: Blocker
) -> None:
    svc = make(pool=1)
    svc.submit_batch([waiting("r"), waiting("p1"), waiting("p2")])
    wait_until(lambda: names(svc.running()) == ["r"], what="r running")
    threading.Timer(0.05, gate.release).start()
    report = svc.stop(grace=30)
    assert report.cancelled_pending == ["p1", "p2"]
    assert (report.finished, report.interrupted, report.still_running) == (1, [], [])
    assert svc.get("p1")["state"] == "cancelled"  # type: ignore[index]
    with pytest.raises(RuntimeError, match="shutting down"):
        svc.submit_batch([waiting("late")])


def test_stop_with_drain_runs_the_queue(make: Callable[..., TaskService]) -> None:
    svc = make(pool=1)
    svc.submit_batch([TaskSpec(f"d{i}", duration=20) for i in range(4)])
    report = svc.stop(grace=30, drain=True)
    assert (report.finished, report.cancelled_pending) == (4, [])
    assert svc.counts()["done"] == 4
