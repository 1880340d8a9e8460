"""KeyedExecutor: one key's tasks in order and one at a time, different keys
in parallel, on both cores."""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import enum
import logging
import threading
from collections import defaultdict
from types import ModuleType
from typing import Any

import pytest

import conexe
from conexe import KeyedExecutor, QueueFull, Task
from support import Blocker, HoldOnRelease, bind_core, made_in_a_thread_that_ends

WAIT = 30  # seconds: generous bound for any single wait on a slow machine


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(KeyedExecutor, core)


class InFlight:
    """Per-key in-flight counter: records the most tasks of one key that
    ever ran at the same time, and the order each key's tasks ran in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[Any, int] = defaultdict(int)
        self.max_overlap = 0
        self.order: dict[Any, list[Any]] = defaultdict(list)

    def task(self, key: Any, item: Any) -> Any:
        with self.lock:
            self.running[key] += 1
            self.max_overlap = max(self.max_overlap, self.running[key])
            self.order[key].append(item)
        # Give other workers a chance to run this key's next task now, if
        # the executor (wrongly) let them.
        threading.Event().wait(0.0001)
        with self.lock:
            self.running[key] -= 1
        return item


# -- the seed's cases ------------------------------------------------------------


def test_ten_increments_on_one_key_give_ten(Keyed: Any) -> None:
    counter = [0]

    def increment() -> None:
        value = counter[0]
        threading.Event().wait(0.0001)  # a race would lose an increment here
        counter[0] = value + 1

    with Keyed(max_workers=4) as ex:
        for _ in range(10):
            ex.submit("counter", increment)
    assert counter[0] == 10


def test_five_keys_ten_tasks_each_run_in_order_per_key(Keyed: Any) -> None:
    probe = InFlight()
    with Keyed(max_workers=4) as ex:
        futures = [ex.submit(f"key-{k}", probe.task, k, i) for i in range(10) for k in range(5)]
    assert [f.result() for f in futures] == [i for i in range(10) for _ in range(5)]
    assert probe.order == {k: list(range(10)) for k in range(5)}
    assert probe.max_overlap == 1


# -- the striped-executor cases ------------------------------------------------------


def test_one_key_runs_a_hundred_tasks_in_submission_order(Keyed: Any) -> None:
    probe = InFlight()
    with Keyed(max_workers=8) as ex:
        for i in range(100):
            ex.submit("stripe", probe.task, "stripe", i)
    assert probe.order["stripe"] == list(range(100))
    assert probe.max_overlap == 1


def test_twenty_producers_keep_their_order_per_key_and_never_overlap(Keyed: Any) -> None:
    probe = InFlight()
    start = threading.Barrier(20)

    def produce(ex: Any, producer: int) -> None:
        start.wait(WAIT)
        for i in range(100):
            key = (producer + i) % 5
            ex.submit(key, probe.task, key, (producer, i))

    with Keyed(max_workers=8) as ex:
        producers = [threading.Thread(target=produce, args=(ex, p)) for p in range(20)]
        for t in producers:
            t.start()
        for t in producers:
            t.join(WAIT)
    assert probe.max_overlap == 1
    assert sum(len(v) for v in probe.order.values()) == 2000
    for key, items in probe.order.items():
        by_producer: dict[int, list[int]] = defaultdict(list)
        for producer, i in items:
            by_producer[producer].append(i)
        for producer, seq in by_producer.items():
            assert seq == sorted(seq), (key, producer)
            assert seq == [i for i in range(100) if (producer + i) % 5 == key]
    assert ex.stats().completed == 2000


def test_cancel_futures_accounts_for_every_task_and_wakes_waiters(Keyed: Any) -> None:
    executed: list[int] = []
    task = Blocker(then=executed.append)
    ex = Keyed(max_workers=2)
    futures = [ex.submit(i % 3, task, i) for i in range(100)]
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: (cf.wait([futures[-1]], timeout=WAIT), woke.set()))
    waiter.start()
    ex.shutdown(wait=False, cancel_futures=True)
    task.release()
    ex.shutdown(wait=True)
    waiter.join(WAIT)
    assert woke.is_set()
    cancelled = [f for f in futures if f.cancelled()]
    assert len(executed) + len(cancelled) == 100
    assert len(executed) <= 2  # only tasks already running when it shut down
    assert futures[-1].cancelled()
    with pytest.raises(cf.CancelledError):
        futures[-1].result(timeout=0)
    s = ex.stats()
    assert s.submitted == s.completed + s.cancelled == 100
    assert (s.pending, s.running, s.active_keys) == (0, 0, 0)


# -- no head-of-line blocking -------------------------------------------------------


def test_blocked_key_never_delays_another_key_while_a_worker_is_free(Keyed: Any) -> None:
    blocker = Blocker()
    with Keyed(max_workers=2) as ex:
        blocked = [ex.submit("A", blocker, True) for _ in range(5)]
        try:
            # Many tasks behind A's head, and B's tasks all after them.
            others = [ex.submit("B", pow, 2, i) for i in range(50)]
            assert [f.result(timeout=WAIT) for f in others] == [2**i for i in range(50)]
            assert not blocked[0].done()
            s = ex.stats()
            assert s.running == 1 and s.pending == 4 and s.active_keys == 1
        finally:
            blocker.release()
    assert all(f.result() is True for f in blocked)


def test_a_slow_key_holds_at_most_one_worker(Keyed: Any) -> None:
    slow = Blocker()
    with Keyed(max_workers=3) as ex:
        try:
            for _ in range(10):
                ex.submit("slow", slow)
            assert slow.started.wait(WAIT)
            results = [ex.submit(k, str, k) for k in range(30)]
            assert [f.result(timeout=WAIT) for f in results] == [str(k) for k in range(30)]
            assert ex.stats().running == 1
        finally:
            slow.release()


# -- failures, keys, dedup ----------------------------------------------------------------


def test_a_failing_task_does_not_stop_its_key(Keyed: Any) -> None:
    with Keyed(max_workers=2) as ex:
        bad = ex.submit("k", int, "x")
        good = ex.submit("k", int, "7")
    assert isinstance(bad.exception(), ValueError)
    assert good.result() == 7
    s = ex.stats()
    assert (s.completed, s.failed) == (1, 1)


class Color(enum.Enum):
    RED = 1


class Account:
    """Equal when the numbers are: distinct objects, one key."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __hash__(self) -> int:
        return hash(("account", self.number))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Account) and other.number == self.number


EXOTIC_KEYS = [
    "text",
    2**200,
    -(2**70),
    b"\x00bytes",
    (1, "a", (2, 3)),
    Color.RED,
    frozenset({1, 2, 3}),
    None,
    Account(42),
    3.5,
]


def test_any_hashable_key_keeps_its_order(Keyed: Any) -> None:
    probe = InFlight()
    with Keyed(max_workers=4) as ex:
        for i in range(5):
            for key in EXOTIC_KEYS:
                ex.submit(key, probe.task, key, i)
    for key in EXOTIC_KEYS:
        assert probe.order[key] == list(range(5)), key
    assert probe.max_overlap == 1
    assert ex.stats().active_keys == 0


def test_equal_keys_are_one_key(Keyed: Any) -> None:
    blocker = Blocker()
    with Keyed(max_workers=4) as ex:
        try:
            first = ex.submit(Account(7), blocker, True)
            assert ex.submit_unique(Account(7), int) is None
            assert ex.submit_unique(Account(8), int) is not None
            assert ex.stats().active_keys >= 1
        finally:
            blocker.release()
    assert first.result() is True


@pytest.mark.parametrize("key", [[], {"a": 1}, (1, [2]), {1, 2}])
def test_unhashable_key_raises_type_error_at_the_call(Keyed: Any, key: Any) -> None:
    with Keyed(max_workers=1) as ex:
        with pytest.raises(TypeError, match="key must be hashable"):
            ex.submit(key, int)
        with pytest.raises(TypeError, match="key must be hashable"):
            ex.submit_unique(key, int)
        with pytest.raises(TypeError, match="key must be hashable"):
            ex.execute(key, int)
    assert ex.stats().submitted == 0


def test_non_callable_task_raises_type_error(Keyed: Any) -> None:
    with Keyed(max_workers=1) as ex:
        with pytest.raises(TypeError, match="not callable"):
            ex.submit("k", 42)
    assert ex.stats().submitted == 0


def test_submit_unique_refuses_a_key_with_a_queued_task(Keyed: Any) -> None:
    blocker = Blocker()
    with Keyed(max_workers=1) as ex:
        try:
            ex.submit("busy", blocker, True)  # the only worker
            queued = ex.submit_unique("job", int, "1")
            assert queued is not None
            assert ex.submit_unique("job", int, "2") is None
            assert not queued.done()
        finally:
            blocker.release()
    assert queued.result() == 1
    assert ex.stats().submitted == 2


def test_submit_unique_refuses_a_key_with_a_running_task(Keyed: Any) -> None:
    job = Blocker(then=lambda _: "done")
    with Keyed(max_workers=2) as ex:
        try:
            first = ex.submit_unique("job", job)
            assert first is not None
            assert job.started.wait(WAIT)
            assert ex.submit_unique("job", job) is None
            # A plain submit still queues behind it.
            behind = ex.submit("job", str, "behind")
            assert ex.submit_unique("job", job) is None
        finally:
            job.release()
        assert first.result(timeout=WAIT) == "done"
        assert behind.result(timeout=WAIT) == "behind"
        # Free again as soon as the key's last future is done.
        again = ex.submit_unique("job", str, "again")
        assert again is not None
        assert again.result(timeout=WAIT) == "again"


# -- context, execute, options ---------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_tasks_run_in_the_submitters_context(Keyed: Any) -> None:
    def read_and_change() -> str:
        seen = request_id.get()
        request_id.set("changed-in-task")
        return seen

    with Keyed(max_workers=2) as ex:
        token = request_id.set("req-1")
        try:
            first = ex.submit("k", read_and_change)
            request_id.set("req-2")
            second = ex.submit("k", read_and_change)
            third = ex.submit_task("k", Task("t", read_and_change))
        finally:
            request_id.reset(token)
    # Each task sees its submitter's value at submission; a task's own
    # changes stay in its copy.
    assert (first.result(), second.result(), third.result()) == ("req-1", "req-2", "req-2")
    assert request_id.get() == "none"


def test_execute_sends_failures_to_the_error_handler(Keyed: Any) -> None:
    failures: list[tuple[Any, BaseException]] = []
    with Keyed(max_workers=2, error_handler=lambda k, e: failures.append((k, e))) as ex:
        assert ex.execute(("order", 1), int, "bad") is None
        ex.execute(("order", 1), int, "3")
        ex.execute(("order", 2), int, "also bad")
    assert sorted(k for k, _ in failures) == [("order", 1), ("order", 2)]
    assert all(isinstance(e, ValueError) for _, e in failures)
    s = ex.stats()
    assert (s.completed, s.failed) == (1, 2)


@pytest.mark.thread_unsafe(
    reason="reads caplog: pytest's log capture is not shared safely between threads"
)
def test_execute_logs_failures_with_the_traceback_by_default(
    Keyed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise KeyError("missing")

    with caplog.at_level(logging.ERROR, logger="conexe"):
        with Keyed(max_workers=1) as ex:
            ex.execute("user-9", broken)
    records = [r for r in caplog.records if r.name == "conexe"]
    assert len(records) == 1
    assert "'user-9'" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[0] is KeyError


@pytest.mark.thread_unsafe(
    reason="reads caplog: pytest's log capture is not shared safely between threads"
)
def test_a_raising_error_handler_is_logged_and_the_worker_lives_on(
    Keyed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_handler(key: Any, exc: BaseException) -> None:
        raise RuntimeError("handler broke")

    with caplog.at_level(logging.ERROR, logger="conexe"):
        with Keyed(max_workers=1, error_handler=bad_handler) as ex:
            for _ in range(3):
                ex.execute("k", int, "bad")
            after = ex.submit("k", int, "5")
            assert after.result(timeout=WAIT) == 5
            assert ex.stats().workers == 1
    messages = [r for r in caplog.records if "error_handler" in r.getMessage()]
    assert len(messages) == 3
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in messages)


def test_error_handler_can_be_replaced(Keyed: Any) -> None:
    seen: list[Any] = []
    with Keyed(max_workers=1) as ex:
        ex.error_handler = lambda key, exc: seen.append(key)
        ex.execute("replaced", int, "bad")
    assert seen == ["replaced"]


def test_execute_ignores_cancelled_tasks(Keyed: Any) -> None:
    blocker = Blocker()
    seen: list[Any] = []
    ex = Keyed(max_workers=1, error_handler=lambda k, e: seen.append(k))
    ex.submit("a", blocker, True)
    # Started before the cancel, or the cancel would take it too.
    assert blocker.started.wait(WAIT)
    ex.execute("b", int, "bad")
    ex.shutdown(wait=False, cancel_futures=True)
    blocker.release()
    ex.shutdown()
    assert seen == []
    assert ex.stats().cancelled == 1


def test_submit_task_start_timeout_fails_the_task_and_the_key_moves_on(Keyed: Any) -> None:
    blocker = Blocker()
    with Keyed(max_workers=2) as ex:
        try:
            ex.submit("k", blocker, True)
            late = ex.submit_task("k", Task("late", int, ("1",), start_timeout=0.01))
            with pytest.raises(TimeoutError):
                late.result(timeout=WAIT)
            after = ex.submit("k", int, "2")
        finally:
            blocker.release()
    assert after.result() == 2
    s = ex.stats()
    assert (s.completed, s.failed, s.active_keys) == (2, 1, 0)


def test_a_task_expiring_behind_its_key_is_done_when_shutdown_returns(Keyed: Any) -> None:
    # A key's queued task whose start deadline passes is failed by the
    # reaper in one step: the worker that meets it when the key moves on
    # skips it as failed, so it must already be done (this race left a
    # task "running" after shutdown on free-threaded CPython). The task's
    # argument is dropped once it is done; its finalizer releases the key's
    # head and holds the reaper while the executor drains and shuts down.
    blocker = Blocker()
    hold = HoldOnRelease(then=blocker.release)
    ex = Keyed(max_workers=1)
    ex.submit("k", blocker, "first")
    assert blocker.started.wait(WAIT)
    late = made_in_a_thread_that_ends(
        lambda: ex.submit_task("k", Task("late", id, (hold.arg(),), start_timeout=0.01))
    )
    try:
        assert hold.released.wait(WAIT)
        ex.shutdown(wait=True)
        done_at_shutdown = late.done()
        s = ex.stats()
    finally:
        hold.go.set()
    assert done_at_shutdown
    assert type(late.exception(timeout=WAIT)) is TimeoutError
    assert (s.completed, s.failed, s.active_keys) == (1, 1, 0)


def test_submit_task_priority_orders_ready_keys_not_a_keys_own_tasks(Keyed: Any) -> None:
    blocker = Blocker()
    ran: list[str] = []
    with Keyed(max_workers=1) as ex:
        try:
            ex.submit("blocker", blocker, True)
            ex.submit_task("low", Task("l", ran.append, ("low",)))
            ex.submit_task("high", Task("h1", ran.append, ("high-1",), priority=5))
            ex.submit_task("high", Task("h2", ran.append, ("high-2",), priority=9))
        finally:
            blocker.release()
    assert ran == ["high-1", "high-2", "low"]


def test_submit_task_takes_only_a_task(Keyed: Any) -> None:
    with Keyed(max_workers=1) as ex:
        with pytest.raises(TypeError, match="conexe.Task"):
            ex.submit_task("k", int)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options", [{}, {"on_full": "block", "block_timeout": 0.01}], ids=["raise", "block"]
)
def test_full_queue_raises_or_blocks_then_raises(Keyed: Any, options: dict[str, Any]) -> None:
    blocker = Blocker()
    with Keyed(max_workers=1, max_queue_size=2, **options) as ex:
        try:
            ex.submit("a", blocker)
            assert blocker.started.wait(WAIT)  # running, so no longer pending
            ex.submit("a", int)
            ex.submit("b", int)
            with pytest.raises(QueueFull, match="max_queue_size=2"):
                ex.submit("c", int)
            assert ex.stats().rejected == 1
        finally:
            blocker.release()
    assert ex.stats().completed == 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_workers": 0}, ValueError),
        ({"max_workers": "4"}, TypeError),
        ({"max_queue_size": -1}, ValueError),
        ({"on_full": "caller_runs"}, ValueError),
        ({"block_timeout": -1}, ValueError),
        ({"error_handler": "log"}, TypeError),
        ({"thread_name_prefix": 3}, TypeError),
    ],
)
def test_bad_options_fail_at_construction(Keyed: Any, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        Keyed(**kwargs)


# -- shutdown, stats, leaks ------------------------------------------------------------


def test_shutdown_wait_drains_every_key(Keyed: Any) -> None:
    probe = InFlight()
    ex = Keyed(max_workers=3)
    futures = [ex.submit(i % 7, probe.task, i % 7, i) for i in range(300)]
    ex.shutdown(wait=True)
    assert all(f.done() and not f.cancelled() for f in futures)
    assert sum(len(v) for v in probe.order.values()) == 300
    s = ex.stats()
    assert (s.submitted, s.completed, s.pending, s.running, s.active_keys) == (300, 300, 0, 0, 0)
    assert s.workers == 0


def test_submit_after_shutdown_raises_runtime_error(Keyed: Any) -> None:
    ex = Keyed(max_workers=1)
    ex.shutdown()
    ex.shutdown()  # twice is fine
    for call in (ex.submit, ex.submit_unique, ex.execute):
        with pytest.raises(RuntimeError, match="after shutdown"):
            call("k", int)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit_task("k", Task("t", int))
    assert "shut down" in repr(ex)


def test_stats_show_workers_pending_running_and_active_keys(Keyed: Any) -> None:
    hold = Blocker()
    with Keyed(max_workers=2) as ex:
        try:
            for key in ("a", "b", "c"):
                ex.submit(key, hold)
                ex.submit(key, hold)
            assert hold.wait_started(2, WAIT)
            s = ex.stats()
            assert isinstance(s, conexe.KeyedStats)
            assert (s.workers, s.running, s.pending, s.active_keys) == (2, 2, 4, 3)
            assert s.submitted == 6
        finally:
            hold.release()
    s = ex.stats()
    assert (s.completed, s.pending, s.running, s.active_keys) == (6, 0, 0, 0)
    with pytest.raises(AttributeError):
        s.pending = 1  # type: ignore[misc]


def test_many_distinct_keys_leave_no_entries_behind(Keyed: Any, core: ModuleType) -> None:
    # A million on the C core; the pure-Python twin is ~10x slower per task.
    n = 1_000_000 if core.IMPLEMENTATION == "c" else 100_000
    ex = Keyed(max_workers=4)
    submit, noop = ex.submit, int
    for i in range(n):
        submit(i, noop)
    ex.shutdown(wait=True)
    s = ex.stats()
    assert (s.submitted, s.completed, s.active_keys, s.pending) == (n, n, 0, 0)


def test_a_subclass_overriding_submit_keeps_its_override(core: Any) -> None:
    calls: list[str] = []

    class Logged(bind_core(KeyedExecutor, core)):  # type: ignore[misc]
        def submit(self, key: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            calls.append(key)
            return super().submit(key, fn, *args, **kwargs)

    with Logged(2) as ex:
        assert ex.submit("k", pow, 2, 5).result() == 32
    assert calls == ["k"]
