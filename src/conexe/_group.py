"""Task groups: submit together, wait together, and end together by a policy.

>>> import conexe
>>> with conexe.ConcurrentExecutor(2) as ex:
...     with ex.group() as g:
...         for i in range(3):
...             _ = g.submit(pow, i, 2)
...     g.results()
[0, 1, 4]

A group ends when its policy says so: every task (the default), the first
failure (``fail_fast=True``), ``first=n`` successes (``first=1``: the first
to succeed wins), or its ``timeout``. Once it has ended, the tasks that
have not started are cancelled, and a later ``submit`` returns a cancelled
future instead of queueing (a fail-fast loop of submits never raises
half-way: the real errors are raised together when the block is left).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import wait as _wait
from typing import Any, ParamSpec, TypeVar

from ._task import check_timeout

__all__ = ["TaskGroup", "cancel_not_started", "cancel_or_ask_to_stop"]

P = ParamSpec("P")
T = TypeVar("T")


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


def cancel_or_ask_to_stop(fut: Future[Any]) -> bool:
    """Cancel ``fut`` if its task has not started (True); if it is running,
    ask it to stop (a conexe future's ``request_cancel``: the task sees it
    through ``conexe.current_task()``) and return False."""
    if cancel_not_started(fut):
        return True
    request = getattr(fut, "request_cancel", None)
    if request is not None:
        request()
    return False


def _cancelled_future() -> Future[Any]:
    """A future cancelled before it was queued: done, for every waiter."""
    fut: Future[Any] = Future()
    fut.cancel()
    fut.set_running_or_notify_cancel()
    return fut


def _check_first(first: object) -> int | None:
    if first is None:
        return None
    if isinstance(first, bool) or not isinstance(first, int):
        raise TypeError(f"first must be an int, not {type(first).__name__}")
    if first < 1:
        raise ValueError(f"first must be >= 1, got {first}")
    return first


class TaskGroup:
    """Futures submitted through one group, made by ``executor.group()``.

    * default: the group waits for every task; leaving the ``with`` block
      raises an ExceptionGroup of the failures, if any.
    * ``fail_fast=True``: the first task that raises ends the group (below);
      leaving the block waits for the tasks still running, then raises the
      ExceptionGroup of the real failures.
    * ``first=n``: the group ends once ``n`` tasks have succeeded, and
      leaving the block returns then, without waiting for the tasks still
      running (they finish in the background; their futures keep their
      outcome). If every task ends with fewer successes, leaving the block
      raises the ExceptionGroup of the failures. :meth:`successes` gives the
      results in the order the tasks succeeded.
    * ``timeout``: seconds from the group's creation. Past it, leaving the
      block ends the group and raises TimeoutError; what succeeded by then
      stays readable (:meth:`successes`, :attr:`futures`).

    Ending the group cancels its tasks that have not started and asks the
    running ones to stop (``conexe.current_task().cancel_requested`` turns
    true in them; a task that does not look runs on). A ``submit`` after the end returns a cancelled
    future (kept in :attr:`futures`), so a loop of submits never raises
    half-way::

        >>> import conexe
        >>> def fetch(i):
        ...     if i == 0:
        ...         raise ValueError("the first fetch failed")
        ...     return i
        >>> with conexe.ConcurrentExecutor(1) as ex:
        ...     try:
        ...         with ex.group(fail_fast=True) as g:
        ...             _ = g.submit(fetch, 0).exception()  # failed: the group ends
        ...             late = g.submit(fetch, 1)
        ...     except ExceptionGroup as eg:
        ...         print(repr(eg.exceptions[0]), late.cancelled())
        ValueError('the first fetch failed') True
    """

    def __init__(
        self,
        submit: Callable[..., Future[Any]],
        fail_fast: bool = False,
        *,
        first: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self.first = _check_first(first)
        if fail_fast and self.first is not None:
            raise ValueError("fail_fast and first are exclusive: choose one way to end the group")
        self.timeout = None if timeout is None else check_timeout(timeout, "timeout")
        self.fail_fast = bool(fail_fast)
        self._submit = submit
        self._deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self._futures: list[Future[Any]] = []
        self._successes: list[Any] = []  # results, in the order the tasks succeeded
        self._ended = 0  # tasks whose future is done
        self._over = False  # the policy or the timeout ended the group
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Submit ``fn(*args, **kwargs)`` to the executor as part of this
        group; once the group has ended, a cancelled future instead."""
        with self._lock:
            over = self._over
        if over:
            fut: Future[Any] = _cancelled_future()
            with self._lock:
                self._futures.append(fut)
                self._ended += 1
            return fut
        fut = self._submit(fn, *args, **kwargs)
        with self._lock:
            self._futures.append(fut)
            over = self._over
        if over:  # the group ended after the check above
            cancel_or_ask_to_stop(fut)
        # The core completes a task's future (running this callback) before
        # its worker takes another task, so no sibling queued behind the
        # task that ends the group starts on that worker.
        fut.add_done_callback(self._on_done)
        return fut

    def _on_done(self, fut: Future[Any]) -> None:
        error = None if fut.cancelled() else fut.exception()
        succeeded = not fut.cancelled() and error is None
        with self._lock:
            self._ended += 1
            if succeeded:
                self._successes.append(fut.result())
            ends = (self.fail_fast and error is not None) or (
                self.first is not None and len(self._successes) >= self.first
            )
            pending = self._end_locked() if ends else []
            self._changed.notify_all()
        for other in pending:
            cancel_or_ask_to_stop(other)

    def _end_locked(self) -> list[Future[Any]]:
        """Mark the group over; returns its futures, to cancel (unlocked)."""
        if self._over:
            return []
        self._over = True
        return list(self._futures)

    def _settled_locked(self) -> bool:
        """Whether leaving the block may return now."""
        if self.first is not None and len(self._successes) >= self.first:
            return True
        return self._ended >= len(self._futures)

    def _wait_settled(self) -> bool:
        """Wait until the group is settled; False once its deadline passed."""
        with self._lock:
            while not self._settled_locked():
                if self._deadline is None:
                    self._changed.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    @property
    def ended(self) -> bool:
        """Whether the group's policy or timeout has ended it (a task's
        failure with ``fail_fast``, ``first`` successes, the timeout): its
        tasks not started then are cancelled, and so is a later submit."""
        with self._lock:
            return self._over

    @property
    def futures(self) -> list[Future[Any]]:
        """The group's futures, in submission order."""
        with self._lock:
            return list(self._futures)

    def successes(self) -> list[Any]:
        """The results of the tasks that succeeded so far, in the order they
        succeeded (with ``first=n``: the first ``n`` to succeed, and any that
        finished after)."""
        with self._lock:
            return list(self._successes)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every task of the group is done; False on timeout."""
        _, not_done = _wait(self.futures, timeout=timeout)
        return not not_done

    def cancel(self) -> int:
        """Cancel the tasks that have not started and ask the running ones
        to stop; returns how many were cancelled."""
        return sum([cancel_or_ask_to_stop(f) for f in self.futures])

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
        if exc is not None:
            # The caller's own error: stop what the group no longer needs,
            # wait for what runs, and let that error through.
            if self.fail_fast or self.first is not None:
                self.cancel()
            self.wait()
            return
        if not self._wait_settled():
            with self._lock:
                pending = self._end_locked()
                done, total = self._ended, len(self._futures)
            for fut in pending:
                cancel_or_ask_to_stop(fut)
            raise TimeoutError(
                f"the group's timeout ({self.timeout} s) passed with {done} of {total} tasks done"
            )
        errors = self.errors()
        total = len(self.futures)
        if self.first is not None:
            got = len(self.successes())
            if got >= self.first:
                return
            msg = f"the group needed {self.first} successes and got {got} of {total} tasks"
            if not errors:
                raise CancelledError(msg)
            raise _group_of(f"{msg}; {len(errors)} failed", errors)
        if errors:
            raise _group_of(f"{len(errors)} of {total} tasks in the group failed", errors)

    def __len__(self) -> int:
        with self._lock:
            return len(self._futures)


def _group_of(msg: str, errors: list[BaseException]) -> BaseExceptionGroup[BaseException]:
    """An ExceptionGroup when every error is an Exception, as asyncio's
    TaskGroup raises; a BaseExceptionGroup otherwise."""
    if all(isinstance(e, Exception) for e in errors):
        return ExceptionGroup(msg, errors)  # type: ignore[type-var]
    return BaseExceptionGroup(msg, errors)
