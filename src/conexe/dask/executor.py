"""``conexe.dask.ConcurrentExecutor``: the local executor's API on a Dask
cluster.

Each ``submit`` is one Dask task (``pure=False`` and a unique key, so two
identical calls are never merged into one). The future returned is a conexe
future, a real ``concurrent.futures.Future``, completed from the Dask
future's callback, so ``wait``, ``as_completed`` and asyncio take it.

    >>> from distributed import Client, LocalCluster            # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, processes=True))  # doctest: +SKIP
    >>> with ConcurrentExecutor(client) as ex:                  # doctest: +SKIP
    ...     ex.submit(pow, 2, 8).result(), list(ex.map(abs, [-1, -2]))
    (256, [1, 2])
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import pickle
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .._impl import Core
from .._impl import core as _default_core
from .._options import check_buffersize, check_callable
from .._task import Task, check_timeout
from ._common import (
    SHUTDOWN_MESSAGE,
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
    refuse_run_timeout,
    run_in_caller,
    set_outcome,
    submit_to,
)
from ._results import ResultFetcher

__all__ = ["ConcurrentExecutor", "call"]

_POLICIES = ("raise", "block", "caller_runs")

T = TypeVar("T")


def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What runs on the Dask worker: ``fn(*args, **kwargs)``. Arguments
    travel packed, so a user's keyword named ``key`` or ``priority`` never
    collides with ``Client.submit``'s own."""
    return fn(*args, **kwargs)


def call_in_chain(
    _previous: object, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    """What runs on the Dask worker for ``KeyedExecutor(chain="cluster")``:
    ``fn(*args, **kwargs)`` once ``_previous`` (the key's previous task, a
    Dask dependency) has ended. Its outcome comes back as ``(ok, value)``,
    never as a Dask error, which would fail every later task of the key."""
    try:
        return True, fn(*args, **kwargs)
    except BaseException as exc:  # noqa: B036 - delivered through the future
        try:
            pickle.dumps(exc)
        except Exception:
            # It must travel (to the client, and the key's next task): say what it was.
            exc = RuntimeError(f"{type(exc).__name__}: {exc} (the exception did not pickle)")
        return False, exc


class ConcurrentExecutor(cf.Executor):
    """A ``concurrent.futures.Executor`` whose tasks run on a Dask cluster.

    ``client`` is a (synchronous) ``distributed.Client``; the executor never
    closes it. ``max_queue_size`` bounds the tasks in flight (submitted and
    not finished; 0: unbounded); when the bound is reached ``on_full``
    decides, as locally: ``"raise"`` QueueFull, ``"block"`` (at most
    ``block_timeout`` seconds) or ``"caller_runs"``. ``resources`` (Dask
    worker resources, e.g. ``{"GPU": 1}``) apply to every task.

        >>> ex = ConcurrentExecutor(client, max_queue_size=100)  # doctest: +SKIP
        >>> ex.submit(sum, [1, 2, 3]).result()                   # doctest: +SKIP
        6

    What differs from the local executor: functions and arguments must
    pickle; ``cancel()`` succeeds until the result is back (a task already
    running on a worker finishes there, its result is dropped); a future
    never reports ``running()``; done-callbacks run in the executor's one
    result thread (don't block in them).
    """

    _core: Core = _default_core

    def __init__(
        self,
        client: Any,
        max_queue_size: int = 0,
        *,
        on_full: FullPolicy = "raise",
        block_timeout: float | None = None,
        resources: dict[str, float] | None = None,
    ) -> None:
        self._client = check_client(client)
        check_count(max_queue_size, "max_queue_size")
        check_on_full(on_full, _POLICIES)
        self._gate = InFlightGate(max_queue_size, on_full, check_block_timeout(block_timeout))
        self._resources = dict(resources) if resources else None
        self._results = ResultFetcher(self._client)
        self._lock = threading.Lock()
        self._shutdown = False
        # conexe future -> its Dask future. Holding the Dask future is what
        # keeps the task alive: Dask forgets a task nobody references.
        self._pending: dict[Any, Any] = {}
        self._submitted = 0
        self._completed = 0
        self._failed = 0
        self._cancelled = 0

    # -- submitting --------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the cluster; returns its Future.

        Raises RuntimeError after shutdown, TypeError if ``fn`` isn't
        callable, QueueFull (bound reached, ``on_full="raise"``)."""
        return self._submit(fn, args, kwargs, 0)

    def submit_task(self, task: Task[T]) -> cf.Future[T]:
        """Submit a :class:`conexe.Task`; its ``priority`` becomes the Dask
        priority (higher runs first, as locally). ``start_timeout`` is
        refused: a task is handed to the scheduler at once, so "still
        queued" can't be observed from here. So is ``timeout``: a task
        on a Dask worker has no ``conexe.current_task()`` to see it."""
        if not isinstance(task, Task):
            raise TypeError(f"submit_task() takes a conexe.Task, not {type(task).__name__}")
        if task.start_timeout is not None:
            raise ValueError(
                "start_timeout is not supported by conexe.dask.ConcurrentExecutor: the "
                "task goes to the Dask scheduler at once; use fut.result(timeout) instead"
            )
        refuse_run_timeout(task, "conexe.dask.ConcurrentExecutor")
        return self._submit(task.fn, tuple(task.args), dict(task.kwargs or {}), task.priority)

    def _submit(
        self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], priority: int
    ) -> cf.Future[Any]:
        check_callable(fn)
        if self._shutdown:
            raise RuntimeError(SHUTDOWN_MESSAGE)
        if not self._gate.acquire():
            return run_in_caller(self._core, fn, args, kwargs)  # type: ignore[no-any-return]
        fut = self._core.Future()
        try:
            with self._lock:
                if self._shutdown:
                    raise RuntimeError(SHUTDOWN_MESSAGE)
                dfut = submit_to(
                    self._client,
                    call,
                    fn,
                    args,
                    kwargs,
                    key=dask_key(fn),
                    priority=priority,
                    resources=self._resources,
                )
                self._pending[fut] = dfut
                self._submitted += 1
        except BaseException:
            self._gate.release()
            raise
        fut.add_done_callback(self._on_cancel)
        self._results.watch(dfut, lambda ok, value: self._on_dask_done(fut, ok, value))
        return fut  # type: ignore[no-any-return]

    def _on_cancel(self, fut: Any) -> None:
        # The user cancelled (or shutdown did): tell Dask, which drops the
        # task if it hasn't started. Dask then reports it cancelled.
        if fut.cancelled():
            with self._lock:
                dfut = self._pending.get(fut)
            if dfut is not None:
                cancel_on_cluster(dfut)

    def _on_dask_done(self, fut: Any, ok: bool, value: Any) -> None:
        claimed = claim(fut)  # False: the user (or shutdown) cancelled it
        with self._lock:
            if not claimed:
                self._cancelled += 1
            elif ok:
                self._completed += 1
            else:
                self._failed += 1
        # Free the slot before completing: a done-callback may submit.
        self._gate.release()
        if claimed:
            set_outcome(fut, ok, value)
        with self._lock:  # only now: shutdown(wait=True) waits on _pending
            del self._pending[fut]

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """``Executor.map``: one Dask task per item, results in order.
        ``chunksize`` is accepted for compatibility and ignored (Dask
        schedules each task on its own). ``buffersize`` (Python 3.14's, on
        every Python): only that many items are read and submitted at the
        call, then one more each time a result is taken; the iterator holds
        the executor weakly and submits nothing once it is gone."""
        buffersize = check_buffersize(buffersize)
        check_callable(fn)
        end_time = None if timeout is None else timeout + time.monotonic()
        items = zip(*iterables, strict=False)
        items_ahead: Iterator[tuple[Any, ...]] = items
        if buffersize is not None:
            items_ahead = itertools.islice(items, buffersize)
        futures = collections.deque(self.submit(fn, *args) for args in items_ahead)
        executor = weakref.ref(self) if buffersize is not None else None

        def results() -> Iterator[Any]:
            try:
                while futures:
                    # Read the next item (3.14's order: before waiting).
                    ex = executor() if executor is not None else None
                    if ex is not None:
                        args = next(items, None)
                        if args is not None:
                            futures.append(ex.submit(fn, *args))
                    del ex
                    f = futures.popleft()
                    if end_time is None:
                        yield f.result()
                    else:
                        yield f.result(end_time - time.monotonic())
                    del f
            finally:
                for f in futures:
                    f.cancel()

        return results()

    # -- reading ------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The ``distributed.Client`` tasks go through."""
        return self._client

    def stats(self) -> dict[str, int]:
        """Counters: ``in_flight`` (submitted, not finished: queued or
        running on the cluster, Dask doesn't tell which), ``submitted``,
        ``completed``, ``failed``, ``cancelled``, ``rejected``."""
        with self._lock:
            return {
                "in_flight": self._gate.in_flight,
                "submitted": self._submitted,
                "completed": self._completed,
                "failed": self._failed,
                "cancelled": self._cancelled,
                "rejected": self._gate.rejected,
            }

    # -- shutting down ----------------------------------------------------------------
    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> None:
        """Refuse new tasks; ``cancel_futures`` cancels every task that no
        worker is executing (their waiters wake with CancelledError; the
        running ones finish); ``wait`` waits for the rest: with ``timeout``,
        at most that many seconds, then TimeoutError says how many are still
        pending on the cluster (not dropped: a later ``shutdown()`` waits).
        The client stays open: it is the caller's."""
        if timeout is not None:
            check_timeout(timeout, "timeout")
        with self._lock:
            self._shutdown = True
            pairs = list(self._pending.items())
        if cancel_futures:
            cancel_not_started(self._client, pairs)
        pending = [fut for fut, _ in pairs]
        if wait:
            _, not_done = cf.wait(pending, timeout)
            if not_done:
                raise TimeoutError(
                    f"shutdown timed out after {timeout} s: {len(not_done)} tasks still "
                    "pending on the cluster; nothing is dropped: they go on. Call shutdown() "
                    "again to wait for them, or shutdown(cancel_futures=True) to cancel "
                    "those not started"
                )

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return f"<{type(self).__name__} {state} in_flight={self._gate.in_flight}>"
