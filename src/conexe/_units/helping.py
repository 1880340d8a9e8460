"""The twin of helping.pxi: helping waits. A task that waits (``result()``,
``exception()``) for a task of its own executor that no worker has taken
yet runs that task itself, inline, instead of blocking its worker; so
recursive fan-out completes on a pool of any size, where the stdlib pool
deadlocks once every worker waits for work nobody can take. The task taken
out of order leaves its lane entry behind, marked ``_helped``: the worker
that pops it skips it, uncounted.

Not helped: keyed tasks (they start in their key's order), a Runner's (they
need a worker's resource and may be retried), tasks of another executor,
and waits through ``concurrent.futures.wait()``/``as_completed()``.
"""

from __future__ import annotations

from concurrent.futures._base import PENDING
from typing import Any

from .._contract import START_DEADLINE_MESSAGE
from .future import Future
from .primitives import CLAIMED, COMPLETED, EXPIRED_NOW
from .running import _here, task_ran
from .workers import TaskEnd, Worker, run_task


def help_with(fut: Future[Any]) -> bool:
    """Run ``fut``'s task here if the caller is a worker about to wait for
    it, it belongs to that worker's engine, and no worker has taken it.
    Returns whether it ran here (its future is then done)."""
    worker: Worker | None = getattr(_here, "worker", None)
    if worker is None:
        return False
    engine = worker._engine
    if (
        engine is None
        or fut._owner is not engine
        or fut._chain is not None
        or engine._pass_resource
    ):
        return False
    with engine._mutex:
        if fut._helped or fut._state != PENDING:
            return False
        claim = fut._claim(True)
        if claim not in (CLAIMED, EXPIRED_NOW):
            return False  # cancelled just now: its worker counts it
        fut._helped = True
        engine._queued -= 1
        if claim == EXPIRED_NOW:
            engine._failed += 1
        else:
            engine._running += 1
            parent, worker._current = worker._current, fut  # close() reads it
    if claim == EXPIRED_NOW:
        fut._fail_started(TimeoutError(START_DEADLINE_MESSAGE))
        return True
    end = TaskEnd()
    try:
        run_task(engine, fut, worker, end)
    finally:
        with engine._mutex:
            worker._current = parent
            task_ran(fut)
            done = engine._end_task_locked(fut, end)
    if done:
        try:
            fut._finish(end.outcome == COMPLETED, end.value)
        finally:
            end.value = None
    return True
