"""Task groups: submit together, wait together, optionally fail fast.

>>> import conexe
>>> with conexe.ConcurrentExecutor(2) as ex:
...     with ex.group() as g:
...         for i in range(3):
...             _ = g.submit(pow, i, 2)
...     g.results()
[0, 1, 4]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import wait as _wait
from typing import Any

__all__ = ["TaskGroup", "cancel_not_started"]


def cancel_not_started(fut: Future[Any]) -> bool:
    """``fut.cancel()`` with concurrent.futures' meaning even for a conexe
    future that asyncio has inside its loop, where cancel() would also
    abandon a running task (docs/asyncio.md).

        >>> f = Future(); f.set_running_or_notify_cancel()
        True
        >>> cancel_not_started(f)
        False
    """
    cancel = getattr(fut, "_cancel_if_pending", None)
    return bool(cancel()) if cancel is not None else fut.cancel()


class TaskGroup:
    """Futures submitted through one group, made by ``executor.group()``.

    With ``fail_fast=True`` the first task that raises cancels every task of
    the group that has not started. Leaving the ``with`` block waits for all
    of them and raises an ExceptionGroup of the failures, if any.
    """

    def __init__(self, submit: Callable[..., Future[Any]], fail_fast: bool = False) -> None:
        self._submit = submit
        self.fail_fast = fail_fast
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()
        self._failed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Submit ``fn(*args, **kwargs)`` to the executor as part of this group."""
        with self._lock:
            if self._failed and self.fail_fast:
                raise RuntimeError(
                    "cannot submit to a fail-fast group after one of its tasks failed"
                )
        fut = self._submit(fn, *args, **kwargs)
        with self._lock:
            self._futures.append(fut)
            failed_meanwhile = self._failed
        if self.fail_fast:
            if failed_meanwhile:  # a sibling failed after the check above
                cancel_not_started(fut)
            # The core completes a task's future (running this callback)
            # before its worker takes another task, so no sibling queued
            # behind the failure starts on that worker.
            fut.add_done_callback(self._on_done)
        return fut

    def _on_done(self, fut: Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        self._fail()

    def _fail(self) -> None:
        with self._lock:
            self._failed = True
            pending = list(self._futures)
        for other in pending:
            cancel_not_started(other)

    @property
    def futures(self) -> list[Future[Any]]:
        """The group's futures, in submission order."""
        with self._lock:
            return list(self._futures)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every task of the group is done; False on timeout."""
        _, not_done = _wait(self.futures, timeout=timeout)
        return not not_done

    def cancel(self) -> int:
        """Cancel the tasks that have not started; returns how many."""
        return sum(1 for f in self.futures if cancel_not_started(f))

    def results(self, timeout: float | None = None) -> list[Any]:
        """Every task's result in submission order; raises the first error
        (or CancelledError) met in that order."""
        if not self.wait(timeout):
            raise TimeoutError("the group's tasks did not finish in time")
        return [f.result() for f in self.futures]

    def errors(self) -> list[BaseException]:
        """The exceptions of the tasks that failed (cancelled ones excluded)."""
        out = []
        for f in self.futures:
            if f.done() and not f.cancelled():
                exc = f.exception()
                if exc is not None:
                    out.append(exc)
        return out

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is not None and self.fail_fast:
            self.cancel()
        self.wait()
        if exc is not None:
            return
        errors = self.errors()
        if errors:
            msg = f"{len(errors)} of {len(self.futures)} tasks in the group failed"
            if all(isinstance(e, Exception) for e in errors):
                raise ExceptionGroup(msg, errors)  # type: ignore[type-var]
            raise BaseExceptionGroup(msg, errors)

    def __len__(self) -> int:
        with self._lock:
            return len(self._futures)


_ = CancelledError  # re-exported name users look for next to groups
