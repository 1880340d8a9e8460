"""Runner: worker-owned resources, health checks and retries, strict
priority, run_task, bursting, stop/kill. Every test runs on both cores.

Resources are tracked by ``Resources``: every test that stops its Runner
checks that each resource created was destroyed exactly once. Tests wait
on Events, and poll ``stats()`` against a generous deadline where a
background thread (the burst monitor, on_create retries) has to act; no
assertion depends on timing.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from types import ModuleType
from typing import Any

import pytest

import conexe
import support
from conexe import MaxRetriesExceeded, QueueFull, Runner
from support import Blocker, child_env

DEADLINE = 30.0  # seconds a background thread gets to act before a test fails


class Res:
    """A resource: a numbered object that knows whether it was destroyed."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.alive = True

    def __repr__(self) -> str:
        return f"Res({self.ident})"


class CreateError(Exception):
    pass


class Broken(Exception):
    """Raised by tasks to say their resource is broken."""


def healthy(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


class Resources:
    """on_create/on_destroy that record what they did."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: list[Res] = []
        self.destroyed: list[Res] = []
        self.create_error: BaseException | None = None

    def create(self) -> Res:
        with self.lock:
            if self.create_error is not None:
                raise self.create_error
            res = Res(len(self.created))
            self.created.append(res)
            return res

    def destroy(self, res: Res) -> None:
        with self.lock:
            assert res.alive, f"{res} destroyed twice"
            res.alive = False
            self.destroyed.append(res)

    def live(self) -> list[Res]:
        with self.lock:
            return [r for r in self.created if r.alive]

    def assert_all_destroyed_once(self) -> None:
        with self.lock:
            assert sorted(r.ident for r in self.destroyed) == [r.ident for r in self.created]


def wait_until(predicate: Any, what: str) -> None:
    support.wait_until(predicate, DEADLINE, what)


def wait_replaced(runner: Any, replaced: int, workers: int) -> None:
    """Wait for the runner's ``replaced``-th worker swap and ``workers``
    workers holding a resource. A broken task's error reaches its caller
    before its worker swaps the resource, so the worker count alone may
    still be counting the broken worker."""
    wait_until(
        lambda: (s := runner.stats()).replaced == replaced and s.active_workers == workers,
        f"{replaced} replacements and {workers} workers",
    )


@pytest.fixture
def R(core: ModuleType) -> Any:  # noqa: N802 - a class
    # Runner bound to the core under test, with fast on_create retries to
    # keep the tests short.
    return type(
        "Runner", (Runner,), {"_core": core, "_create_backoff": 0.005, "_create_backoff_max": 0.05}
    )


@pytest.fixture
def res() -> Resources:
    return Resources()


# -- resources -------------------------------------------------------------------


def test_each_worker_creates_one_resource_and_stop_destroys_all(R: Any, res: Resources) -> None:
    runner = R(res.create, res.destroy, worker_count=3)
    wait_until(lambda: runner.stats().active_workers == 3, "3 workers")
    assert len(res.created) == 3 and res.destroyed == []
    runner.stop()
    assert runner.stats().active_workers == 0
    res.assert_all_destroyed_once()


def test_task_gets_its_workers_live_resource(R: Any, res: Resources) -> None:
    with R(res.create, res.destroy, worker_count=2) as runner:
        seen = [runner.submit(lambda r: (r, r.alive)).result() for _ in range(20)]
    assert all(alive for _, alive in seen)
    assert {r for r, _ in seen} <= set(res.created)
    res.assert_all_destroyed_once()


def test_resources_are_created_in_the_worker_thread(R: Any, res: Resources) -> None:
    threads: list[str] = []

    def create() -> Res:
        threads.append(threading.current_thread().name)
        return res.create()

    with R(create, res.destroy, thread_name_prefix="rt") as runner:
        name = runner.queue_task(lambda r: threading.current_thread().name)
    assert threads == [name] and name.startswith("rt")


def test_pool_resources_are_made_up_front(R: Any, res: Resources) -> None:
    runner = R(res.create, res.destroy, worker_count=1, resource_pool_size=2)
    assert len(res.created) >= 2
    assert runner.stats().available_resources == 2
    runner.stop()
    assert runner.stats().available_resources == 0
    res.assert_all_destroyed_once()


def test_failing_pool_creation_raises_and_destroys_what_was_made(R: Any, res: Resources) -> None:
    def create() -> Res:
        if len(res.created) == 2:
            raise CreateError("pool resource 3")
        return res.create()

    with pytest.raises(CreateError, match="pool resource 3"):
        R(create, res.destroy, resource_pool_size=4)
    assert len(res.created) == 2
    res.assert_all_destroyed_once()


def test_on_destroy_errors_are_logged_and_do_not_stop_shutdown(
    R: Any, res: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    def destroy(r: Res) -> None:
        res.destroy(r)
        raise OSError(f"cannot close {r}")

    runner = R(res.create, destroy, worker_count=2, resource_pool_size=1)
    wait_until(lambda: runner.stats().active_workers == 2, "2 workers")
    with caplog.at_level(logging.ERROR, logger="conexe"):
        runner.stop()
    res.assert_all_destroyed_once()
    assert runner.stats().destroy_failures == 3
    assert sum("on_destroy() raised" in r.getMessage() for r in caplog.records) == 3


# -- tasks -------------------------------------------------------------------------


def test_task_exception_lands_in_future_and_worker_keeps_its_resource(
    R: Any, res: Resources
) -> None:
    def task(r: Res) -> None:
        raise ValueError("bad input")

    with R(res.create, res.destroy) as runner:
        with pytest.raises(ValueError, match="bad input"):
            runner.queue_task(task)
        assert runner.queue_task(lambda r: r) is res.created[0]
        s = runner.stats()
    assert (s.failed, s.completed, s.replaced, len(res.created)) == (1, 1, 0, 1)


class Fatal(BaseException):
    pass


@pytest.mark.parametrize("exc", [Fatal("fatal"), SystemExit(3), KeyboardInterrupt()])
def test_base_exception_lands_in_future_and_worker_survives(
    R: Any, res: Resources, exc: BaseException
) -> None:
    def task(r: Res) -> None:
        raise exc

    with R(res.create, res.destroy) as runner:
        fut = runner.submit(task)
        assert fut.exception() is exc
        assert runner.queue_task(lambda r: r.ident) == 0
        assert runner.stats().active_workers == 1
    assert len(res.created) == 1
    res.assert_all_destroyed_once()


def test_submit_after_stop_raises_runtime_error(R: Any, res: Resources) -> None:
    runner = R(res.create, res.destroy)
    runner.stop()
    with pytest.raises(RuntimeError, match="after the Runner was stopped"):
        runner.submit(lambda r: r)
    with pytest.raises(RuntimeError, match="after the Runner was stopped"):
        runner.run_task(lambda r: r)


def test_bounded_queue_raises_queue_full(R: Any, res: Resources) -> None:
    hold = Blocker(then=lambda r: True)
    with R(res.create, res.destroy, max_queue_size=1) as runner:
        first = runner.submit(hold)
        assert hold.started.wait(DEADLINE)
        second = runner.submit(lambda r: 2)
        with pytest.raises(QueueFull):
            runner.submit(lambda r: 3)
        hold.release()
        assert first.result() and second.result() == 2


def test_full_queue_caller_runs_on_a_temporary_resource(R: Any, res: Resources) -> None:
    blocker = Blocker()
    with R(res.create, res.destroy, max_queue_size=1, on_full="caller_runs") as runner:
        runner.submit(blocker)
        assert blocker.started.wait(DEADLINE)
        runner.submit(lambda r: None)
        me = threading.current_thread()
        fut = runner.submit(lambda r: (threading.current_thread() is me, r.ident))
        assert fut.result() == (True, 1)  # resource 0 is the worker's
        assert not res.created[1].alive
        blocker.release()
    res.assert_all_destroyed_once()


@pytest.mark.parametrize(
    "bad",
    [
        {"worker_count": 0},
        {"worker_count": 1.5},
        {"max_retries": -1},
        {"resource_pool_size": -1},
        {"burst_task_threshold": -1},
        {"burst_worker_count": 0},
        {"burst_interval": 0},
        {"burst_interval": -1},
        {"max_worker_count": 1, "worker_count": 2},
        {"max_queue_size": -1},
        {"on_full": "drop"},
        {"block_timeout": -1},
        {"check_health": 3},
        {"thread_name_prefix": 7},
    ],
)
def test_bad_arguments_fail_at_the_call(R: Any, res: Resources, bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        R(res.create, res.destroy, **bad)
    assert res.created == []


def test_non_callable_on_create_is_a_type_error(R: Any) -> None:
    with pytest.raises(TypeError, match="on_create"):
        R(42)


# -- strict priority -------------------------------------------------------------------


def test_priority_is_strict_and_fifo_within_a_level(R: Any, res: Resources) -> None:
    blocker = Blocker()
    order: list[str] = []
    with R(res.create, res.destroy, worker_count=1) as runner:
        head = runner.submit(blocker)
        assert blocker.started.wait(DEADLINE)
        plan = [("a", 0), ("b", 5), ("c", 1), ("d", 5), ("e", 0), ("f", 3), ("g", -1), ("h", 1)]
        futs = [runner.submit(lambda r, n=n: order.append(n), priority=p) for n, p in plan]
        assert runner.stats().priority_tasks == 5
        assert runner.stats().queued_tasks == 3
        blocker.release()
        cf.wait([head, *futs])
    assert order == ["b", "d", "f", "c", "h", "a", "e", "g"]


def test_queue_task_with_priority_runs_before_queued_normal_tasks(R: Any, res: Resources) -> None:
    blocker = Blocker()
    order: list[str] = []
    with R(res.create, res.destroy, worker_count=1) as runner:
        runner.submit(blocker)
        assert blocker.started.wait(DEADLINE)
        normal = [runner.submit(lambda r, i=i: order.append(f"n{i}")) for i in range(3)]
        urgent = threading.Thread(
            target=runner.queue_task_with_priority, args=(lambda r: order.append("urgent"),)
        )
        urgent.start()
        wait_until(lambda: runner.stats().priority_tasks == 1, "the urgent task queued")
        blocker.release()
        urgent.join()
        cf.wait(normal)
    assert order == ["urgent", "n0", "n1", "n2"]


# -- health checks and retries ------------------------------------------------------------


def breaking_task(attempts: list[Res], fail_times: int) -> Any:
    """A task that breaks its resource on its first ``fail_times`` tries."""

    def task(r: Res) -> str:
        attempts.append(r)
        if len(attempts) <= fail_times:
            raise Broken(f"try {len(attempts)} broke {r}")
        return f"done on {r}"

    return task


def test_broken_resource_is_replaced_and_task_retried(R: Any, res: Resources) -> None:
    attempts: list[Res] = []
    runner = R(res.create, res.destroy, check_health=healthy, max_retries=2)
    assert runner.queue_task(breaking_task(attempts, 2)) == "done on Res(2)"
    assert attempts == res.created[:3]  # each try on a fresh resource
    assert [r.alive for r in attempts] == [False, False, True]
    wait_replaced(runner, 2, 1)
    s = runner.stats()
    assert (s.retried, s.replaced, s.completed, s.failed) == (2, 2, 1, 0)
    runner.stop()
    res.assert_all_destroyed_once()


def test_max_retries_exceeded_is_chained_to_the_last_error(R: Any, res: Resources) -> None:
    attempts: list[Res] = []
    with R(res.create, res.destroy, check_health=healthy, max_retries=2) as runner:
        with pytest.raises(MaxRetriesExceeded) as info:
            runner.queue_task(breaking_task(attempts, 99))
        wait_replaced(runner, 3, 1)
        s = runner.stats()
    assert "max retries exceeded" in str(info.value)
    assert isinstance(info.value.__cause__, Broken)
    assert str(info.value.__cause__) == "try 3 broke Res(2)"
    assert len(attempts) == 3
    assert (s.retried, s.replaced, s.failed) == (2, 3, 1)
    assert len(res.created) == 4
    res.assert_all_destroyed_once()


def test_max_retries_zero_means_one_try(R: Any, res: Resources) -> None:
    attempts: list[Res] = []
    with R(res.create, res.destroy, check_health=healthy) as runner:
        with pytest.raises(MaxRetriesExceeded, match="max retries exceeded"):
            runner.queue_task(breaking_task(attempts, 99))
        wait_replaced(runner, 1, 1)
        s = runner.stats()
    assert len(attempts) == 1
    assert (s.retried, s.replaced) == (0, 1)
    res.assert_all_destroyed_once()


@pytest.mark.parametrize("method", ["submit", "queue_task_once", "queue_task_with_priority_once"])
def test_once_tasks_are_never_retried(R: Any, res: Resources, method: str) -> None:
    attempts: list[Res] = []
    with R(res.create, res.destroy, check_health=healthy, max_retries=5) as runner:
        task = breaking_task(attempts, 99)
        with pytest.raises(Broken, match="try 1 broke"):
            if method == "submit":
                runner.submit(task, once=True).result()
            else:
                getattr(runner, method)(task)
        wait_replaced(runner, 1, 1)
        s = runner.stats()
    assert len(attempts) == 1
    assert (s.retried, s.replaced, s.failed) == (0, 1, 1)
    res.assert_all_destroyed_once()


def test_healthy_errors_fail_without_replacing_the_worker(R: Any, res: Resources) -> None:
    def task(r: Res) -> None:
        raise ValueError("just this task")

    with R(res.create, res.destroy, check_health=healthy, max_retries=3) as runner:
        with pytest.raises(ValueError, match="just this task"):
            runner.queue_task(task)
        s = runner.stats()
    assert (s.retried, s.replaced, len(res.created)) == (0, 0, 1)


def test_a_check_health_that_raises_counts_as_broken(R: Any, res: Resources) -> None:
    def check(exc: BaseException) -> bool:
        raise RuntimeError("health check bug")

    attempts: list[Res] = []
    with R(res.create, res.destroy, check_health=check, max_retries=1) as runner:
        assert runner.queue_task(breaking_task(attempts, 1)) == "done on Res(1)"
        assert runner.stats().retried == 1
    res.assert_all_destroyed_once()


def test_replaced_workers_are_always_replaced(R: Any, res: Resources) -> None:
    attempts: list[Res] = []
    runner = R(res.create, res.destroy, worker_count=2, check_health=healthy)
    for _ in range(5):
        with pytest.raises(Broken):
            runner.submit(breaking_task(attempts, 99), once=True).result()
    wait_replaced(runner, 5, 2)
    assert len(res.live()) == 2
    assert len(res.created) == 7 and len(res.destroyed) == 5
    assert runner.stats().replaced == 5
    runner.stop()
    res.assert_all_destroyed_once()


def test_retry_runs_on_another_worker_while_the_replacement_cannot_be_made(
    R: Any, res: Resources
) -> None:
    # The broken worker leaves and its replacement can't be made: the
    # retried task must wake the idle worker instead of waiting for it.
    attempts: list[Res] = []
    runner = R(res.create, res.destroy, worker_count=2, check_health=healthy, max_retries=1)
    try:
        wait_until(lambda: runner.stats().active_workers == 2, "2 workers")
        res.create_error = CreateError("no more connections")
        fut = runner.submit(breaking_task(attempts, 1))
        assert fut.result(timeout=DEADLINE).startswith("done on")
        assert attempts[0] is not attempts[1] and attempts[1].alive
        wait_until(lambda: runner.stats().create_failures >= 1, "a failed creation")
    finally:
        runner.kill()
    res.assert_all_destroyed_once()


# -- on_create failures -------------------------------------------------------------------


def test_failing_on_create_fails_tasks_with_the_creation_error_then_recovers(
    R: Any, res: Resources
) -> None:
    res.create_error = CreateError("database down")
    runner = R(res.create, res.destroy, worker_count=2)
    with pytest.raises(CreateError, match="database down"):
        runner.queue_task(lambda r: r)
    s = runner.stats()
    assert s.create_failures >= 1 and s.active_workers == 0
    assert isinstance(s.last_create_error, CreateError)

    res.create_error = None
    wait_until(lambda: runner.stats().active_workers == 2, "the workers to recover")
    assert runner.queue_task(lambda r: r.alive) is True
    assert runner.stats().last_create_error is None
    runner.stop()
    res.assert_all_destroyed_once()


def test_stop_while_on_create_keeps_failing_does_not_hang(R: Any, res: Resources) -> None:
    res.create_error = CreateError("database down")
    runner = R(res.create, res.destroy, worker_count=2)
    wait_until(lambda: runner.stats().create_failures >= 2, "failed creations")
    runner.stop()
    assert res.created == []


def test_a_queued_task_is_not_left_pending_when_the_only_other_worker_is_leaving(
    R: Any, res: Resources
) -> None:
    # The base worker's resource breaks and can't be remade while the only
    # other worker is a burst one told to go: that one leaves after its task,
    # queue or not, so the queued task must fail with the creation error
    # (before, the base worker counted on it, and stop() left the task
    # pending for ever).
    runner = R(
        res.create,
        res.destroy,
        worker_count=1,
        check_health=healthy,
        burst_task_threshold=0,
        burst_worker_count=1,
        burst_interval=0.005,
        max_worker_count=2,
    )
    release = {name: threading.Event() for name in ("base", "burst")}

    def hold(name: str, broken: bool) -> Any:
        def task(r: Res) -> str:
            release[name].wait()  # set by the finally below at the latest
            if broken:
                raise Broken(name)
            return name

        return task

    try:
        base = runner.submit(hold("base", True))
        wait_until(lambda: runner.stats().running == 1, "the base worker's task")
        burst = runner.submit(hold("burst", False))
        wait_until(lambda: runner.stats().burst_workers == 1, "a burst worker")
        wait_until(lambda: runner.stats().running == 2, "the burst worker's task")
        # The queue is empty again: the monitor tells the burst worker to go.
        wait_until(lambda: any(s.leaving for s in runner._slots), "the burst worker told to go")
        res.create_error = CreateError("database down")
        release["base"].set()
        with pytest.raises(MaxRetriesExceeded):
            base.result(timeout=DEADLINE)
        wait_until(lambda: runner.stats().create_failures >= 1, "a failed creation")
        queued = runner.submit(lambda r: "ran")
        with pytest.raises(CreateError, match="database down"):
            queued.result(timeout=DEADLINE)
        release["burst"].set()
        assert burst.result(timeout=DEADLINE) == "burst"
        runner.stop()
    finally:
        release["burst"].set()
        runner.kill()
    assert runner.stats().queued_tasks == 0
    res.assert_all_destroyed_once()


# -- run_task ------------------------------------------------------------------------------


def test_run_task_uses_a_pooled_resource_in_the_callers_thread(R: Any, res: Resources) -> None:
    with R(res.create, res.destroy, resource_pool_size=1) as runner:
        pooled = set(res.created)
        me = threading.current_thread()
        got, thread = runner.run_task(lambda r: (r, threading.current_thread()))
        assert got in pooled and got.alive and thread is me
        assert runner.stats().available_resources == 1
        assert runner.run_task(lambda r: r) is got  # back in the pool, reused
    res.assert_all_destroyed_once()


def test_run_task_with_the_pool_in_use_makes_a_temporary_resource(R: Any, res: Resources) -> None:
    with R(res.create, res.destroy, resource_pool_size=1) as runner:

        def outer(pooled: Res) -> tuple[Res, Res, bool]:
            assert runner.stats().available_resources == 0
            inner = runner.run_task(lambda r: r)
            return pooled, inner, inner.alive

        pooled, temporary, alive_during = runner.run_task(outer)
        assert pooled is not temporary
        assert not temporary.alive and pooled.alive
        assert alive_during is False  # destroyed as soon as its call returned
        assert runner.stats().available_resources == 1
    res.assert_all_destroyed_once()


def test_run_task_without_a_pool_creates_and_destroys_a_temporary_resource(
    R: Any, res: Resources
) -> None:
    with R(res.create, res.destroy, resource_pool_size=0) as runner:
        wait_until(lambda: runner.stats().active_workers == 1, "the worker")
        r = runner.run_task(lambda r: r)
        assert r is res.created[1] and not r.alive
        assert runner.stats().available_resources == 0
    res.assert_all_destroyed_once()


def test_run_task_broken_pool_resource_is_destroyed_and_the_pool_refills(
    R: Any, res: Resources
) -> None:
    with R(res.create, res.destroy, check_health=healthy, resource_pool_size=1) as runner:
        pooled = runner.run_task(lambda r: r)

        def breaks(r: Res) -> None:
            raise Broken("pool resource broke")

        with pytest.raises(Broken):
            runner.run_task(breaks)
        assert not pooled.alive
        assert runner.stats().available_resources == 0
        refill = runner.run_task(lambda r: r)  # temporary, kept to refill the pool
        assert refill.alive and runner.stats().available_resources == 1
    res.assert_all_destroyed_once()


def test_run_task_raises_the_creation_error_when_no_resource_can_be_made(
    R: Any, res: Resources
) -> None:
    with R(res.create, res.destroy) as runner:
        wait_until(lambda: runner.stats().active_workers == 1, "the worker")
        res.create_error = CreateError("no capacity")
        with pytest.raises(CreateError, match="no capacity"):
            runner.run_task(lambda r: r)
        assert runner.stats().create_failures == 1
    res.assert_all_destroyed_once()


# -- stop and kill ----------------------------------------------------------------------------


def test_stop_lets_queued_and_running_tasks_finish_on_live_resources(
    R: Any, res: Resources
) -> None:
    hold = Blocker(then=lambda r: r.alive)
    runner = R(res.create, res.destroy, worker_count=1, resource_pool_size=1)
    first = runner.submit(hold)
    assert hold.started.wait(DEADLINE)
    queued = [runner.submit(lambda r: r.alive) for _ in range(5)]
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    wait_until(lambda: runner.stopped, "stop() to begin")
    with pytest.raises(RuntimeError):
        runner.submit(lambda r: r)
    assert not any(f.done() for f in queued)
    hold.release()
    stopper.join()
    assert first.result() is True and [f.result() for f in queued] == [True] * 5
    res.assert_all_destroyed_once()
    runner.stop()  # a second stop is a no-op
    res.assert_all_destroyed_once()
    assert runner.stats().completed == 6


def test_stop_with_timeout_raises_while_busy_and_can_be_called_again(
    R: Any, res: Resources
) -> None:
    hold = Blocker(then=lambda r: True)
    runner = R(res.create, res.destroy)
    fut = runner.submit(hold)
    assert hold.started.wait(DEADLINE)
    with pytest.raises(TimeoutError, match="1 task still running, 0 queued"):
        runner.stop(timeout=0)
    hold.release()
    runner.stop()
    assert fut.result() is True
    res.assert_all_destroyed_once()


def test_kill_cancels_queued_tasks_wakes_waiters_and_lets_running_finish(
    R: Any, res: Resources
) -> None:
    hold = Blocker(then=lambda r: r.alive)
    runner = R(res.create, res.destroy, worker_count=1, resource_pool_size=1)
    first = runner.submit(hold)
    assert hold.started.wait(DEADLINE)
    queued = [runner.submit(lambda r: r) for _ in range(4)]
    waiter_error: list[BaseException] = []

    def wait_in_queue_task() -> None:
        try:
            runner.queue_task(lambda r: r)
        except BaseException as exc:
            waiter_error.append(exc)

    waiter = threading.Thread(target=wait_in_queue_task)
    waiter.start()
    wait_until(lambda: runner.stats().queued_tasks == 5, "5 queued tasks")
    cancelled: list[int] = []
    killer = threading.Thread(target=lambda: cancelled.append(runner.kill()))
    killer.start()
    waiter.join()  # woken by the kill while the first task still runs
    assert isinstance(waiter_error[0], cf.CancelledError)
    assert all(f.cancelled() for f in queued)
    assert not first.done()
    hold.release()
    killer.join()
    assert first.result() is True
    assert cancelled == [5]
    assert runner.stats().cancelled == 5
    res.assert_all_destroyed_once()


def test_context_manager_stops_and_destroys_everything(R: Any, res: Resources) -> None:
    with R(res.create, res.destroy, worker_count=2, resource_pool_size=2) as runner:
        assert runner.queue_task(lambda r: 1) == 1
    assert runner.stopped
    res.assert_all_destroyed_once()


# -- bursting -----------------------------------------------------------------------------------


def test_bursting_adds_workers_up_to_the_max_then_they_leave(R: Any, res: Resources) -> None:
    hold = Blocker()
    runner = R(
        res.create,
        res.destroy,
        worker_count=1,
        burst_task_threshold=2,
        burst_worker_count=2,
        burst_interval=0.005,
        max_worker_count=3,
    )
    wait_until(lambda: runner.stats().active_workers == 1, "the base worker")
    futs = [runner.submit(hold) for _ in range(6)]
    # 1 running, 5 queued > 2: two burst workers join and take a task each.
    wait_until(lambda: runner.stats().burst_workers == 2, "2 burst workers")
    wait_until(lambda: runner.stats().running == 3, "3 running tasks")
    s = runner.stats()
    assert (s.active_workers, s.base_workers, s.queued_tasks) == (3, 1, 3)
    assert len(res.created) == 3  # never more than max_worker_count
    hold.release()
    used = {f.result() for f in futs}
    wait_until(lambda: runner.stats().burst_workers == 0, "the burst workers to leave")
    wait_until(lambda: len(res.destroyed) == 2, "the burst resources destroyed")
    assert runner.stats().active_workers == 1
    assert res.live() == [res.created[0]]  # the base worker stays
    assert used <= set(res.created)
    runner.stop()
    res.assert_all_destroyed_once()


def test_burst_workers_finish_their_task_before_leaving(R: Any, res: Resources) -> None:
    hold = Blocker(then=lambda r: r.alive)
    runner = R(
        res.create,
        res.destroy,
        worker_count=1,
        burst_task_threshold=0,
        burst_worker_count=2,
        burst_interval=0.005,
    )
    wait_until(lambda: runner.stats().active_workers == 1, "the base worker")
    futs = [runner.submit(hold) for _ in range(3)]
    wait_until(lambda: runner.stats().running == 3, "3 running tasks")
    # Nothing is queued now: the monitor tells the burst workers to go, but
    # they hold their resources until their task is done.
    assert runner.stats().burst_workers == 2
    hold.release()
    assert [f.result() for f in futs] == [True, True, True]
    wait_until(lambda: runner.stats().burst_workers == 0, "the burst workers to leave")
    runner.stop()
    res.assert_all_destroyed_once()


def test_no_burst_monitor_without_a_threshold(R: Any, res: Resources) -> None:
    hold = Blocker()
    with R(res.create, res.destroy, thread_name_prefix="nob") as runner:
        futs = [runner.submit(hold) for _ in range(20)]
        names = [t.name for t in threading.enumerate() if t.name.startswith("nob")]
        assert names and not any(n.endswith("_burst") for n in names)
        hold.release()
        cf.wait(futs)
    assert len(res.created) == 1


# -- stats --------------------------------------------------------------------------------------


def test_stats_report_latency_percentiles(R: Any, res: Resources) -> None:
    with R(res.create, res.destroy, worker_count=2) as runner:
        cf.wait([runner.submit(lambda r: sum(range(100))) for _ in range(200)])
        s = runner.stats()
    assert s.completed == 200
    assert 0 < s.run_p50 <= s.run_p95 <= s.run_p99
    assert 0 < s.wait_p50 <= s.wait_p95 <= s.wait_p99
    assert isinstance(s, conexe.RunnerStats)
    with pytest.raises(AttributeError):
        s.completed = 0  # type: ignore[misc]


# -- Ctrl-C ----------------------------------------------------------------------------------

CTRL_C_SCRIPT = """
import threading, time
import conexe
gate = threading.Event()
runner = conexe.Runner(lambda: 1)
started = threading.Event()
runner.submit(lambda r: (started.set(), gate.wait()))
started.wait()

def announce(phase, waiting):  # once the main thread is in its wait
    def watch():
        while not waiting():
            time.sleep(0.001)
        print("waiting in", phase, flush=True)
    threading.Thread(target=watch, daemon=True).start()

for phase, waiting, wait in [
    ("queue_task", lambda: runner.stats().queued_tasks == 1,
     lambda: runner.queue_task(lambda r: print("ran"))),
    ("stop", lambda: runner.stopped, runner.stop),
]:
    try:
        announce(phase, waiting)
        wait()
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted", phase, flush=True)
gate.set()
runner.stop()
print("stopped, cancelled:", runner.stats().cancelled, flush=True)
"""


@pytest.mark.timeout(120)
def test_ctrl_c_interrupts_queue_task_and_stop(core: ModuleType) -> None:
    import signal
    import subprocess
    import sys

    env = child_env(core)
    lines = []
    with subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            for phase in ("queue_task", "stop"):
                line = proc.stdout.readline().strip()
                assert line == f"waiting in {phase}", line + proc.stderr.read()
                proc.send_signal(signal.SIGINT)
                lines.append(proc.stdout.readline().strip())
            proc.wait(timeout=DEADLINE)
            # Not communicate(): with a timeout it reads the pipe itself,
            # losing what readline() already buffered.
            out, err = proc.stdout.read(), proc.stderr.read()
        finally:
            proc.kill()
    assert lines == ["interrupted queue_task", "interrupted stop"], err
    # The interrupted queue_task cancelled its task: it never ran.
    assert out == "stopped, cancelled: 1\n", err


# The SIGINT's C handler runs while the main thread is parked, without
# interrupting its park: the main thread blocks SIGINT, so the kernel hands
# the signal to the one thread that accepts it. This is what a SIGINT that
# lands just before the main thread parks does (CPython checks for signals
# only when the park itself is interrupted); the wait must still end.
FLAGGED_CTRL_C_SCRIPT = """
import faulthandler, os, signal, threading, time
import conexe
# A hang shows every thread's stack in the failure, not just a timeout.
faulthandler.dump_traceback_later(25, exit=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
gate = threading.Event()
runner = conexe.Runner(lambda: 1)
started = threading.Event()
runner.submit(lambda r: (started.set(), gate.wait()))
started.wait()

MAIN_TID = threading.main_thread().native_id

def main_thread_asleep():
    # Blocked in the kernel, twice in a row 2 ms apart (not just waiting
    # for the GIL this thread releases while it sleeps): parked.
    def state():
        with open(f"/proc/self/task/{MAIN_TID}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    if state() != "S":
        return False
    time.sleep(0.002)
    return state() == "S"

def flag_when(waiting):
    def send():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        while not (waiting() and main_thread_asleep()):
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)  # handled in this thread
        time.sleep(30)
    threading.Thread(target=send, daemon=True).start()

for phase, waiting, wait in [
    ("queue_task", lambda: runner.stats().queued_tasks == 1,
     lambda: runner.queue_task(lambda r: print("ran"))),
    ("stop", lambda: runner.stopped, runner.stop),
]:
    try:
        flag_when(waiting)
        wait()
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted", phase, flush=True)
gate.set()
runner.stop()
print("stopped, cancelled:", runner.stats().cancelled, flush=True)
"""


@pytest.mark.timeout(120)
def test_ctrl_c_flagged_while_parked_still_interrupts(core: ModuleType) -> None:
    import subprocess
    import sys

    env = child_env(core)
    proc = subprocess.run(
        [sys.executable, "-c", FLAGGED_CTRL_C_SCRIPT],
        env=env,
        text=True,
        capture_output=True,
        timeout=DEADLINE,
    )
    expected = "interrupted queue_task\ninterrupted stop\nstopped, cancelled: 1\n"
    assert proc.stdout == expected, proc.stderr
