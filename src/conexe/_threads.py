"""Worker threads: starting them, and what happens at exit and after fork.

Every executor owns a :class:`WorkerThreads`. Threads are non-daemon and are
joined at interpreter exit like ``ThreadPoolExecutor``'s: an exit hook
registered with ``threading._register_atexit`` closes every live engine, so
accepted work still runs and nothing hangs. After ``os.fork()`` the child
has no worker threads, so every engine inherited there refuses work with a
clear RuntimeError instead of queueing tasks nobody will run.

    >>> from conexe._impl import core
    >>> threads = WorkerThreads(core.Engine(), "doc", new_worker=core.Worker)
    >>> threads.start(1)
    >>> threads.engine.submit(len, ("abc",), None).result()
    3
    >>> threads.engine.close(); threads.join()
    0
    True
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._impl import CoreEngine, CoreWorker

if sys.version_info >= (3, 14):

    def _empty_context_option() -> dict[str, Any]:
        # A worker never starts in the context of the thread that happened
        # to start it (free-threaded 3.14 inherits it by default,
        # sys.flags.thread_inherit_context); before 3.14 a thread always
        # starts in an empty one.
        return {"context": contextvars.Context()}

else:

    def _empty_context_option() -> dict[str, Any]:
        return {}


__all__ = ["WorkerThreads", "interpreter_shutting_down", "join_within", "still_busy"]

_live: weakref.WeakSet[WorkerThreads] = weakref.WeakSet()
_live_lock = threading.Lock()
_shutting_down = False
_counter = itertools.count()
_log = logging.getLogger("conexe")

EXIT_MESSAGE = "cannot schedule new futures after interpreter shutdown"


def interpreter_shutting_down() -> bool:
    return _shutting_down


def _at_exit() -> None:
    """At interpreter exit: refuse new work, then wait for each pool's
    workers to finish what it accepted; a pool given an ``exit_timeout``
    is waited for that long at most (counted from here), then what it
    still holds is logged and left (its threads are daemon threads)."""
    global _shutting_down
    _shutting_down = True
    with _live_lock:
        pools = list(_live)
    started = time.monotonic()
    for pool in pools:
        pool.engine.close(message=EXIT_MESSAGE)
    for pool in pools:
        if pool.exit_timeout is None:
            pool.join()
        elif not pool.join(max(0.0, started + pool.exit_timeout - time.monotonic())):
            busy = still_busy(pool.engine.stats())
            cancelled = pool.engine.close(cancel=True, message=EXIT_MESSAGE)
            _log.warning(
                "interpreter exit: %s did not finish within its exit_timeout (%s s): "
                "%s; the %d queued were cancelled and the running ones abandoned",
                pool.name_prefix,
                pool.exit_timeout,
                busy,
                cancelled,
            )


def join_within(threads: WorkerThreads, timeout: float | None) -> None:
    """``threads.join(timeout)`` for ``shutdown(timeout=...)``: past the
    timeout, TimeoutError saying what is still running. Nothing is dropped:
    the workers go on with what was accepted."""
    if threads.join(timeout):
        return
    raise TimeoutError(
        f"shutdown timed out after {timeout} s: {still_busy(threads.engine.stats())}; "
        "nothing is dropped: they go on. Call shutdown() again to wait for them, or "
        "shutdown(cancel_futures=True) to cancel the queued ones"
    )


def still_busy(stats: dict[str, int]) -> str:
    """What a timed-out shutdown leaves: "2 tasks still running, 1 queued"."""
    running, queued = stats["running"], stats["queued"]
    return f"{running} task{'' if running == 1 else 's'} still running, {queued} queued"


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    for pool in list(_live):
        pool.after_fork()


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class WorkerThreads:
    """The threads running one engine's :meth:`worker_loop`.

    ``new_worker()`` makes each thread's handle (the engine's core's
    ``Worker``: the engine's caller passes it, knowing which core it used).
    ``run(worker)`` is what each thread runs (by default the engine's worker
    loop); the Runner passes its own, which makes and destroys the worker's
    resource around the loop.
    """

    def __init__(
        self,
        engine: CoreEngine,
        name_prefix: str,
        run: Callable[[CoreWorker], object] | None = None,
        *,
        new_worker: Callable[[], CoreWorker],
        exit_timeout: float | None = None,
    ) -> None:
        self.engine = engine
        # None: interpreter exit waits for the accepted work (the stdlib's
        # rule). A number: it waits that long at most, so the threads are
        # daemon threads, which the interpreter does not wait for.
        self.exit_timeout = exit_timeout
        self.name_prefix = name_prefix or f"conexe-{next(_counter)}"
        self._run = run if run is not None else engine.worker_loop
        self._lock = threading.Lock()
        self._gone = threading.Condition(self._lock)  # a thread left
        self._threads: dict[threading.Thread, Any] = {}
        self._seq = itertools.count()
        self._new_worker = new_worker
        with _live_lock:
            _live.add(self)

    def spawn_one(self) -> None:
        """Start one thread; the engine has already counted it (lazy spawn)."""
        worker = self._new_worker()
        t = threading.Thread(
            target=self._thread_main,
            args=(worker,),
            name=f"{self.name_prefix}_{next(self._seq)}",
            **_empty_context_option(),
        )
        if self.exit_timeout is not None:
            t.daemon = True
        with self._lock:
            self._threads[t] = worker
        try:
            t.start()
        except BaseException:
            with self._lock:
                self._threads.pop(t, None)
            raise

    def start(self, n: int) -> None:
        """Start ``n`` threads now (counting them in the engine first)."""
        for _ in range(n):
            self.engine.add_workers(1)
            try:
                self.spawn_one()
            except BaseException:
                self.engine.worker_started_failed()
                raise

    def _thread_main(self, worker: CoreWorker) -> None:
        try:
            self._run(worker)
        finally:
            with self._lock:
                self._threads.pop(threading.current_thread(), None)
                self._gone.notify_all()

    def workers(self) -> list[Any]:
        with self._lock:
            return list(self._threads.values())

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    # ``executor._threads`` is this object; code written against
    # ThreadPoolExecutor's set of threads (``len(ex._threads)``, ``for t in
    # ex._threads: t.join()``, ``if ex._threads``) sees the live worker threads.
    def __iter__(self) -> Iterator[threading.Thread]:
        return iter(self.threads())

    def __len__(self) -> int:
        with self._lock:
            return len(self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every thread to leave its loop; False on timeout.

        Interruptible with Ctrl-C, and safely so: it waits on its own
        Condition, not in ``Thread.join()``, which on 3.11 marks a thread
        that is still running as stopped when a KeyboardInterrupt cuts the
        join short (bpo-45274), so a later join would return too early.
        """
        me = threading.current_thread()
        with self._lock:
            if not self._gone.wait_for(
                lambda: not any(t is not me for t in self._threads), timeout
            ):
                return False
        return True

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._gone = threading.Condition(self._lock)
        self._threads = {}
        self.engine.after_fork()
