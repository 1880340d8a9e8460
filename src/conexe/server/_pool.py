"""The one place the service touches an executor: a :class:`TaskPool` runs
tasks named by a key, refusing a key that is already queued or running.

It is a thin adapter over ``conexe.KeyedExecutor.submit_unique`` (the task
name is the key), so the executor's own dispatch map answers "is this name
pending or running?" and the service never keeps a second copy of that truth.

    >>> pool = TaskPool(2, max_queue_size=10)
    >>> pool.submit_unique("a", sum, [1, 2]).result()
    3
    >>> pool.shutdown()
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
from collections.abc import Callable
from typing import Any

import conexe

__all__ = ["QueueFull", "TaskPool"]

QueueFull = conexe.QueueFull


class TaskPool:
    """``max_workers`` threads and at most ``max_queue_size`` queued tasks
    (0: unbounded); a full queue raises :class:`conexe.QueueFull`, never blocks."""

    def __init__(
        self,
        max_workers: int,
        max_queue_size: int,
        *,
        executor_class: type[conexe.KeyedExecutor] | None = None,
    ) -> None:
        keyed = executor_class or conexe.KeyedExecutor
        self._ex: conexe.KeyedExecutor = keyed(max_workers, max_queue_size=max_queue_size)
        # Which core runs the tasks ("c" or "py"): tests bind either one.
        self.core: str = keyed._core.IMPLEMENTATION

    def submit_unique(
        self, key: str, fn: Callable[..., Any], /, *args: Any
    ) -> cf.Future[Any] | None:
        """Queue ``fn(*args)`` under ``key``; None if ``key`` is queued or
        running. Raises QueueFull when the queue has no room."""
        return self._ex.submit_unique(key, fn, *args)

    def stats(self) -> dict[str, int]:
        """The executor's counters, as a plain dict (for JSON)."""
        return dataclasses.asdict(self._ex.stats())

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._ex.shutdown(wait=wait, cancel_futures=cancel_futures)
