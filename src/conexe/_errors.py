"""Exceptions shared by both cores and every conexe API.

They subclass the stdlib exceptions a user would already catch, so code
written for :mod:`concurrent.futures` keeps working::

    >>> import conexe, concurrent.futures
    >>> issubclass(conexe.BrokenExecutor, concurrent.futures.BrokenExecutor)
    True
"""

from __future__ import annotations

from concurrent.futures import CancelledError
from concurrent.futures.thread import BrokenThreadPool

__all__ = ["BrokenExecutor", "MaxRetriesExceeded", "QueueFull", "TaskCancelled"]


class QueueFull(Exception):
    """The executor's bounded queue had no room for the task.

    Raised by ``submit`` (with the default ``on_full="raise"`` policy),
    ``enqueue_task`` and a blocking submit whose ``block_timeout`` ran out::

        >>> ex = conexe.ConcurrentExecutor(1, max_queue_size=1)  # doctest: +SKIP
    """


class BrokenExecutor(BrokenThreadPool):
    """The pool can no longer run tasks (an ``initializer`` failed, or the
    process forked). A subclass of ``concurrent.futures.thread.BrokenThreadPool``
    so ``except BrokenExecutor`` written for ``ThreadPoolExecutor`` still works.
    """


class TaskCancelled(CancelledError):
    """What ``conexe.current_task().check()`` raises in a task that was asked
    to stop. A ``concurrent.futures.CancelledError``, so code that treats
    cancellation as such keeps doing so; raised out of the task, it fails
    the task's future with it (a running future can't become cancelled)."""


class MaxRetriesExceeded(Exception):
    """A Runner task failed on a broken resource more times than
    ``max_retries`` allows; ``__cause__`` is the last error."""
