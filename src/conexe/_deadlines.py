"""The process's timer: start deadlines, and the times paced keys wait for.

Workers also check a start deadline when they take a task, but a worker may
not free up for a long time; one daemon thread per process fails overdue
queued tasks on time, so ``result()`` raises TimeoutError at the deadline and
not whenever a worker gets to it. The same thread tells an engine when a
rate-limited key's next task may start (:func:`call_at`), so no thread
sleeps per key. It holds only weak references, so a finished task's result
(or a dropped executor) is not kept alive until its time::

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
import logging
import os
import threading
import time
import weakref
from typing import Protocol

__all__ = ["Expirable", "call_at", "watch"]


class Expirable(Protocol):
    """What a deadline needs of a future: a core future's ``_expire()``,
    which fails it with TimeoutError if it is still queued."""

    def _expire(self) -> bool: ...


_log = logging.getLogger("conexe")
_cond = threading.Condition(threading.Lock())
_heap: list[tuple[float, int, weakref.ref[object], str]] = []
_seq = itertools.count()
_thread: threading.Thread | None = None


def watch(future: Expirable, deadline: float) -> None:
    """Expire ``future`` at ``deadline`` (a ``time.monotonic()`` value) if it
    is still queued then."""
    call_at(deadline, future, "_expire")


def call_at(when: float, target: object, method: str) -> None:
    """Call ``target.method()`` on the timer's thread at ``when`` (a
    ``time.monotonic()`` value), unless ``target`` is gone by then. The
    method must be quick and must not raise; what it raises is logged.

        >>> import threading, time
        >>> class Bell:
        ...     rang = threading.Event()
        ...     def ring(self):
        ...         self.rang.set()
        >>> bell = Bell()
        >>> call_at(time.monotonic() + 0.01, bell, "ring")
        >>> bell.rang.wait(5)
        True
    """
    global _thread
    with _cond:
        heapq.heappush(_heap, (when, next(_seq), weakref.ref(target), method))
        if _thread is None:
            _thread = threading.Thread(target=_reap, name="conexe-deadlines", daemon=True)
            _thread.start()
        elif _heap[0][0] == when:
            _cond.notify()


def _reap() -> None:
    while True:
        with _cond:
            while not _heap or _heap[0][0] > time.monotonic():
                _cond.wait(None if not _heap else _heap[0][0] - time.monotonic())
            due = []
            now = time.monotonic()
            while _heap and _heap[0][0] <= now:
                _, _, ref, method = heapq.heappop(_heap)
                due.append((ref, method))
        for ref, method in due:
            target = ref()
            if target is not None:
                try:
                    getattr(target, method)()
                except Exception:
                    _log.exception("conexe's timer: %s() raised", method)


def _after_fork_in_child() -> None:
    global _cond, _thread
    _cond = threading.Condition(threading.Lock())
    _heap.clear()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
