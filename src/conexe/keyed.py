"""``KeyedExecutor``: tasks with the same key run one at a time, in the order
they were submitted; tasks with different keys run in parallel on one shared
pool of workers.

It sits on the core's key-sharded dispatch map: a key's tasks wait in its
own FIFO chain and only the key's next task is in the shared queue, so a
slow key holds one worker and never the keys behind it (no head-of-line
blocking), and a key's entry is freed as soon as it has nothing queued or
running.

    >>> import conexe
    >>> balance = {"alice": 0}
    >>> def deposit(user, amount):
    ...     balance[user] += amount
    >>> with conexe.KeyedExecutor(max_workers=4) as ex:
    ...     for _ in range(10):
    ...         ex.execute("alice", deposit, "alice", 1)
    >>> balance["alice"]
    10
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar

from . import _deadlines
from ._contract import KEY_WIDTH_MESSAGE
from ._impl import Core, CoreFuture
from ._impl import core as _default_core
from ._options import (
    check_context,
    check_idle_reaping,
    check_max_workers,
    check_on_full,
    check_size,
)
from ._task import Task, check_timeout
from ._threads import EXIT_MESSAGE, WorkerThreads, interpreter_shutting_down, join_within

__all__ = ["KeyedExecutor", "KeyedStats"]

_log = logging.getLogger("conexe")

P = ParamSpec("P")
T = TypeVar("T")
ErrorHandler = Callable[[Any, BaseException], object]
KeyedFullPolicy = Literal["raise", "block"]
TaskContext = Literal["copy", "fresh"]
# No "caller_runs": running a task in the caller while earlier tasks of its
# key are still queued would break the key's order.
_POLICIES = ("raise", "block")


@dataclass(frozen=True)
class KeyedStats:
    """A consistent snapshot of a :class:`KeyedExecutor`'s counters.

    ``pending`` counts tasks accepted and not started (those waiting behind
    a busy key included); ``active_keys`` counts keys with a task pending or
    running. At any quiet moment ``submitted == completed + failed +
    cancelled + pending + running``.
    """

    workers: int
    idle: int
    pending: int
    running: int
    active_keys: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int


def check_max_per_key(value: object) -> int:
    """``max_per_key`` (or what its function gave): an int >= 1.

    >>> check_max_per_key(0)
    Traceback (most recent call last):
    ...
    ValueError: max_per_key must be >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"max_per_key must be an int >= 1 or a function of the key, not {type(value).__name__}"
        )
    if value < 1:
        raise ValueError(KEY_WIDTH_MESSAGE % (value,))
    return value


def check_rate_per_key(value: object) -> float:
    """``rate_per_key`` (or what its function gave): starts per second, a
    finite number > 0.

    >>> check_rate_per_key(0)
    Traceback (most recent call last):
    ...
    ValueError: rate_per_key must be a finite number > 0 (starts per second), got 0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            "rate_per_key must be a number (starts per second) or a function of the key, "
            f"not {type(value).__name__}"
        )
    if not 0 < value < math.inf:
        raise ValueError(
            f"rate_per_key must be a finite number > 0 (starts per second), got {value!r}"
        )
    return float(value)


def log_error(key: Any, exc: BaseException) -> None:
    """The default error handler of :meth:`KeyedExecutor.execute`: log the
    failure, with its traceback, to the ``"conexe"`` logger."""
    _log.error("task for key %r failed", key, exc_info=exc)


class KeyedExecutor:
    """A thread pool that runs the tasks of each key in order, one at a time.

    ``max_workers`` (default: ``ThreadPoolExecutor``'s) threads are shared
    by every key. ``max_queue_size`` bounds the pending tasks (0 =
    unbounded); when it is full, ``on_full`` decides: ``"raise"`` QueueFull
    (default) or ``"block"`` the caller for at most ``block_timeout``
    seconds, then QueueFull. ``error_handler(key, exc)`` receives the
    failures of :meth:`execute`'s tasks (default: logged to the ``"conexe"``
    logger). Any hashable object is a key.

        >>> log = []
        >>> with KeyedExecutor(max_workers=2) as ex:
        ...     first = ex.submit(("user", 7), log.append, "a")
        ...     second = ex.submit(("user", 7), log.append, "b")
        >>> log
        ['a', 'b']

    Every task runs in a copy of its submitter's :mod:`contextvars` context
    (``context="copy"``, the default) or in a new, empty one
    (``context="fresh"``); never in one another task wrote to.
    A key's next task may start before the previous task's future has run
    its done-callbacks; the tasks themselves never overlap.
    ``max_per_key`` lets up to that many of a key's tasks run at once (an
    int, or a function of the key, asked at each submit and kept while the
    key has tasks queued or running): they still start in submission
    order, at most that many at a time, and may end in any order.
    ``rate_per_key`` paces each key: at most that many of its tasks start
    per second (a number, or a function of the key giving one or None for
    no pace, asked like ``max_per_key``), ``burst_per_key`` of them back to
    back at most. A task waits for its key's time without holding a
    worker, and other keys go on meanwhile; no thread sleeps per key.

        >>> import time
        >>> with KeyedExecutor(2, rate_per_key=20) as ex:
        ...     starts = [ex.submit("api", time.monotonic) for _ in range(3)]
        ...     gap = starts[2].result() - starts[0].result()
        >>> gap >= 2 / 20  # the third start, two intervals after the first
        True

    ``exit_timeout``: how long interpreter exit waits for the accepted work
    (None: until done), and ``idle_timeout``/``min_workers``: idle workers
    exit after that many seconds, down to that many (see
    :class:`conexe.ConcurrentExecutor`).
    """

    _core: Core = _default_core

    def __init__(
        self,
        max_workers: int | None = None,
        max_queue_size: int = 0,
        *,
        thread_name_prefix: str = "",
        on_full: KeyedFullPolicy = "raise",
        block_timeout: float | None = None,
        error_handler: ErrorHandler | None = None,
        context: TaskContext = "copy",
        exit_timeout: float | None = None,
        max_per_key: int | Callable[[Any], int] = 1,
        rate_per_key: float | Callable[[Any], float | None] | None = None,
        burst_per_key: int = 1,
        idle_timeout: float | None = None,
        min_workers: int = 0,
    ) -> None:
        max_workers = check_max_workers(max_workers)
        idle = check_idle_reaping(idle_timeout, min_workers, max_workers)
        key_width = 1 if callable(max_per_key) else check_max_per_key(max_per_key)
        key_rate = 0.0
        if rate_per_key is not None and not callable(rate_per_key):
            key_rate = check_rate_per_key(rate_per_key)
        key_burst = check_size(burst_per_key, "burst_per_key", minimum=1)
        if exit_timeout is not None:
            check_timeout(exit_timeout, "exit_timeout")
        check_size(max_queue_size, "max_queue_size")
        check_context(context)
        check_on_full(on_full, _POLICIES)
        if block_timeout is not None:
            check_timeout(block_timeout, "block_timeout")
        if not isinstance(thread_name_prefix, str):
            raise TypeError("thread_name_prefix must be a str")
        if error_handler is not None and not callable(error_handler):
            raise TypeError(
                f"error_handler must be a callable taking (key, exception), "
                f"not {type(error_handler).__name__}"
            )
        self._max_workers = max_workers
        self._block = on_full == "block"
        self._block_timeout = block_timeout
        self.error_handler: ErrorHandler = error_handler or log_error
        self._shutdown_lock = threading.Lock()
        self._engine = self._core.Engine(
            max_queue_size,
            on_need_worker=self._spawn_worker,
            target_workers=max_workers,
            context=context,
            key_width=key_width,
            key_rate=key_rate,
            key_burst=key_burst,
            idle_timeout=idle,
            min_workers=min_workers,
        )
        # A function of the key: asked (outside every lock) at each submit,
        # and kept by the key's entry while it has tasks queued or running.
        self._width_of = max_per_key if callable(max_per_key) else None
        self._rate_of = rate_per_key if callable(rate_per_key) else None
        self._threads = WorkerThreads(
            self._engine,
            thread_name_prefix or "conexe-keyed",
            new_worker=self._core.Worker,
            exit_timeout=exit_timeout,
        )
        if interpreter_shutting_down():
            self._engine.close(message=EXIT_MESSAGE)
        if (
            not self._block
            and self._width_of is None
            and self._rate_of is None
            and type(self).submit is KeyedExecutor.submit
        ):
            # The hot path: submit() is the core's own method (it copies the
            # caller's context itself, unless context="fresh"), no Python
            # frame in between. Not when
            # a subclass overrides submit(): its override must stay in force.
            self.submit = self._engine.call_keyed  # type: ignore[method-assign]

    def _spawn_worker(self) -> None:
        self._threads.spawn_one()

    # -- submitting ----------------------------------------------------------
    def submit(
        self, key: Any, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> CoreFuture[T]:
        """Schedule ``fn(*args, **kwargs)`` after every earlier task of
        ``key``; returns its Future.

        Raises TypeError for an unhashable key or a non-callable ``fn``,
        RuntimeError after shutdown and (full queue) QueueFull."""
        # Reached with on_full="block" or through a subclass's super():
        # otherwise the instance's submit is the core's call_keyed.
        return self._submit(key, fn, args, kwargs, 0, 0.0, False)  # type: ignore[return-value]

    def submit_unique(
        self, key: Any, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> CoreFuture[T] | None:
        """Like :meth:`submit`, but only if ``key`` has no task pending or
        running: returns None (and schedules nothing) for a duplicate.

            >>> import threading
            >>> gate = threading.Event()
            >>> with KeyedExecutor(1) as ex:
            ...     busy = ex.submit_unique("report", gate.wait)
            ...     ex.submit_unique("report", gate.wait) is None
            ...     gate.set()
            True
        """
        return self._submit(key, fn, args, kwargs, 0, 0.0, True)

    def execute(
        self, key: Any, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Fire and forget: like :meth:`submit`, but a failure goes to
        ``error_handler(key, exc)`` instead of a future nobody reads.

            >>> seen = []
            >>> with KeyedExecutor(1, error_handler=lambda k, e: seen.append((k, e))) as ex:
            ...     ex.execute("k", int, "not a number")
            >>> seen[0][0], type(seen[0][1]).__name__
            ('k', 'ValueError')
        """
        fut = self._submit(key, fn, args, kwargs, 0, 0.0, False)
        fut.add_done_callback(_ReportFailure(self, key))  # type: ignore[union-attr]

    def submit_task(self, key: Any, task: Task[T]) -> CoreFuture[T]:
        """Submit a :class:`Task` on ``key`` with its options: ``priority``
        (among ready keys, higher first; a key's own order always holds) and
        ``start_timeout`` (still pending then: TimeoutError, and the key
        moves on).

            >>> with KeyedExecutor(1) as ex:
            ...     ex.submit_task("k", Task("t", max, (3, 9), priority=2)).result()
            9
        """
        if not isinstance(task, Task):
            raise TypeError(f"submit_task() takes a conexe.Task, not {type(task).__name__}")
        deadline = task.deadline()
        kwargs = dict(task.kwargs) if task.kwargs else None
        fut = self._submit(
            key,
            task.fn,
            tuple(task.args),
            kwargs,
            task.priority,
            deadline,
            False,
            task.run_deadline(),
        )
        assert fut is not None
        if deadline:
            _deadlines.watch(fut, deadline)
        return fut

    def _submit(
        self,
        key: Any,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        priority: int,
        deadline: float,
        unique: bool,
        run_deadline: float = 0.0,
    ) -> CoreFuture[Any] | None:
        width, rate = 0, -1.0  # the engine's
        if self._width_of is not None:
            width = check_max_per_key(self._width_of(key))
        if self._rate_of is not None:
            given = self._rate_of(key)
            rate = 0.0 if given is None else check_rate_per_key(given)
        return self._engine.submit_keyed(
            key,
            fn,
            args,
            kwargs,
            priority=priority,
            deadline=deadline,
            unique=unique,
            block=self._block,
            timeout=self._block_timeout,
            width=width,
            rate=rate,
            run_deadline=run_deadline,
        )

    # -- reading -----------------------------------------------------------------
    @property
    def max_workers(self) -> int:
        return self._max_workers

    def stats(self) -> KeyedStats:
        """A snapshot of the counters (see :class:`KeyedStats`)."""
        s = self._engine.stats()
        return KeyedStats(
            workers=s["workers"],
            idle=s["idle"],
            pending=s["queued"],
            running=s["running"],
            active_keys=s["active_keys"],
            submitted=s["submitted"],
            completed=s["completed"],
            failed=s["failed"],
            cancelled=s["cancelled"],
            rejected=s["rejected"],
        )

    # -- shutting down -------------------------------------------------------------
    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> None:
        """Refuse new tasks. ``cancel_futures`` cancels every pending task
        (its waiters wake with CancelledError); otherwise every key is
        drained. ``wait`` joins the workers once they are done: with
        ``timeout``, for at most that many seconds, then TimeoutError says
        what is still running and queued (not dropped: a later
        ``shutdown()`` waits for it)."""
        if timeout is not None:
            check_timeout(timeout, "timeout")
        with self._shutdown_lock:
            self._engine.close(cancel=cancel_futures)
        if wait:
            join_within(self._threads, timeout)

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
        s = self._engine.stats()
        state = "shut down" if self._engine.closed else "running"
        return (
            f"<{type(self).__name__} {state} max_workers={self._max_workers} "
            f"workers={s['workers']} pending={s['queued']} running={s['running']} "
            f"active_keys={s['active_keys']}>"
        )


class _ReportFailure:
    """The done-callback :meth:`KeyedExecutor.execute` adds: hands a failure
    to the executor's current ``error_handler``; a handler that raises is
    logged and never reaches the worker running it."""

    __slots__ = ("executor", "key")

    def __init__(self, executor: KeyedExecutor, key: Any) -> None:
        self.executor = executor
        self.key = key

    def __call__(self, fut: cf.Future[Any]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            return
        try:
            self.executor.error_handler(self.key, exc)
        except BaseException:  # noqa: B036 - a worker must survive any handler
            _log.exception("the error_handler of a KeyedExecutor raised (key %r)", self.key)
