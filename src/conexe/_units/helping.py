"""The twin of helping.pxi: helping waits. A task that waits for a task of
its own executor that no worker has taken yet runs that task itself,
inline, instead of blocking its worker; so recursive fan-out completes on a
pool of any size, where the stdlib pool deadlocks once every worker waits
for work nobody can take. Three waits help:

* ``result()``/``exception()`` run the task waited for (:func:`help_with`);
* ``concurrent.futures.wait()``/``as_completed()`` run the tasks they wait
  for, one at a time until the waiter is satisfied: the conexe futures they
  install a waiter on swap its event for a :class:`HelpingEvent`;
* a submit that finds a bounded queue full (``on_full="block"``) runs the
  queued task a worker would take next, until there is room.

A task taken out of order leaves its lane entry behind, marked ``_helped``:
the worker that pops it skips it, uncounted. A keyed task is run only when
it is in a lane (its key's turn). Not helped: a Runner's tasks (they need a
worker's resource and may be retried), and tasks of another executor.
"""

from __future__ import annotations

import threading
from concurrent.futures._base import PENDING
from typing import Any

from .._contract import START_DEADLINE_MESSAGE
from .future import Future
from .primitives import CLAIMED, COMPLETED, EXPIRED_NOW
from .running import _here, task_ran
from .workers import TaskEnd, Worker, run_task


def _helping_engine(fut: Future[Any]) -> tuple[Any, Worker | None]:
    """The engine the calling worker may help with ``fut`` on, and the
    worker: its own, when ``fut`` was queued there and a worker there may
    run any task; ``(None, None)`` otherwise."""
    worker: Worker | None = getattr(_here, "worker", None)
    if worker is None:
        return None, None
    engine = worker._engine
    if engine is None or fut._owner is not engine or engine._pass_resource:
        return None, None
    return engine, worker


def _its_turn(fut: Future[Any]) -> bool:
    """Whether queued ``fut`` is in a lane, where a worker takes it next:
    a keyed task waiting behind its key's tasks in flight is not, and a
    paced key's task keeps its pace."""
    chain = fut._chain
    return chain is None or (chain.interval == 0.0 and fut not in chain.waiting)


def _run_here(engine: Any, worker: Worker, fut: Future[Any], parent: Any) -> None:
    """Run ``fut`` (claimed, counted running, the worker's current task)
    on this thread as its worker would, count how it ended, complete its
    future, and make ``parent`` the worker's current task again."""
    end = TaskEnd()
    keyed = fut._chain is not None
    try:
        run_task(engine, fut, worker, end)
    finally:
        engine._mutex.acquire()
        worker._current = parent  # under the lock: close() reads it
        task_ran(fut)
        done = engine._end_task_locked(fut, end)
        if keyed:
            engine._unlock_and_wake_helper()  # the key's next task is queued
        else:
            engine._mutex.release()
    if done:
        try:
            fut._finish(end.outcome == COMPLETED, end.value)
        finally:
            end.value = None


def help_with(fut: Future[Any]) -> bool:
    """Run ``fut``'s task here if the caller is a worker about to wait for
    it, it belongs to that worker's engine, and no worker has taken it.
    Returns whether it ran here (its future is then done)."""
    engine, worker = _helping_engine(fut)
    if engine is None or worker is None:
        return False
    engine._mutex.acquire()
    if fut._helped or fut._state != PENDING or not _its_turn(fut):
        engine._mutex.release()
        return False
    claim = fut._claim(True)
    if claim not in (CLAIMED, EXPIRED_NOW):
        engine._mutex.release()  # cancelled just now: its worker counts it
        return False
    fut._helped = True
    engine._queued -= 1
    if claim == EXPIRED_NOW:
        engine._failed += 1
        keyed = fut._chain is not None
        engine._advance_chain_locked(fut)
        if keyed:
            engine._unlock_and_wake_helper()
        else:
            engine._mutex.release()
        fut._fail_started(TimeoutError(START_DEADLINE_MESSAGE))
        return True
    engine._running += 1
    parent, worker._current = worker._current, fut  # under the lock: close() reads it
    engine._mutex.release()
    _run_here(engine, worker, fut, parent)
    return True


def help_while_full_locked(engine: Any) -> bool:
    """The queue is full and the caller would wait for room: if it is one
    of ``engine``'s workers (a task submitting more), it runs the task a
    worker would take next instead, which makes room. Returns whether it
    ran one. The engine lock is held on entry and on return."""
    worker: Worker | None = getattr(_here, "worker", None)
    if worker is None or worker._engine is not engine or engine._pass_resource:
        return False
    item, expired = engine._next_task_locked(worker, False, False)
    if item is None:
        return False
    if not expired:
        parent, worker._current = worker._current, item  # under the lock: close() reads it
    engine._mutex.release()
    try:
        if expired:
            item._fail_started(TimeoutError(START_DEADLINE_MESSAGE))
        else:
            _run_here(engine, worker, item, parent)
    finally:
        engine._mutex.acquire()
    return True


class HelpingEvent(threading.Event):
    """The event of a ``concurrent.futures`` waiter installed, on one of
    an executor's workers, on that executor's futures: ``wait()`` runs the
    tasks no worker has taken, one at a time, until the waiter is set (so
    ``wait(ALL_COMPLETED)`` runs them all, ``as_completed()`` one per
    step), then waits for the rest like any event. A task run here runs to
    its end: a wait with a timeout may return that much later."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[Future[Any]] = []

    def wait(self, timeout: float | None = None) -> bool:
        futures = self.futures
        while futures and not self.is_set():
            help_with(futures.pop(0))
        return super().wait(timeout)


def adopt_waiter(waiter: Any, fut: Future[Any]) -> None:
    """``waiter`` was installed on ``fut`` (see future.py's ``_Waiters``):
    if the caller is a worker that may help with ``fut``, the waiter's
    event is a HelpingEvent that knows ``fut``."""
    if _helping_engine(fut)[0] is None or fut._state != PENDING:
        return
    event = getattr(waiter, "event", None)
    if type(event) is threading.Event and not event.is_set():
        event = HelpingEvent()
        waiter.event = event
    if type(event) is HelpingEvent:
        event.futures.append(fut)
