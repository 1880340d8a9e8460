"""``conexe.dask.KeyedExecutor``: tasks with the same key run one at a time,
in submission order, across the whole cluster; different keys run in
parallel on any workers.

Each key's chain lives here, on the client: a key has at most one task on
the cluster, and its next task is submitted when that one's result is back.
Why not chain Dask futures (each task depending on the previous one of its
key)? Dask can't stop a task that has started, and cancelling a future also
cancels its dependents, so a chain on the scheduler can't drop a waiting
task without risking two tasks of a key running at once. Here a waiting
task is still ours: ``cancel()``, ``submit_unique``, start deadlines and
``shutdown(cancel_futures=True)`` work as locally. The price is one client
round trip between two tasks of the same key (see docs/dask.md).
``chain="cluster"`` pays that price the other way: each task a Dask
dependency of its key's previous one, handed over (and no longer
cancellable) at submit, its outcome wrapped so that a failure never fails
the rest of the key.

    >>> ex = KeyedExecutor(client)                                # doctest: +SKIP
    >>> [ex.submit("alice", pow, 2, i) for i in range(3)][-1].result()  # doctest: +SKIP
    4
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

from .. import _deadlines
from .._impl import Core
from .._impl import core as _default_core
from .._options import check_callable, check_key
from .._task import Task, check_timeout
from ..keyed import _POLICIES, ErrorHandler, KeyedFullPolicy, log_error
from ._common import (
    SHUTDOWN_MESSAGE,
    InFlightGate,
    check_block_timeout,
    check_client,
    check_count,
    check_on_full,
    claim,
    dask_key,
    refuse_run_timeout,
    set_outcome,
    submit_to,
)
from ._results import ResultFetcher
from .executor import call, call_in_chain

__all__ = ["KeyedExecutor", "KeyedStats"]

_log = logging.getLogger("conexe")

T = TypeVar("T")


@dataclass(frozen=True)
class KeyedStats:
    """A snapshot of a Dask :class:`KeyedExecutor`.

    ``workers``: the cluster's Dask workers. ``pending``: tasks waiting
    behind a busy key (here, on the client); ``running``: tasks handed to
    the cluster (queued or running there: Dask doesn't tell which);
    ``active_keys``: keys with a task pending or running. At a quiet moment
    ``submitted == completed + failed + cancelled + pending + running``.
    """

    workers: int
    pending: int
    running: int
    active_keys: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int


class _Item:
    __slots__ = ("fut", "fn", "args", "kwargs", "priority", "dispatched")

    def __init__(
        self, fut: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], priority: int
    ) -> None:
        self.fut = fut
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.priority = priority
        self.dispatched = False  # handed to the cluster: ends through _finish


class KeyedExecutor:
    """Per-key ordered, non-overlapping execution on a Dask cluster.

    Mirrors :class:`conexe.KeyedExecutor` with ``client`` in place of
    ``max_workers``. ``max_queue_size`` bounds the tasks accepted and not
    finished (0: unbounded); ``on_full`` is ``"raise"`` (QueueFull) or
    ``"block"`` (at most ``block_timeout`` seconds). ``error_handler(key,
    exc)`` receives :meth:`execute`'s failures (default: logged). Keys must
    be hashable; they stay on the client, only tasks travel.

    ``chain`` says where a key's order is kept. ``"client"`` (the default):
    here, a key's next task is handed to the cluster when the previous
    one's result is back, so a task waiting behind its key can still be
    cancelled or reach its ``start_timeout``, as locally (one client round
    trip between two tasks of a key). ``"cluster"``: every task goes to the
    cluster when submitted, as a Dask dependency of its key's previous task
    (no round trip: about raw Dask's cost); it counts as running from then
    on, so it can't be cancelled, and ``start_timeout`` is refused. A task's
    result travels to the worker that runs its key's next task.

        >>> with KeyedExecutor(client) as ex:                      # doctest: +SKIP
        ...     a = ex.submit(("user", 7), str.upper, "a")
        ...     b = ex.submit(("user", 7), str.upper, "b")   # after a, never beside it
        >>> a.result(), b.result()                                 # doctest: +SKIP
        ('A', 'B')
        >>> fast = KeyedExecutor(client, chain="cluster")          # doctest: +SKIP
    """

    _core: Core = _default_core

    def __init__(
        self,
        client: Any,
        max_queue_size: int = 0,
        *,
        on_full: KeyedFullPolicy = "raise",
        block_timeout: float | None = None,
        error_handler: ErrorHandler | None = None,
        resources: dict[str, float] | None = None,
        chain: Literal["client", "cluster"] = "client",
    ) -> None:
        if chain not in ("client", "cluster"):
            raise ValueError(f"chain must be 'client' or 'cluster', not {chain!r}")
        self._chain_on_cluster = chain == "cluster"
        self._client = check_client(client)
        self._results = ResultFetcher(self._client)
        check_count(max_queue_size, "max_queue_size")
        check_on_full(on_full, _POLICIES)
        if error_handler is not None and not callable(error_handler):
            raise TypeError(
                f"error_handler must be a callable taking (key, exception), "
                f"not {type(error_handler).__name__}"
            )
        self.error_handler: ErrorHandler = error_handler or log_error
        self._gate = InFlightGate(max_queue_size, on_full, check_block_timeout(block_timeout))
        self._resources = dict(resources) if resources else None
        # _lock guards the chains and counters; never held while a future
        # completes (its callbacks may call us back).
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        # key -> tasks waiting behind the key's task on the cluster. A key
        # is here exactly while it has a task pending or running.
        self._chains: dict[Any, deque[_Item]] = {}
        self._on_cluster: dict[Any, Any] = {}  # key -> Dask future (kept alive)
        # chain="cluster": key -> [its last task's Dask future, its tasks on
        # the cluster]; the key is in _chains too (an empty deque) meanwhile.
        self._links: dict[Any, list[Any]] = {}
        self._shutdown = False
        self._submitted = 0
        self._pending = 0
        self._running = 0
        self._completing = 0  # futures whose key is freed, not yet completed
        self._completed = 0
        self._failed = 0
        self._cancelled = 0

    # -- submitting ---------------------------------------------------------------
    def submit(
        self, key: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> cf.Future[Any]:
        """Run ``fn(*args, **kwargs)`` after every earlier task of ``key``
        has finished; returns its Future."""
        fut = self._submit(key, fn, args, kwargs, 0, 0.0, False)
        assert fut is not None
        return fut

    def submit_unique(
        self, key: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> cf.Future[Any] | None:
        """Like :meth:`submit`, but only if ``key`` has no task pending or
        running; returns None (and schedules nothing) otherwise."""
        return self._submit(key, fn, args, kwargs, 0, 0.0, True)

    def execute(self, key: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Fire and forget: a failure goes to ``error_handler(key, exc)``."""
        fut = self._submit(key, fn, args, kwargs, 0, 0.0, False)
        assert fut is not None
        fut.add_done_callback(lambda f: self._report(key, f))

    def submit_task(self, key: Any, task: Task[T]) -> cf.Future[T]:
        """Submit a :class:`conexe.Task` on ``key``: ``priority`` becomes the
        Dask priority of the task when it is handed to the cluster (a key's
        own order always holds); ``start_timeout`` fails the task with
        TimeoutError if it is still waiting behind its key then; ``timeout``
        is refused (a task on a Dask worker has no ``conexe.current_task()``)."""
        if not isinstance(task, Task):
            raise TypeError(f"submit_task() takes a conexe.Task, not {type(task).__name__}")
        refuse_run_timeout(task, "conexe.dask.KeyedExecutor")
        if self._chain_on_cluster and task.start_timeout is not None:
            raise ValueError(
                "Task(start_timeout=...) is not supported by KeyedExecutor(chain='cluster'): "
                "a task is handed to the cluster when it is submitted; use chain='client'"
            )
        deadline = task.deadline()
        fut = self._submit(
            key,
            task.fn,
            tuple(task.args),
            dict(task.kwargs or {}),
            task.priority,
            deadline,
            False,
        )
        assert fut is not None
        return fut

    def _submit(
        self,
        key: Any,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        priority: int,
        deadline: float,
        unique: bool,
    ) -> cf.Future[Any] | None:
        check_callable(fn)
        check_key(key)
        if self._shutdown:
            raise RuntimeError(SHUTDOWN_MESSAGE)
        if unique:
            with self._lock:  # cheap early answer; checked again below
                if key in self._chains:
                    return None
        self._gate.acquire()  # "raise" or "block": never False here
        item = _Item(self._core.Future(), fn, args, kwargs, priority)
        with self._lock:
            if self._shutdown or (unique and key in self._chains):
                self._gate.release()
                if self._shutdown:
                    raise RuntimeError(SHUTDOWN_MESSAGE)
                return None
            self._submitted += 1
            if self._chain_on_cluster:
                self._chains.setdefault(key, deque())  # stays empty: marks the key busy
                dfut = self._link_locked(key, item)
            else:
                chain = self._chains.get(key)
                if chain is None:
                    self._chains[key] = deque()
                    first = True
                else:
                    chain.append(item)
                    self._pending += 1
                    first = False
        if self._chain_on_cluster:
            if isinstance(dfut, BaseException):
                self._unlink(key, item.fut, False, dfut)
            else:
                self._results.watch(dfut, functools.partial(self._unlink, key, item.fut))
        elif first:
            self._dispatch(key, item)
        else:
            item.fut.add_done_callback(lambda f: self._on_waiting_done(key, item))
            if deadline:
                _deadlines.watch(item.fut, deadline)
        return item.fut  # type: ignore[no-any-return]

    # -- the chains -----------------------------------------------------------------
    def _dispatch(self, key: Any, item: _Item | None) -> None:
        """Hand ``item`` (the key's next task) to the cluster; if it was
        cancelled or expired meanwhile, take the next one, and free the
        key when none is left."""
        while item is not None:
            if claim(item.fut):
                item.dispatched = True
                with self._lock:
                    self._running += 1
                try:
                    dfut = self._send(item, call)
                except BaseException as exc:  # noqa: B036 - e.g. fn doesn't pickle
                    self._finish(key, item.fut, False, exc)
                    return
                with self._lock:
                    self._on_cluster[key] = dfut
                self._results.watch(dfut, functools.partial(self._finish, key, item.fut))
                return
            item = self._next_locked_pop(key)

    def _send(self, item: _Item, on_worker: Callable[..., Any], *before: Any) -> Any:
        """``client.submit`` of ``on_worker(*before, fn, args, kwargs)``:
        ``item``'s call, its Dask key and priority, the executor's resources."""
        return submit_to(
            self._client,
            on_worker,
            *before,
            item.fn,
            item.args,
            item.kwargs,
            key=dask_key(item.fn),
            priority=item.priority,
            resources=self._resources,
        )

    def _next_locked_pop(self, key: Any) -> _Item | None:
        with self._lock:
            chain = self._chains[key]
            if chain:
                self._pending -= 1
                return chain.popleft()
            del self._chains[key]
            self._on_cluster.pop(key, None)
            if not self._chains:
                self._idle.notify_all()
            return None

    def _finish(self, key: Any, fut: Any, ok: bool, value: Any) -> None:
        with self._lock:
            self._ended_locked(ok)
        # The key is freed (or handed to its next task) and the gate opened
        # before the future completes: whoever its result wakes, or a
        # done-callback, may submit on the key again, even submit_unique.
        following = self._next_locked_pop(key)
        self._complete(fut, ok, value)
        self._dispatch(key, following)

    def _ended_locked(self, ok: bool) -> None:
        """Count a task handed to the cluster that ended."""
        self._running -= 1
        if ok:
            self._completed += 1
        else:
            self._failed += 1
        self._completing += 1  # shutdown(wait=True) waits for it

    def _complete(self, fut: Any, ok: bool, value: Any) -> None:
        """Open the gate, then complete ``fut`` (its key already freed or
        handed on); shutdown(wait=True) stops waiting for it only then."""
        self._gate.release()
        try:
            set_outcome(fut, ok, value)
        finally:
            with self._lock:
                self._completing -= 1
                if not self._completing and not self._chains:
                    self._idle.notify_all()

    # -- chain="cluster": each task a Dask dependent of its key's previous one --
    def _link_locked(self, key: Any, item: _Item) -> Any:
        """Hand ``item`` to the cluster behind its key's last task there (a
        Dask dependency: it starts once that one has ended, whatever its
        outcome). Returns its Dask future, or the exception that kept it
        from the cluster. Under _lock, so a key's tasks reach the scheduler
        in the key's order."""
        item.fut.set_running_or_notify_cancel()  # on the cluster: no longer ours to cancel
        self._running += 1
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = [None, 0]
        link[1] += 1
        try:
            dfut = self._send(item, call_in_chain, link[0])
        except BaseException as exc:  # noqa: B036 - e.g. fn doesn't pickle
            return exc
        link[0] = dfut
        return dfut

    def _unlink(self, key: Any, fut: Any, ok: bool, value: Any) -> None:
        """A task of a cluster chain ended: unwrap its outcome, free the key
        once its last task is done, complete the future."""
        if ok:
            ok, value = value  # call_in_chain's (ok, value)
        with self._lock:
            self._ended_locked(ok)
            link = self._links[key]
            link[1] -= 1
            if link[1] == 0:
                del self._links[key], self._chains[key]
                if not self._chains:
                    self._idle.notify_all()
        self._complete(fut, ok, value)

    def _on_waiting_done(self, key: Any, item: _Item) -> None:
        # Only a waiting task can end here (cancelled, or failed by its
        # start deadline): one handed to the cluster is RUNNING, and ends
        # through _finish. Its slot in the key's order is given up.
        fut = item.fut
        if item.dispatched:
            return
        with self._lock:
            chain = self._chains.get(key)
            if chain is not None and item in chain:
                chain.remove(item)
                self._pending -= 1
            if fut.cancelled():
                self._cancelled += 1
            else:
                self._failed += 1
        self._gate.release()

    def _report(self, key: Any, fut: cf.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        exc = fut.exception()
        assert exc is not None
        try:
            self.error_handler(key, exc)
        except BaseException:  # noqa: B036 - a callback must survive any handler
            _log.exception("the error_handler of a KeyedExecutor raised (key %r)", key)

    # -- reading ----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        return self._client

    def stats(self) -> KeyedStats:
        """A snapshot (see :class:`KeyedStats`); asks the scheduler for the
        number of workers."""
        workers = len(self._client.scheduler_info().get("workers", {}))
        with self._lock:
            return KeyedStats(
                workers=workers,
                pending=self._pending,
                running=self._running,
                active_keys=len(self._chains),
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                cancelled=self._cancelled,
                rejected=self._gate.rejected,
            )

    # -- shutting down ----------------------------------------------------------------
    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> None:
        """Refuse new tasks. ``cancel_futures`` cancels every task waiting
        behind its key (waiters wake with CancelledError); the tasks already
        on the cluster finish. ``wait`` waits until every key is drained:
        with ``timeout``, at most that many seconds, then TimeoutError says
        how many keys are still busy (not dropped: a later ``shutdown()``
        waits). The client stays open: it is the caller's."""
        if timeout is not None:
            check_timeout(timeout, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._shutdown = True
            waiting = [item.fut for chain in self._chains.values() for item in chain]
        if cancel_futures:
            for fut in waiting:
                fut.cancel()
        if wait:
            with self._idle:
                while self._chains or self._completing:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"shutdown timed out after {timeout} s: {len(self._chains)} keys "
                            "still busy; nothing is dropped: they go on. Call shutdown() "
                            "again to wait for them, or shutdown(cancel_futures=True) to "
                            "cancel the tasks waiting behind them"
                        )
                    self._idle.wait(0.1)  # sliced: Ctrl-C reaches the caller

    def __enter__(self) -> KeyedExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return (
            f"<{type(self).__name__} {state} pending={self._pending} "
            f"active_keys={len(self._chains)}>"
        )
