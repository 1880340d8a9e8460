"""``Runner``: tasks that run on a resource each worker owns.

Its rules are in ``docs/runner.md``: each worker makes one resource
with ``on_create()`` in its own thread and releases it with
``on_destroy(resource)`` when it leaves; a task is ``fn(resource)``. A
task whose error says the resource is broken (``check_health(exc)`` is
False) gets a fresh worker and is retried; priorities are strict;
``run_task`` runs in the caller's thread on a pooled or temporary
resource; burst workers come and go with the backlog.

    >>> import conexe
    >>> with conexe.Runner(lambda: {"calls": 0}, worker_count=2) as runner:
    ...     runner.queue_task(lambda conn: 6 * 7)
    42
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ._contract import EXIT_REPLACE
from ._errors import QueueFull
from ._impl import Core, CoreFuture, CoreWorker
from ._impl import core as _default_core
from ._options import check_context, check_on_full, check_size
from ._signals import wait_interruptibly
from ._task import check_priority, check_timeout
from ._threads import EXIT_MESSAGE, WorkerThreads, interpreter_shutting_down, still_busy

__all__ = ["Runner", "RunnerStats"]

_log = logging.getLogger("conexe")

R = TypeVar("R")
T = TypeVar("T")

FullPolicy = Literal["raise", "block", "caller_runs"]
_POLICIES = ("raise", "block", "caller_runs")

_STOPPED_MESSAGE = "cannot schedule new tasks after the Runner was stopped"
_NO_RESOURCE: Any = object()  # "no resource was made": on_create gave up
_counter = itertools.count()
_runners: weakref.WeakSet[Runner[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for runner in list(_runners):
        runner._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(frozen=True)
class RunnerStats:
    """A snapshot of a :class:`Runner`.

    Workers: ``base_workers`` is the configured base count,
    ``active_workers`` the workers holding a resource right now (base and
    burst), ``burst_workers`` those of them started by bursting. Queues:
    ``queued_tasks`` at priority <= 0, ``priority_tasks`` above 0.
    ``available_resources`` is the ``run_task`` pool's idle resources.
    Counters cover queued tasks (not ``run_task``): ``retried`` counts
    retries after a broken resource, ``replaced`` the workers replaced
    for it, ``create_failures``/``destroy_failures`` the calls of
    ``on_create``/``on_destroy`` that raised; ``last_create_error`` is the
    latest ``on_create`` error while no creation has succeeded since.
    Latencies are seconds (queue wait: submitted -> started; run: started
    -> ended), read from the core's fixed-size histograms (~19 % buckets).
    """

    base_workers: int
    active_workers: int
    burst_workers: int
    queued_tasks: int
    priority_tasks: int
    available_resources: int
    running: int
    completed: int
    failed: int
    cancelled: int
    retried: int
    replaced: int
    create_failures: int
    destroy_failures: int
    last_create_error: BaseException | None
    wait_p50: float
    wait_p95: float
    wait_p99: float
    run_p50: float
    run_p95: float
    run_p99: float


class _Slot:
    """One worker thread's place: base or burst, and its current worker
    (None while it is creating or destroying its resource)."""

    __slots__ = ("burst", "leaving", "worker")

    def __init__(self, burst: bool) -> None:
        self.burst = burst
        self.leaving = False  # a burst slot told to go: make no new resource
        self.worker: CoreWorker | None = None


def _check_options(
    on_create: object,
    on_destroy: object,
    check_health: object,
    worker_count: int,
    max_retries: int,
    resource_pool_size: int,
    burst_task_threshold: int | None,
    burst_worker_count: int,
    burst_interval: float,
    max_worker_count: int | None,
    max_queue_size: int,
    on_full: object,
    block_timeout: float | None,
    thread_name_prefix: object,
) -> tuple[float, int]:
    """Reject bad :class:`Runner` arguments with a clear error; returns the
    checked ``burst_interval`` and ``max_worker_count`` (its default filled in)."""
    if not callable(on_create):
        raise TypeError("on_create must be a callable returning a resource")
    if on_destroy is not None and not callable(on_destroy):
        raise TypeError("on_destroy must be a callable taking a resource, or None")
    if check_health is not None and not callable(check_health):
        raise TypeError("check_health must be a callable taking an exception, or None")
    check_size(worker_count, "worker_count", 1)
    check_size(max_retries, "max_retries", 0)
    check_size(resource_pool_size, "resource_pool_size", 0)
    if burst_task_threshold is not None:
        check_size(burst_task_threshold, "burst_task_threshold", 0)
    check_size(burst_worker_count, "burst_worker_count", 1)
    burst_interval = check_timeout(burst_interval, "burst_interval")
    if burst_interval == 0:
        raise ValueError("burst_interval must be > 0 seconds")
    if max_worker_count is None:
        max_worker_count = worker_count + burst_worker_count
    check_size(max_worker_count, "max_worker_count", worker_count)
    check_size(max_queue_size, "max_queue_size", 0)
    check_on_full(on_full, _POLICIES)
    if block_timeout is not None:
        check_timeout(block_timeout, "block_timeout")
    if not isinstance(thread_name_prefix, str):
        raise TypeError("thread_name_prefix must be a str")
    return burst_interval, max_worker_count


class Runner(Generic[R]):
    """A pool of workers, each owning one resource; tasks are ``fn(resource)``.

    ``on_create()`` makes a worker's resource (in that worker's thread);
    ``on_destroy(resource)`` releases it. ``check_health(exc)`` returning
    False means the task broke its worker's resource: the worker is
    replaced and the task retried, at most ``max_retries`` times (0: never),
    then it fails with :class:`conexe.MaxRetriesExceeded`.
    ``resource_pool_size`` resources are made up front for :meth:`run_task`.
    With ``burst_task_threshold`` set, every ``burst_interval`` seconds a
    backlog above it adds ``burst_worker_count`` workers (up to
    ``max_worker_count``, default ``worker_count + burst_worker_count``);
    they leave once nothing is queued. ``max_queue_size`` bounds the queue
    (0: unbounded); when full, ``on_full`` raises QueueFull, blocks (at most
    ``block_timeout`` seconds) or runs the task in the caller (``run_task``).
    Each task runs in a new, empty :mod:`contextvars` context
    (``context="fresh"``, the default) or in a copy of its submitter's
    (``context="copy"``); a retry runs in the context its first try had.
    ``exit_timeout``: how long interpreter exit waits for the accepted work
    (None: until done; see :class:`conexe.ConcurrentExecutor`).

        >>> import itertools
        >>> ids = itertools.count()
        >>> runner = Runner(lambda: next(ids), worker_count=1)
        >>> runner.queue_task(lambda resource: resource)
        0
        >>> runner.stop()
    """

    _core: Core = _default_core
    # on_create retry backoff (seconds): first delay, then doubling up to max.
    _create_backoff = 0.05
    _create_backoff_max = 1.0

    def __init__(
        self,
        on_create: Callable[[], R],
        on_destroy: Callable[[R], object] | None = None,
        *,
        worker_count: int = 1,
        check_health: Callable[[BaseException], bool] | None = None,
        max_retries: int = 0,
        resource_pool_size: int = 0,
        burst_task_threshold: int | None = None,
        burst_worker_count: int = 2,
        burst_interval: float = 0.1,
        max_worker_count: int | None = None,
        max_queue_size: int = 0,
        on_full: FullPolicy = "raise",
        block_timeout: float | None = None,
        thread_name_prefix: str = "",
        context: Literal["copy", "fresh"] = "fresh",
        exit_timeout: float | None = None,
    ) -> None:
        check_context(context)
        if exit_timeout is not None:
            check_timeout(exit_timeout, "exit_timeout")
        burst_interval, max_worker_count = _check_options(
            on_create, on_destroy, check_health, worker_count, max_retries,
            resource_pool_size, burst_task_threshold, burst_worker_count, burst_interval,
            max_worker_count, max_queue_size, on_full, block_timeout, thread_name_prefix,
        )  # fmt: skip

        self._on_create = on_create
        self._on_destroy = on_destroy
        self._check_health = check_health
        self._base_count = worker_count
        self._burst_threshold = burst_task_threshold
        self._burst_count = burst_worker_count
        self._burst_interval = burst_interval
        self._max_workers = max_worker_count
        self._on_full = on_full
        self._block_timeout = block_timeout

        # _lock guards the slots and the counters below; never held while
        # user code runs or futures complete (their callbacks may call us).
        self._lock = threading.Lock()
        self._slot_gone = threading.Condition(self._lock)  # a worker thread ended
        self._slots: set[_Slot] = set()
        self._starting: deque[_Slot] = deque()  # slots whose thread hasn't begun
        self._active = 0  # workers holding a resource, in the worker loop
        self._burst_active = 0
        self._replaced = 0
        self._create_failures = 0
        self._destroy_failures = 0
        self._create_error: BaseException | None = None  # cleared by a success
        self._state = "running"  # -> "stopping" -> "stopped"
        self._killed = False
        self._stop_event = threading.Event()

        self._engine = self._core.Engine(
            max_queue_size,
            pass_resource=True,
            check_health=check_health,
            max_retries=max_retries,
            track_latency=True,
            context=context,
        )
        self._submit_fast = self._engine.submit

        self._pool_lock = threading.Lock()
        self._pool: list[R] = []
        self._pool_missing = 0  # pool resources destroyed as broken, not yet remade
        self._pool_closed = False
        self._fill_pool(resource_pool_size)

        prefix = thread_name_prefix or f"conexe-runner-{next(_counter)}"
        self._threads = WorkerThreads(
            self._engine,
            prefix,
            run=self._thread_main,
            new_worker=self._core.Worker,
            exit_timeout=exit_timeout,
        )
        self._monitor: threading.Thread | None = None
        self._start_workers(worker_count, prefix)
        if interpreter_shutting_down():
            self._engine.close(message=EXIT_MESSAGE)
        _runners.add(self)

    def _start_workers(self, count: int, prefix: str) -> None:
        """Start the ``count`` base workers and, with a burst threshold, the
        burst monitor; if any fails to start, kill what started and raise."""
        try:
            with self._lock:
                for _ in range(count):
                    self._start_slot_locked(burst=False)
            if self._burst_threshold is not None:
                self._monitor = threading.Thread(
                    target=self._burst_monitor, name=f"{prefix}_burst", daemon=True
                )
                self._monitor.start()
        except BaseException:
            self.kill()
            raise

    def _fill_pool(self, size: int) -> None:
        """Create the ``size`` pooled resources (for ``run_task``); if one
        fails, destroy those made so far, close the engine, and raise."""
        try:
            for _ in range(size):
                self._pool.append(self._on_create())
        except BaseException:
            self._engine.close()
            for resource in self._pool:
                self._destroy(resource)
            raise

    def _after_fork(self) -> None:
        """In a forked child: no worker thread exists there (its engine
        already refuses work, see _threads), so forget the parent's workers
        -- or stop() would wait for them forever -- and its resources: they
        belong to the parent, and destroying a copy here (a connection's
        goodbye, say) could break the parent's."""
        self._lock = threading.Lock()
        self._slot_gone = threading.Condition(self._lock)
        self._slots = set()
        self._starting = deque()
        self._active = 0
        self._burst_active = 0
        self._pool_lock = threading.Lock()
        self._pool = []
        self._pool_closed = True
        self._monitor = None

    # -- submitting -----------------------------------------------------------
    def submit(
        self, fn: Callable[[R], T], *, priority: int = 0, once: bool = False
    ) -> CoreFuture[T]:
        """Queue ``fn(resource)``; returns its Future.

        ``priority``: higher runs first (strict; FIFO within a level).
        ``once``: never retry this task, even when it breaks its resource.
        Raises RuntimeError after :meth:`stop`, QueueFull when a bounded
        queue is full (``on_full="raise"``)."""
        if priority == 0 and not once and self._on_full == "raise":
            fut: CoreFuture[T] = self._submit_fast(fn, (), None)
        else:
            fut = self._submit_with(fn, check_priority(priority), bool(once))
        if self._create_error is not None:
            self._fail_if_stranded()
        # With on_full="caller_runs" the task may have failed in this thread,
        # below this frame: its traceback links back (f_back) to this frame,
        # so the future must not stay in its locals (a cycle).
        try:
            return fut
        finally:
            del fut

    def _submit_with(self, fn: Callable[[R], T], priority: int, once: bool) -> CoreFuture[T]:
        engine = self._engine
        if self._on_full == "block":
            fut: CoreFuture[T] = engine.submit_with(
                fn,
                (),
                None,
                priority=priority,
                no_retry=once,
                block=True,
                timeout=self._block_timeout,
            )
            return fut
        try:
            fut = engine.submit_with(fn, (), None, priority=priority, no_retry=once)
            return fut
        except QueueFull:
            if self._on_full == "raise":
                raise
        done: CoreFuture[T] = self._core.Future()
        done.set_running_or_notify_cancel()
        try:
            done.set_result(self.run_task(fn))
        except BaseException as exc:
            done.set_exception(exc)
        # The task's frame, kept by its exception's traceback, links back
        # (f_back) to this one: leaving ``done`` in its locals would make
        # future -> exception -> frame -> future a cycle.
        try:
            return done
        finally:
            del done

    def queue_task(self, fn: Callable[[R], T], *, priority: int = 0, once: bool = False) -> T:
        """Queue ``fn(resource)``, wait for it, and return its result (or
        raise its exception). Ctrl-C while waiting cancels the task if it
        has not started.

            >>> with Runner(lambda: 10) as runner:
            ...     runner.queue_task(lambda ten: ten + 25)
            35
        """
        return _wait(self.submit(fn, priority=priority, once=once))

    def queue_task_with_priority(self, fn: Callable[[R], T], *, priority: int = 1) -> T:
        """:meth:`queue_task` ahead of every queued task of lower priority."""
        return _wait(self.submit(fn, priority=priority))

    def queue_task_once(self, fn: Callable[[R], T]) -> T:
        """:meth:`queue_task`, never retried (a task whose failure must not run twice)."""
        return _wait(self.submit(fn, once=True))

    def queue_task_with_priority_once(self, fn: Callable[[R], T], *, priority: int = 1) -> T:
        """:meth:`queue_task_with_priority`, never retried."""
        return _wait(self.submit(fn, priority=priority, once=True))

    def run_task(self, fn: Callable[[R], T]) -> T:
        """Run ``fn(resource)`` now, in this thread, bypassing the queues.

        The resource comes from the pool of ``resource_pool_size`` made up
        front; when the pool is empty (or was sized 0) a temporary resource
        is created for the call and destroyed after it. A resource the task
        broke (``check_health`` False) is destroyed, and the pool refills
        with the next temporary one. No retries here: the error is raised.

            >>> with Runner(lambda: "conn", resource_pool_size=1) as runner:
            ...     runner.run_task(str.upper)
            'CONN'
        """
        if self._state != "running":
            raise RuntimeError(_STOPPED_MESSAGE)
        with self._pool_lock:
            resource = self._pool.pop() if self._pool else _NO_RESOURCE
        pooled = resource is not _NO_RESOURCE
        if not pooled:
            try:
                resource = self._on_create()
            except BaseException:
                with self._lock:
                    self._create_failures += 1
                raise
        try:
            result = fn(resource)
        except BaseException as exc:
            self._return_resource(resource, pooled, self._is_broken(exc))
            raise
        self._return_resource(resource, pooled, False)
        return result

    def _is_broken(self, exc: BaseException) -> bool:
        if self._check_health is None:
            return False
        try:
            return not self._check_health(exc)
        except Exception:
            _log.exception("check_health raised; treating the resource as broken")
            return True

    def _return_resource(self, resource: R, pooled: bool, broken: bool) -> None:
        with self._pool_lock:
            if broken:
                if pooled:
                    self._pool_missing += 1
            elif not self._pool_closed and (pooled or self._pool_missing):
                if not pooled:
                    self._pool_missing -= 1  # a temporary one refills the pool
                self._pool.append(resource)
                return
        self._destroy(resource)

    # -- workers ----------------------------------------------------------------
    def _start_slot_locked(self, burst: bool) -> None:
        # WorkerThreads hands each new thread only a core Worker, so the
        # slot travels through _starting: one slot in, one thread out, all
        # under _lock, so a failed start takes back exactly its own slot.
        slot = _Slot(burst)
        self._slots.add(slot)
        self._starting.append(slot)
        try:
            self._threads.spawn_one()
        except BaseException:
            self._starting.pop()
            self._slots.discard(slot)
            raise

    def _thread_main(self, _first_worker: CoreWorker) -> None:
        with self._lock:
            slot = self._starting.popleft()
        try:
            self._slot_loop(slot)
        finally:
            with self._lock:
                self._slots.discard(slot)
                last = not self._slots
                self._slot_gone.notify_all()
            if last:
                self._fail_left_behind()

    def _fail_left_behind(self) -> None:
        """The last worker thread has gone: once stopping, a task still
        queued would never run (no worker comes back to a closed engine),
        so it fails with the last creation error rather than stay pending."""
        engine = self._engine
        if not engine.closed or self._killed or engine.queued == 0:
            return
        with self._lock:
            error = self._create_error
        engine.fail_queued(
            error
            if error is not None
            else RuntimeError("conexe Runner stopped with no worker left to run this task")
        )

    def _slot_loop(self, slot: _Slot) -> None:
        """Make a resource, run the worker loop on it, destroy it; again
        while the loop says the resource broke (the pool never shrinks)."""
        engine = self._engine
        while True:
            resource = self._create_for(slot)
            if resource is _NO_RESOURCE:
                return
            worker = self._core.Worker(resource=resource)
            with self._lock:
                enter = not slot.leaving
                if enter:
                    slot.worker = worker
                    self._active += 1
                    self._burst_active += slot.burst
                    self._create_error = None
                    engine.add_workers(1)
            if not enter:
                self._destroy(resource)
                return
            try:
                reason = engine.worker_loop(worker)
            finally:
                with self._lock:
                    slot.worker = None
                    self._active -= 1
                    self._burst_active -= slot.burst
                del worker
                self._destroy(resource)
                del resource
            if reason != EXIT_REPLACE or self._killed or slot.leaving:
                return
            if engine.closed and engine.queued == 0:
                return  # stopping and nothing left for a new resource to do
            with self._lock:
                self._replaced += 1

    def _create_for(self, slot: _Slot) -> Any:
        """``on_create()``, retried with backoff until it works; gives up
        (returns _NO_RESOURCE) when the Runner stops or the slot must go.
        While no worker holds a resource, a failure fails the queued tasks
        with the creation error rather than leave them waiting."""
        engine = self._engine
        delay = self._create_backoff
        while True:
            if self._killed or slot.leaving or (engine.closed and engine.queued == 0):
                return _NO_RESOURCE
            try:
                return self._on_create()
            except BaseException as exc:
                with self._lock:
                    self._create_failures += 1
                    first = self._create_error is None
                    self._create_error = exc
                    stranded = not self._another_worker_stays_locked(slot)
                if first:
                    _log.error(
                        "conexe Runner: on_create() failed; retrying with backoff",
                        exc_info=exc,
                    )
                else:
                    _log.warning("conexe Runner: on_create() failed again: %r", exc)
                if stranded:
                    engine.fail_queued(exc)
                if engine.closed:
                    return _NO_RESOURCE  # stopping: the active workers drain
                del exc
            self._stop_event.wait(delay)
            delay = min(delay * 2, self._create_backoff_max)

    def _another_worker_stays_locked(self, slot: _Slot | None) -> bool:
        """Whether a worker other than ``slot``'s holds a resource and is
        not leaving: one that will run (or fail) the queued tasks. A burst
        worker told to go leaves after its task, queue or not."""
        return any(s.worker is not None and not s.leaving for s in self._slots if s is not slot)

    def _fail_if_stranded(self) -> None:
        with self._lock:
            error = self._create_error
            stranded = error is not None and not self._another_worker_stays_locked(None)
        if stranded:
            assert error is not None
            self._engine.fail_queued(error)

    def _destroy(self, resource: R) -> None:
        if self._on_destroy is None:
            return
        try:
            self._on_destroy(resource)
        except BaseException:
            # Logged and counted; shutdown and replacement carry on.
            with self._lock:
                self._destroy_failures += 1
            _log.exception("conexe Runner: on_destroy() raised")

    # -- bursting -----------------------------------------------------------------
    def _burst_monitor(self) -> None:
        while not self._stop_event.wait(self._burst_interval):
            if self._engine.closed:
                return
            try:
                self._check_burst()
            except Exception:  # a thread that can't start: try next time
                _log.exception("conexe Runner: could not start a burst worker")

    def _check_burst(self) -> None:
        queued = self._engine.queued
        assert self._burst_threshold is not None
        with self._lock:
            # _state, not engine.closed: stop() sets it under this lock, so
            # no burst worker is told to go once a stop has begun (a stopping
            # slot counts on the workers that stay to drain the queue).
            if self._state != "running":
                return
            if queued > self._burst_threshold:
                room = self._max_workers - len(self._slots)
                for _ in range(min(self._burst_count, room)):
                    self._start_slot_locked(burst=True)
            elif queued == 0:
                for slot in self._slots:
                    if slot.burst and not slot.leaving:
                        slot.leaving = True
                        if slot.worker is not None:
                            self._engine.retire_worker(slot.worker)

    # -- stopping -------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: refuse new tasks (RuntimeError), let the queued
        and running ones finish on their resources, then destroy every
        resource (the workers' and the pool's). A second call is a no-op.

        With ``timeout``, raise TimeoutError if the workers are still busy
        after that many seconds; calling ``stop()`` again keeps waiting.
        The wait can be interrupted with Ctrl-C."""
        if timeout is not None:
            check_timeout(timeout, "timeout")
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopping"
        self._engine.close(message=_STOPPED_MESSAGE)
        self._stop_event.set()
        self._join(timeout)
        self._finish()

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> None:
        """concurrent.futures' ``shutdown`` for a Runner: :meth:`stop`, or
        with ``cancel_futures`` :meth:`kill`. With ``timeout``, raise
        TimeoutError past it, as ``stop(timeout)`` does (the workers go on;
        call it again to keep waiting). With ``wait=False``, return at once
        (new tasks refused, queued ones cancelled if asked): a thread
        finishes the stop, destroying the resources once the workers end."""
        if timeout is not None:
            check_timeout(timeout, "timeout")
        if not wait:
            with self._lock:
                if self._state == "stopped":
                    return
                self._state = "stopping"
            # New tasks refused (and the queued cancelled) before returning.
            self._engine.close(cancel=cancel_futures, message=_STOPPED_MESSAGE)
            finish = self.kill if cancel_futures else self.stop
            threading.Thread(target=finish, name=f"{self._threads.name_prefix}-shutdown").start()
            return
        if cancel_futures:
            self._kill(timeout)
        else:
            self.stop(timeout)

    def kill(self) -> int:
        """Stop now: cancel the queued tasks (their waiters wake with
        CancelledError), let running ones finish, destroy every resource.
        Returns how many tasks were cancelled."""
        return self._kill(None)

    def _kill(self, timeout: float | None) -> int:
        with self._lock:
            if self._state == "stopped":
                return 0
            self._state = "stopping"
            self._killed = True
        cancelled: int = self._engine.close(cancel=True, message=_STOPPED_MESSAGE)
        self._stop_event.set()
        self._join(timeout)
        # A task retried by a worker that was leaving went back to a lane
        # after the first sweep; nobody will run it now.
        cancelled += self._engine.close(cancel=True)
        self._finish()
        return cancelled

    def _join(self, timeout: float | None) -> None:
        """Wait until every worker thread has destroyed its resource and
        left (the burst monitor can't start one once the engine is closed).

        Not Thread.join(): on Python 3.11 a join interrupted by Ctrl-C marks
        a thread that is still running as stopped (threading.py, the
        bpo-45274 fix), so a second stop() would return too early."""
        deadline = None if timeout is None else time.monotonic() + timeout
        mine = 1 if self._in_worker_thread() else 0  # stop() from a task
        with self._lock:
            while len(self._slots) > mine:
                if deadline is None:
                    wait_interruptibly(self._slot_gone)
                elif not wait_interruptibly(self._slot_gone, max(0.0, deadline - time.monotonic())):
                    if len(self._slots) > mine:
                        raise TimeoutError(
                            f"stop() timed out after {timeout} s: "
                            f"{still_busy(self._engine.stats())}; nothing is dropped: they "
                            "go on. Call stop() again to keep waiting, or kill() to cancel "
                            "the queued ones"
                        )

    def _in_worker_thread(self) -> bool:
        return threading.current_thread() in self._threads.threads()

    def _finish(self) -> None:
        with self._pool_lock:
            self._pool_closed = True
            pool, self._pool = self._pool, []
        for resource in pool:
            self._destroy(resource)
        with self._lock:
            self._state = "stopped"

    def __enter__(self) -> Runner[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reading ----------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` or :meth:`kill` has begun."""
        return self._state != "running"

    def stats(self) -> RunnerStats:
        """A snapshot of workers, queues, counters and latencies."""
        s = self._engine.stats()
        wait = self._engine.latency("wait", (50, 95, 99))
        run = self._engine.latency("run", (50, 95, 99))
        with self._pool_lock:
            available = len(self._pool)
        with self._lock:
            return RunnerStats(
                base_workers=self._base_count,
                active_workers=self._active,
                burst_workers=self._burst_active,
                queued_tasks=s["queued"] - s["priority_queued"],
                priority_tasks=s["priority_queued"],
                available_resources=available,
                running=s["running"],
                completed=s["completed"],
                failed=s["failed"],
                cancelled=s["cancelled"],
                retried=s["retried"],
                replaced=self._replaced,
                create_failures=self._create_failures,
                destroy_failures=self._destroy_failures,
                last_create_error=self._create_error,
                wait_p50=wait[0],
                wait_p95=wait[1],
                wait_p99=wait[2],
                run_p50=run[0],
                run_p95=run[1],
                run_p99=run[2],
            )

    def __repr__(self) -> str:
        s = self._engine.stats()
        return (
            f"<{type(self).__name__} {self._state} workers={self._active} "
            f"queued={s['queued']} running={s['running']}>"
        )


def _wait(fut: cf.Future[T]) -> T:
    try:
        return fut.result()
    except KeyboardInterrupt:
        fut.cancel()  # Ctrl-C while waiting: don't run it for nobody
        raise
    finally:
        # The task's exception, raised here, keeps this frame in its
        # traceback: without this, future -> exception -> frame -> future
        # is a cycle (Future.result() does the same for its own frame).
        del fut
