"""Start deadlines: fail a task that is still queued when its deadline comes.

Workers also check the deadline when they take a task, but a worker may not
free up for a long time; one daemon thread per process fails overdue queued
tasks on time, so ``result()`` raises TimeoutError at the deadline and not
whenever a worker gets to it. It holds only weak references, so a finished
task's result is not kept alive until its deadline::

    >>> import time
    >>> from conexe._impl import core
    >>> f = core.Future()
    >>> watch(f, time.monotonic() + 0.01)
    >>> f.exception(timeout=5)
    TimeoutError('task did not start before its start deadline')
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
import weakref
from typing import Protocol

__all__ = ["Expirable", "watch"]


class Expirable(Protocol):
    """What a deadline needs of a future: a core future's ``_expire()``,
    which fails it with TimeoutError if it is still queued."""

    def _expire(self) -> bool: ...


_cond = threading.Condition(threading.Lock())
_heap: list[tuple[float, int, weakref.ref[Expirable]]] = []
_seq = itertools.count()
_thread: threading.Thread | None = None


def watch(future: Expirable, deadline: float) -> None:
    """Expire ``future`` at ``deadline`` (a ``time.monotonic()`` value) if it
    is still queued then."""
    global _thread
    with _cond:
        heapq.heappush(_heap, (deadline, next(_seq), weakref.ref(future)))
        if _thread is None:
            _thread = threading.Thread(target=_reap, name="conexe-deadlines", daemon=True)
            _thread.start()
        elif _heap[0][0] == deadline:
            _cond.notify()


def _reap() -> None:
    while True:
        with _cond:
            while not _heap or _heap[0][0] > time.monotonic():
                _cond.wait(None if not _heap else _heap[0][0] - time.monotonic())
            due = []
            now = time.monotonic()
            while _heap and _heap[0][0] <= now:
                due.append(heapq.heappop(_heap)[2])
        for ref in due:
            fut = ref()
            if fut is not None:
                fut._expire()


def _after_fork_in_child() -> None:
    global _cond, _thread
    _cond = threading.Condition(threading.Lock())
    _heap.clear()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
