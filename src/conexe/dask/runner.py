"""``conexe.dask.Runner``: tasks that run on a resource their Dask worker
owns.

Each Dask worker makes its resources with ``on_create()`` and releases them
with ``on_destroy(resource)``, through a WorkerPlugin (``setup`` when the
Runner starts or a worker joins, ``teardown`` when it stops); a task is
``fn(resource)``. A task whose error says the resource is broken
(``check_health(exc)`` False) gets a fresh resource on its worker and is
submitted again, at most ``max_retries`` times, then fails with
:class:`conexe.MaxRetriesExceeded`, as locally.

    >>> runner = Runner(client, make_connection, close_connection)  # doctest: +SKIP
    >>> runner.queue_task(count_rows)                                # doctest: +SKIP
    42
    >>> runner.stop()                                                # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._errors import MaxRetriesExceeded
from .._impl import Core
from .._impl import core as _default_core
from .._options import check_callable
from .._task import check_priority, check_timeout
from ._common import (
    FullPolicy,
    InFlightGate,
    cancel_not_started,
    cancel_on_cluster,
    check_block_timeout,
    check_client,
    check_count,
    check_on_full,
    claim,
    dask_key,
    set_outcome,
    submit_to,
)
from ._plugin import BrokenResource, ResourcePlugin, run_on_resource
from ._results import ResultFetcher

__all__ = ["Runner", "RunnerStats"]

R = TypeVar("R")
T = TypeVar("T")

_POLICIES = ("raise", "block", "caller_runs")
_STOPPED_MESSAGE = "cannot schedule new tasks after the Runner was stopped"


@dataclass(frozen=True)
class RunnerStats:
    """A snapshot of a Dask :class:`Runner` (the local ``RunnerStats``'
    fields that the client can know).

    ``active_workers``: the cluster's Dask workers (each holds the Runner's
    resources). ``queued_tasks`` / ``priority_tasks``: tasks submitted and
    not finished at priority <= 0 / above 0 (queued or running on the
    cluster: Dask doesn't tell which). ``retried``: resubmissions after a
    broken resource; ``replaced``: resources replaced for it.
    """

    active_workers: int
    queued_tasks: int
    priority_tasks: int
    completed: int
    failed: int
    cancelled: int
    retried: int
    replaced: int


class _Job:
    __slots__ = ("fut", "fn", "priority", "once", "tries", "dask_future")

    def __init__(self, fut: Any, fn: Any, priority: int, once: bool) -> None:
        self.fut = fut
        self.fn = fn
        self.priority = priority
        self.once = once
        self.tries = 0
        self.dask_future: Any = None


class Runner(Generic[R]):
    """A Dask cluster's workers, each owning resources; tasks are
    ``fn(resource)``. Mirrors :class:`conexe.Runner` with ``client`` in
    place of the worker threads: there is one resource per task thread of
    each Dask worker (``threads_per_worker=1``: one per worker).

    ``on_create``, ``on_destroy``, ``check_health`` and every task's ``fn``
    run on the workers, so they must pickle (module-level functions).
    ``max_queue_size`` bounds the tasks in flight (0: unbounded); when it
    is reached ``on_full`` raises QueueFull, blocks (at most
    ``block_timeout`` seconds) or runs the task in the caller
    (:meth:`run_task`).

        >>> with Runner(client, make_connection) as runner:       # doctest: +SKIP
        ...     runner.queue_task(ping)
        'pong'
    """

    _core: Core = _default_core

    def __init__(
        self,
        client: Any,
        on_create: Callable[[], R],
        on_destroy: Callable[[R], object] | None = None,
        *,
        check_health: Callable[[BaseException], bool] | None = None,
        max_retries: int = 0,
        max_queue_size: int = 0,
        on_full: FullPolicy = "raise",
        block_timeout: float | None = None,
    ) -> None:
        self._client = check_client(client)
        self._results = ResultFetcher(self._client)
        if not callable(on_create):
            raise TypeError("on_create must be a callable returning a resource")
        if on_destroy is not None and not callable(on_destroy):
            raise TypeError("on_destroy must be a callable taking a resource, or None")
        if check_health is not None and not callable(check_health):
            raise TypeError("check_health must be a callable taking an exception, or None")
        self._max_retries = check_count(max_retries, "max_retries")
        check_count(max_queue_size, "max_queue_size")
        check_on_full(on_full, _POLICIES)
        self._gate = InFlightGate(max_queue_size, on_full, check_block_timeout(block_timeout))
        self._on_create = on_create
        self._on_destroy = on_destroy
        self._lock = threading.Lock()
        self._jobs: dict[Any, _Job] = {}  # conexe future -> its job, until it ends
        self._state = "running"  # -> "stopping" -> "stopped"
        self._completed = 0
        self._failed = 0
        self._cancelled = 0
        self._retried = 0
        self._replaced = 0
        # A name of our own: two Runners on one cluster keep apart resources.
        self._name = f"conexe-runner-{uuid.uuid4().hex}"
        self._client.register_plugin(
            ResourcePlugin(on_create, on_destroy, check_health), name=self._name
        )

    # -- submitting ------------------------------------------------------------------
    def submit(
        self, fn: Callable[[R], T], *, priority: int = 0, once: bool = False
    ) -> cf.Future[T]:
        """Queue ``fn(resource)`` on the cluster; returns its Future.

        ``priority``: higher runs first (the Dask priority). ``once``: never
        retry this task, even when it breaks its resource. Raises
        RuntimeError after :meth:`stop`, QueueFull when the bound is
        reached (``on_full="raise"``)."""
        check_callable(fn)
        check_priority(priority)
        if self._state != "running":
            raise RuntimeError(_STOPPED_MESSAGE)
        if not self._gate.acquire():  # caller_runs
            done = self._core.Future()
            done.set_running_or_notify_cancel()
            try:
                done.set_result(self.run_task(fn))
            except BaseException as exc:  # noqa: B036 - delivered through the future
                done.set_exception(exc)
            return done  # type: ignore[no-any-return]
        job = _Job(self._core.Future(), fn, priority, bool(once))
        with self._lock:
            if self._state != "running":
                self._gate.release()
                raise RuntimeError(_STOPPED_MESSAGE)
            self._jobs[job.fut] = job
        try:
            self._send(job)
        except BaseException:
            with self._lock:
                del self._jobs[job.fut]
            self._gate.release()
            raise
        job.fut.add_done_callback(self._on_cancel)
        return job.fut  # type: ignore[no-any-return]

    def _send(self, job: _Job) -> None:
        dfut = submit_to(
            self._client,
            run_on_resource,
            self._name,
            job.fn,
            key=dask_key(job.fn),
            priority=job.priority,
        )
        job.dask_future = dfut  # held: Dask forgets a task nobody references
        self._results.watch(dfut, lambda ok, value: self._on_dask_done(job, ok, value))

    def queue_task(self, fn: Callable[[R], T], *, priority: int = 0, once: bool = False) -> T:
        """Queue ``fn(resource)``, wait for it, return its result (or raise
        its exception). Ctrl-C while waiting cancels it."""
        return _wait(self.submit(fn, priority=priority, once=once))

    def queue_task_with_priority(self, fn: Callable[[R], T], *, priority: int = 1) -> T:
        """:meth:`queue_task` ahead of the queued tasks of lower priority."""
        return _wait(self.submit(fn, priority=priority))

    def queue_task_once(self, fn: Callable[[R], T]) -> T:
        """:meth:`queue_task`, never retried."""
        return _wait(self.submit(fn, once=True))

    def queue_task_with_priority_once(self, fn: Callable[[R], T], *, priority: int = 1) -> T:
        """:meth:`queue_task_with_priority`, never retried."""
        return _wait(self.submit(fn, priority=priority, once=True))

    def run_task(self, fn: Callable[[R], T]) -> T:
        """Run ``fn(resource)`` now, in this thread, on a temporary resource
        made here by ``on_create()`` and destroyed after the call (there is
        no local resource pool on Dask). No retries: the error is raised."""
        if self._state != "running":
            raise RuntimeError(_STOPPED_MESSAGE)
        resource = self._on_create()
        try:
            return fn(resource)
        finally:
            if self._on_destroy is not None:
                self._on_destroy(resource)

    # -- completion ----------------------------------------------------------------------
    def _on_cancel(self, fut: Any) -> None:
        if fut.cancelled():
            with self._lock:
                job = self._jobs.get(fut)
            if job is not None:
                cancel_on_cluster(job.dask_future)

    def _on_dask_done(self, job: _Job, ok: bool, value: Any) -> None:
        if not ok and isinstance(value, BrokenResource):
            with self._lock:
                self._replaced += 1
                retry = (
                    not job.once
                    and job.tries < self._max_retries
                    and not job.fut.done()
                    and self._state != "stopped"
                )
                if retry:
                    job.tries += 1
                    self._retried += 1
            error = value.args[0] if value.args else value
            if retry:
                try:
                    self._send(job)
                    if job.fut.cancelled():  # cancelled while we resent it
                        cancel_on_cluster(job.dask_future)
                    return
                except BaseException as exc:  # noqa: B036 - the client is closing
                    value = exc
            elif job.once:
                value = error
            else:
                value = MaxRetriesExceeded(f"max retries exceeded: {error!r}")
                value.__cause__ = error
        claimed = claim(job.fut)
        with self._lock:
            if not claimed:
                self._cancelled += 1
            elif ok:
                self._completed += 1
            else:
                self._failed += 1
        self._gate.release()
        if claimed:
            set_outcome(job.fut, ok, value)
        with self._lock:
            self._jobs.pop(job.fut, None)

    # -- stopping ------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: refuse new tasks, let the submitted ones finish,
        then destroy every worker's resources (the plugin's teardown). With
        ``timeout``, raise TimeoutError if tasks are still in flight after
        that many seconds; calling ``stop()`` again keeps waiting."""
        if timeout is not None:
            check_timeout(timeout, "timeout")
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopping"
        if not self._gate.wait_empty(timeout):
            raise TimeoutError(
                f"stop() timed out after {timeout} s with {self._gate.in_flight} tasks "
                "still in flight; call stop() again to keep waiting, or kill() to cancel "
                "them"
            )
        self._finish()

    def kill(self) -> int:
        """Stop now: cancel every task no worker is executing (waiters wake
        with CancelledError), let the running ones finish, destroy every
        resource. Returns how many were cancelled."""
        with self._lock:
            if self._state == "stopped":
                return 0
            self._state = "stopping"
            pairs = [(fut, job.dask_future) for fut, job in self._jobs.items()]
        cancelled = cancel_not_started(self._client, pairs)
        self._gate.wait_empty()
        self._finish()
        return cancelled

    def _finish(self) -> None:
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        # Teardown on every worker: on_destroy for each resource.
        self._client.unregister_worker_plugin(self._name)

    def __enter__(self) -> Runner[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reading ------------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` or :meth:`kill` has begun."""
        return self._state != "running"

    @property
    def plugin_name(self) -> str:
        """The name of this Runner's WorkerPlugin on the cluster."""
        return self._name

    def stats(self) -> RunnerStats:
        """A snapshot (see :class:`RunnerStats`); asks the scheduler for the
        number of workers."""
        workers = len(self._client.scheduler_info().get("workers", {}))
        with self._lock:
            jobs = [j for j in self._jobs.values() if not j.fut.done()]
            prio = sum(1 for j in jobs if j.priority > 0)
            return RunnerStats(
                active_workers=workers,
                queued_tasks=len(jobs) - prio,
                priority_tasks=prio,
                completed=self._completed,
                failed=self._failed,
                cancelled=self._cancelled,
                retried=self._retried,
                replaced=self._replaced,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state} in_flight={self._gate.in_flight}>"


def _wait(fut: cf.Future[T]) -> T:
    try:
        return fut.result()
    except KeyboardInterrupt:
        fut.cancel()  # Ctrl-C while waiting: don't run it for nobody
        raise
