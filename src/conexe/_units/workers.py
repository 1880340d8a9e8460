"""The twin of workers.pxi: :class:`Worker`, and how one task runs and ends."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures._base import (
    PENDING,
    RUNNING,
)
from typing import TYPE_CHECKING, Any

from .._contract import (
    CHECK_HEALTH_RAISED_MESSAGE,
    MAX_RETRIES_MESSAGE,
    Outcome,
)
from .._errors import MaxRetriesExceeded
from .future import Future
from .primitives import CANCELLED_UNSTARTED, COMPLETED, FAILED, RETRIED, log

if TYPE_CHECKING:
    from .engine import Engine


class Worker:
    """One worker thread's handle, passed to :meth:`Engine.worker_loop`.

    ``resource`` is what a Runner task receives; ``retire`` asks the worker
    to leave after its current task::

        >>> w = Worker(resource="db-connection")
        >>> w.resource
        'db-connection'
    """

    __slots__ = ("_park", "parked", "retire", "resource", "_current", "_engine", "__weakref__")

    def __init__(self, resource: Any = None) -> None:
        self._park = threading.Lock()
        self._park.acquire()
        self.parked = False
        self.retire = False
        self.resource = resource
        self._current: Future[Any] | None = None  # the task it runs now (running.py)
        self._engine: Any = None  # the Engine whose loop it runs (helping.py)


class TaskEnd:
    """How the task a worker just ran ended, filled in by Engine._run(): one
    per worker loop, reused for every task it runs."""

    __slots__ = ("outcome", "value", "replace", "run_ns")

    def __init__(self) -> None:
        self.outcome: int = Outcome.NONE
        self.value: Any = None  # the result or exception for its future
        self.replace = False  # the worker's resource is broken: leave
        self.run_ns = -1  # its run time, not yet recorded (-1: none)

    def set(self, outcome: int, value: Any, replace: bool) -> None:
        self.outcome = outcome
        self.value = value
        self.replace = replace


# -- workers on their way ---------------------------------------------------------
# ``Engine._waking`` counts the workers on their way to the lanes: woken from
# their park, starting, or completing the future of the task they just ran.
# A push wakes or starts a worker only while the queued tasks outnumber them
# (Engine._pick_helper_locked). Every count up is matched by one count down
# when that worker reaches the lanes; these functions are the only places it
# changes (with the engine lock held), besides after_fork's reset.


def unpark_locked(engine: Engine, worker: Worker) -> None:
    """``worker``, just taken off the parked list, is on its way; the caller
    releases its park lock once the engine lock is released."""
    worker.parked = False
    engine._waking += 1


def threads_starting_locked(engine: Engine, n: int) -> None:
    """``n`` new worker threads are about to start: counted as workers, and
    on their way until they enter the worker loop."""
    engine._workers += n
    engine._waking += n


def thread_start_failed_locked(engine: Engine) -> None:
    """A thread counted by threads_starting_locked() could not start."""
    engine._workers -= 1
    engine._waking -= 1


def set_off_locked(engine: Engine) -> None:
    """An awake worker counts as on its way: it completes the future of the
    task it ran."""
    engine._waking += 1


def arrived_locked(engine: Engine) -> None:
    """A worker on its way has reached the lanes (entered the worker loop,
    woke from its park, completed a future)."""
    engine._waking -= 1


# -- parking, and idle reaping ----------------------------------------------------
def reaps_locked(engine: Engine) -> bool:
    """Whether an idle worker may leave now (idle reaping)."""
    return (
        bool(engine._idle_timeout) and engine._workers > engine._min_workers and not engine._closed
    )


def park_locked(engine: Engine, worker: Worker) -> None:
    """Sleep, the engine lock released, until someone wakes ``worker``;
    with an ``idle_timeout``, at most that long: then, unless it is
    needed to keep ``min_workers``, it is marked to retire."""
    engine._parked.append(worker)
    worker.parked = True
    reaping = reaps_locked(engine)
    engine._mutex.release()
    if reaping:
        woken = worker._park.acquire(timeout=engine._idle_timeout)
    else:
        woken = worker._park.acquire()
    engine._mutex.acquire()
    if not woken:
        if worker.parked:  # nobody woke it: idle for idle_timeout
            engine._parked.remove(worker)
            worker.parked = False
            worker.retire = reaps_locked(engine)
            return
        # Woken just as the wait timed out: take the wake-up it was sent.
        engine._mutex.release()
        worker._park.acquire()
        engine._mutex.acquire()
    arrived_locked(engine)


def run_task(engine: Engine, fut: Future[Any], worker: Worker, end: TaskEnd) -> None:
    """Run ``fut``'s task (no lock held) and say in ``end`` how it ended."""
    t0 = time.monotonic_ns() if engine._track_latency else 0
    fn, args, kwargs, ctx = fut._take_task()
    if fn is None:  # a cancel took the task after the claim (asyncio's)
        end.set(CANCELLED_UNSTARTED, None, False)
    else:
        try:
            if engine._pass_resource:
                args = (worker.resource,)
            given = ctx
            if ctx is None:  # "fresh" (see __init__)
                ctx = contextvars.Context()
            value = ctx.run(fn, *args, **(kwargs or {}))
        except BaseException as exc:
            del args, kwargs
            task_failed(engine, fut, exc, fn, given, end)
        else:
            end.set(COMPLETED, value, False)
            del value
    if t0:
        end.run_ns = time.monotonic_ns() - t0
    # The task's frame, kept by the traceback of an exception it raised
    # (or caught and returned, as run_chunk does), links back (f_back)
    # to this one, whose locals outlive it: leave ``fut`` (or ``end``,
    # which holds the exception) there and future -> exception ->
    # traceback -> frame -> future is a cycle only the cyclic GC frees
    # (the C core has no frame).
    del fut, end


def task_failed(
    engine: Engine, fut: Future[Any], exc: BaseException, fn: Any, ctx: Any, end: TaskEnd
) -> None:
    """The task raised ``exc``: a failure, or (Runner) a broken resource
    whose task is retried while it has tries left (``fn`` in the context
    it was given, ``ctx``: the same copy, or None for a fresh one)."""
    check = engine._check_health
    if check is None:
        return end.set(FAILED, exc, False)
    try:
        healthy = bool(check(exc))
    except Exception:
        log.exception(CHECK_HEALTH_RAISED_MESSAGE)
        healthy = False
    if healthy:
        return end.set(FAILED, exc, False)
    if fut._no_retry:
        return end.set(FAILED, exc, True)
    if fut._tries >= engine._max_retries:
        err = MaxRetriesExceeded(MAX_RETRIES_MESSAGE % (exc,))
        err.__cause__ = exc
        return end.set(FAILED, err, True)
    with fut._condition:
        if fut._state != RUNNING:  # cancelled by asyncio meanwhile: no retry
            return end.set(FAILED, exc, True)
        fut._state = PENDING
    fut._tries += 1
    fut._fn = fn
    fut._ctx = ctx
    return end.set(RETRIED, None, True)
