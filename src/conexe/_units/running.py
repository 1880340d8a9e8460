"""The twin of running.pxi: the task running in this thread, as the task
itself sees it (``conexe.current_task()``): whether it was asked to stop
(``Future.request_cancel``) and its deadline. The tasks it submits inherit
both, and a request to stop reaches them too. A worker thread registers
itself once (a thread-local); running a task is then one attribute store
on its Worker, and a submit reads one thread-local.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine
    from .future import Future
    from .workers import Worker

# A task's list of the tasks it submitted drops the ended ones each time it
# reaches a power of two from this size on, so a long task that submits
# without end holds only those still pending or running.
CHILDREN_PRUNED_FROM = 64

_here = threading.local()


def worker_here(worker: Worker | None) -> None:
    """The calling thread runs ``worker``'s loop (None: no longer)."""
    _here.worker = worker


def worker_gone() -> None:
    _here.worker = None


def running_here() -> Future[Any] | None:
    """The future of the task this thread's worker runs now, or None."""
    worker = getattr(_here, "worker", None)
    return None if worker is None else worker._current


def adopt_here(child: Future[Any]) -> None:
    """``child`` is being submitted: if a task runs in this thread, it is
    that task's child (see adopt)."""
    parent = running_here()
    if parent is not None:
        adopt(parent, child)


def adopt(parent: Future[Any], child: Future[Any]) -> None:
    """``child`` was submitted by ``parent``'s task while it ran: it gets
    the parent's deadline, is asked to stop from the start if the parent
    was, and is asked when the parent is (request_cancel)."""
    child._run_deadline = parent._run_deadline
    if parent._stop_asked:
        child._stop_asked = True
    with parent._condition:  # request_cancel reads it from other threads
        kids = parent._children
        if kids is None:
            kids = parent._children = []
    n = len(kids)
    if n >= CHILDREN_PRUNED_FROM and (n & (n - 1)) == 0:
        kids[:] = [k for k in kids if not k.done()]
    kids.append(child)


def task_ran(fut: Future[Any]) -> None:
    """Its task has returned: no stop request reaches further from it."""
    if fut._children is None:  # it submitted nothing (only its thread sets it)
        return
    with fut._condition:
        fut._children = None


def running_tasks_locked(engine: Engine) -> list[Future[Any]]:
    """The futures of the tasks the engine's workers run now."""
    return [w._current for w in engine._live if w._current is not None]


def set_run_deadline(fut: Future[Any], deadline: float) -> None:
    """The task's own deadline (``Task(timeout=...)``), or its parent's if
    that comes first."""
    if deadline and (not fut._run_deadline or deadline < fut._run_deadline):
        fut._run_deadline = deadline


def running_future() -> Future[Any] | None:
    """The future of the task running in this thread, or None outside a
    conexe worker (``conexe.current_task()`` wraps it)."""
    return running_here()
