"""Pure-Python twin of :mod:`conexe._core`.

Same names, same behaviour, same error messages as the Cython core; it is
loaded when ``CONEXE_NO_EXTENSIONS=1`` is set or the extension can't be
imported (see :mod:`conexe._impl`). It is the readable reference for what the
C code does, and the test suite runs every behaviour test against both.

The pieces, bottom to top:

* :class:`Future` -- a :class:`concurrent.futures.Future` that also carries
  its task (function, arguments, priority, start deadline) until it runs, so
  a queued task costs one object.
* :class:`Engine` -- priority lanes (FIFO within a level, higher first), an
  optional bound on the number of queued tasks, counters, latency
  histograms, and the worker loop. Workers park on a private lock when there
  is nothing to do and are woken one at a time, only while queued tasks
  outnumber the workers already on their way.
* :class:`Worker` -- one worker thread's handle: its park lock, its resource
  (for the Runner) and its retire flag.

Example::

    >>> import threading
    >>> engine = Engine()
    >>> worker = Worker()
    >>> engine.add_workers(1)
    >>> t = threading.Thread(target=engine.worker_loop, args=(worker,))
    >>> t.start()
    >>> engine.submit(pow, (2, 10), None).result()
    1024
    >>> engine.close()
    0
    >>> t.join()
"""

from __future__ import annotations

import contextvars
import logging
import math
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future as _StdFuture
from concurrent.futures._base import (
    _STATE_TO_DESCRIPTION_MAP,
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import Any, TypeVar

from ._contract import (
    AFTER_FORK_MESSAGE,
    ASYNCIO_SEES_ENDED_AT_ONCE,
    CHECK_HEALTH_RAISED_MESSAGE,
    CLOSED_MESSAGE,
    CONTEXT_MESSAGE,
    CONTEXTS,
    EXIT_REPLACE,
    EXIT_RETIRE,
    EXIT_SHUTDOWN,
    HIST_BUCKETS,
    HIST_PER_OCTAVE,
    KEY_SHARDS,
    LATENCY_KIND_MESSAGE,
    MAX_RETRIES_MESSAGE,
    NO_WORKER_THREAD_MESSAGE,
    QUEUE_FULL_MESSAGE,
    START_DEADLINE_MESSAGE,
    Claim,
    Outcome,
    hist_percentiles,
    must_be_non_negative,
)
from ._errors import MaxRetriesExceeded, QueueFull
from ._options import check_callable, check_key
from ._signals import acquire_interruptibly, needs_slices, wait_interruptibly

__all__ = [
    "ChunkItemError",
    "Engine",
    "Future",
    "Worker",
    "IMPLEMENTATION",
    "executor_submit",
    "run_chunk",
]

IMPLEMENTATION = "py"

# The claim and outcome codes as module globals: read on every task, a global is
# cheaper than an enum attribute.
_SKIP_CANCELLED = Claim.SKIP_CANCELLED
_CLAIMED = Claim.CLAIMED
_SKIP_EXPIRED = Claim.SKIP_EXPIRED
_EXPIRED_NOW = Claim.EXPIRED_NOW
_COMPLETED = Outcome.COMPLETED
_FAILED = Outcome.FAILED
_RETRIED = Outcome.RETRIED
_CANCELLED_UNSTARTED = Outcome.CANCELLED_UNSTARTED

_LOGGER = logging.getLogger("concurrent.futures")
_log = logging.getLogger("conexe")


# -- asyncio ------------------------------------------------------------------
# A future submitted from inside a running event loop is bound to that loop
# (its ``_inbox``); one submitted outside any loop is bound to the first loop
# in whose thread asyncio looks at it (``wrap_future``, ``gather``, ``await``
# in a coroutine). Until asyncio looks at it, it is a plain
# concurrent.futures.Future. Once asyncio does (``isfuture()`` reads
# ``_asyncio_future_blocking``: ``loop.run_in_executor``, ``wrap_future``,
# ``await``, ``gather``...), it is, inside that loop, the asyncio future
# ``wrap_future`` would have made: asyncio's callbacks run in the loop,
# ``cancel()`` cancels even a running task (which runs on, its outcome
# dropped), and a cancelled one raises asyncio.CancelledError there. Seen
# from any other thread it stays a concurrent.futures.Future throughout.
#
# That is what lets ``loop.run_in_executor(executor, fn)`` skip
# ``_chain_future``: no second future, no pair of chained callbacks, and,
# instead of one ``call_soon_threadsafe`` (and self-pipe write) per task,
# one per batch: completions queue in the loop's inbox and a single
# callback in the loop drains them.
#
# What the loop sees changes only in the loop's thread, as with the future
# ``wrap_future`` would have made: a coroutine between two awaits must not
# see the future become done (asgiref's cancellation path reads done() right
# after an await and relies on it). So inside its loop, once asyncio has it,
# the future answers done()/cancelled()/result()/exception() from its *loop
# view* (the _AIO_LOOP_* flags), which only the loop's thread moves: when a
# drain reaches the future, or at once when the future ends in the loop's
# own thread. The concurrent state (``_state``) moves as before, for every
# other thread.

_AIO_CLAIMED = 1  # asyncio has seen the future (isfuture() was True)
_AIO_LOOP_DONE = 2  # its loop has seen it end (the loop view is done)
_AIO_LOOP_CANCELLED = 4  # ... cancelled in the loop, whatever the task did


def _running_loop() -> Any:
    """The event loop running in this thread, or None; asyncio is not
    imported for it (no loop can run before something imported it)."""
    get = getattr(sys.modules.get("asyncio.events"), "_get_running_loop", None)
    return None if get is None else get()


def _asyncio_attr(name: str) -> Any:
    return getattr(sys.modules["asyncio"], name)


class LoopInbox:
    """Loop-bound futures that ended in another thread, on their way to
    their loop. An ending thread appends and, only if no drain is pending,
    schedules one with ``call_soon_threadsafe``; the drain, in the loop,
    shows the loop every future that arrived meanwhile and schedules
    their asyncio callbacks for its next turn."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._items: list[Future[Any]] = []
        self._scheduled = False

    def ended(self, fut: Future[Any]) -> None:
        """``fut``, which asyncio has, just ended: its loop sees it at once
        in the loop's own thread (as an asyncio future), or from the next
        drain (as ``_chain_future``'s state copy, one per batch here)."""
        if _running_loop() is self.loop:
            for fn, ctx in fut._end_in_loop(cancelled=False) or ():
                self.loop.call_soon(fn, fut, context=ctx)
        else:
            self._post(fut)

    def _post(self, fut: Future[Any]) -> None:
        with self._lock:
            self._items.append(fut)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop is closed: asyncio drops callbacks it can no longer
            # run (an asyncio future of a closed loop can't even complete).
            with self._lock:
                self._items = []
                self._scheduled = False
        except BaseException:
            _log.exception("waking the event loop failed")

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        # The loop sees every future of the batch end now, and their
        # callbacks run on its next turn, in order: asyncio's state copy
        # (_set_state) schedules them with call_soon, so code that counts
        # turns sees what it sees with the stdlib; one handle runs them all.
        due = [(fut, fut._end_in_loop(cancelled=False)) for fut in items]
        if any(callbacks for _, callbacks in due):
            self.loop.call_soon(self._run_due, due)

    def _run_due(self, due: list[tuple[Future[Any], list[tuple[Any, Any]] | None]]) -> None:
        """The callbacks a drain found, on the loop's next turn, as the
        loop's handles would run them: an exception goes to the loop's
        handler; SystemExit and KeyboardInterrupt leave the loop, as asyncio
        lets them, and what is left runs on its next turn."""
        for i, (fut, callbacks) in enumerate(due):
            for j, (fn, ctx) in enumerate(callbacks or ()):
                try:
                    ctx.run(fn, fut)
                except (SystemExit, KeyboardInterrupt):
                    assert callbacks is not None
                    rest = [(fut, callbacks[j + 1 :])] + due[i + 1 :]
                    for later, cbs in rest:
                        for fn, ctx in cbs or ():
                            self.loop.call_soon(fn, later, context=ctx)
                    raise
                except BaseException as exc:
                    self.loop.call_exception_handler(
                        {
                            "message": f"Exception in callback {fn!r}",
                            "exception": exc,
                            "future": fut,
                        }
                    )


_inboxes: weakref.WeakValueDictionary[int, LoopInbox] = weakref.WeakValueDictionary()
_inboxes_lock = threading.Lock()


def _inbox_for(loop: Any) -> LoopInbox:
    """The loop's inbox (one per loop, alive while a future bound to the
    loop is). The inbox holds its loop, so while it lives id(loop) is the
    loop's alone."""
    with _inboxes_lock:
        inbox = _inboxes.get(id(loop))
        if inbox is None:
            inbox = _inboxes[id(loop)] = LoopInbox(loop)
        return inbox


def _bind_loop(fut: Future[Any]) -> None:
    loop = _running_loop()
    if loop is not None:
        fut._inbox = _inbox_for(loop)


class _InContext:
    """A done-callback given a ``context`` outside asyncio's loop: runs
    ``fn`` in it, as asyncio would."""

    __slots__ = ("fn", "ctx")

    def __init__(self, fn: Any, ctx: Any) -> None:
        self.fn = fn
        self.ctx = ctx

    def __call__(self, fut: Future[Any]) -> Any:
        return self.ctx.run(self.fn, fut)


def _hist_index(ns: int) -> int:
    if ns < 1:
        return 0
    i = int(math.log2(ns) * HIST_PER_OCTAVE)
    return i if i < HIST_BUCKETS else HIST_BUCKETS - 1


_T = TypeVar("_T")


class Future(_StdFuture[_T]):
    """The future every conexe executor returns: a real
    :class:`concurrent.futures.Future`, so ``concurrent.futures.wait``,
    ``as_completed``, ``asyncio.wrap_future`` and ``run_in_executor`` accept it.

    Unlike the stdlib one, ``cancel()`` on a queued task notifies waiters at
    once (``wait()`` and ``as_completed()`` see it done immediately)::

        >>> f = Future()
        >>> f.cancel(), f.done()
        (True, True)
    """

    def __init__(self) -> None:
        super().__init__()
        self._fn: Callable[..., Any] | None = None
        self._args: tuple[Any, ...] = ()
        self._kwargs: dict[str, Any] | None = None
        self._ctx: Any = None
        self._priority = 0
        self._deadline = 0.0
        self._tries = 0
        self._no_retry = False
        self._enqueued_ns = 0
        self._chain: KeyChain | None = None
        # asyncio (see "asyncio" above)
        self._inbox: LoopInbox | None = None
        self._aio_callbacks: list[tuple[Any, Any]] | None = None
        self._cancel_message: Any = None
        self._aio = 0  # the _AIO_* flags: written in the loop's thread
        self._aio_blocking = False

    def __repr__(self) -> str:
        with self._condition:
            if self._state == FINISHED:
                if self._exception:
                    return "<%s at %#x state=%s raised %s>" % (
                        self.__class__.__name__,
                        id(self),
                        _STATE_TO_DESCRIPTION_MAP[self._state],
                        self._exception.__class__.__name__,
                    )
                return "<%s at %#x state=%s returned %s>" % (
                    self.__class__.__name__,
                    id(self),
                    _STATE_TO_DESCRIPTION_MAP[self._state],
                    self._result.__class__.__name__,
                )
            return "<%s at %#x state=%s>" % (
                self.__class__.__name__,
                id(self),
                _STATE_TO_DESCRIPTION_MAP[self._state],
            )

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the task if it has not started; waiters wake at once.

        Inside the event loop it was submitted from, once asyncio has it,
        this is asyncio's cancel (see "asyncio" above): it also cancels a
        running task, whose outcome is then dropped, and ``msg`` is the
        CancelledError's message."""
        if self._asyncio_has_it():
            return self._cancel_in_loop(msg)
        return self._cancel_if_pending()

    def _cancel_in_loop(self, msg: Any) -> bool:
        """asyncio's cancel(), in the future's loop: False once the loop has
        seen the future end, else cancelled for the loop (True)."""
        with self._condition:
            if self._aio & _AIO_LOOP_DONE:
                return False
            self._cancel_message = msg
            ended = self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
            if not ended:
                self._state = CANCELLED_AND_NOTIFIED
                self._release_task()
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
                self._condition.notify_all()
        if not ended:
            # Ended here, in the loop's thread: the loop sees it at once.
            self._invoke_callbacks()
            return True
        # The task has ended, but the loop has not seen it yet (its drain
        # is on its way): only the loop's view is cancelled, as asyncio
        # cancels the future wrap_future made while _chain_future's copy of
        # the outcome is on its way (the copy then leaves it cancelled).
        assert self._inbox is not None
        for fn, ctx in self._end_in_loop(cancelled=True) or ():
            self._inbox.loop.call_soon(fn, self, context=ctx)
        return True

    def done(self) -> bool:
        """True if the future was cancelled or finished."""
        if not super().done():
            return False  # the loop never sees an end before the task's
        if not self._faces_agree() and self._asyncio_has_it():
            return self._loop_state() in (CANCELLED_AND_NOTIFIED, FINISHED)
        return True

    def cancelled(self) -> bool:
        """True if the future was cancelled."""
        if not self._faces_agree() and self._asyncio_has_it():
            return self._loop_state() == CANCELLED_AND_NOTIFIED
        return super().cancelled()

    def _cancel_if_pending(self) -> bool:
        """concurrent.futures' cancel() wherever it is called from: never
        stops a running task (for conexe's own "cancel what hasn't
        started", e.g. a group's, on futures asyncio may have)."""
        with self._condition:
            if self._state in (RUNNING, FINISHED):
                return False
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            self._state = CANCELLED_AND_NOTIFIED
            self._release_task()
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True

    def set_running_or_notify_cancel(self) -> bool:
        with self._condition:
            if self._state == CANCELLED:
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
                return False
            if self._state == CANCELLED_AND_NOTIFIED:
                return False
        return super().set_running_or_notify_cancel()

    def add_done_callback(self, fn: Callable[..., Any], *, context: Any = None) -> None:
        """Call ``fn(future)`` when done (now, if it already is), in the
        thread that completes it. Added by asyncio inside the future's own
        loop, ``fn`` runs in that loop instead (scheduled like an asyncio
        future's callback, in ``context``)."""
        if self._asyncio_has_it():
            assert self._inbox is not None
            if context is None:
                context = contextvars.copy_context()
            with self._condition:
                if not self._aio & _AIO_LOOP_DONE:
                    if self._aio_callbacks is None:
                        self._aio_callbacks = []
                    self._aio_callbacks.append((fn, context))
                    return
            self._inbox.loop.call_soon(fn, self, context=context)
            return
        if context is not None:
            fn = _InContext(fn, context)
        super().add_done_callback(fn)

    def remove_done_callback(self, fn: Callable[..., Any]) -> int:
        """Remove every registration of ``fn``; returns how many there were
        (asyncio's method, which asyncio.wait() and wait_for() use)."""
        with self._condition:
            callbacks: list[Any] = self._done_callbacks  # type: ignore[attr-defined]
            kept = [
                cb for cb in callbacks if not (cb == fn or (type(cb) is _InContext and cb.fn == fn))
            ]
            removed = len(callbacks) - len(kept)
            callbacks[:] = kept
            if self._aio_callbacks:
                kept_aio = [(f, ctx) for f, ctx in self._aio_callbacks if f != fn]
                removed += len(self._aio_callbacks) - len(kept_aio)
                self._aio_callbacks = kept_aio or None
        return removed

    def _invoke_callbacks(self) -> None:
        super()._invoke_callbacks()  # type: ignore[misc]
        # asyncio's callbacks stay until the loop sees the end: it may
        # cancel before then. Read after the state change, so a claim made
        # before it is seen here, and one made after it saw the end.
        if self._aio & _AIO_CLAIMED:
            assert self._inbox is not None
            self._inbox.ended(self)

    def _faces_agree(self) -> bool:
        """Whether the loop's view is the task's state, whichever thread
        asks: asyncio never had the future, or its loop has seen it end
        (and not cancelled it). Then done(), result()... need not ask which
        loop runs here."""
        aio = self._aio
        return (
            not aio & _AIO_CLAIMED or aio & (_AIO_LOOP_DONE | _AIO_LOOP_CANCELLED) == _AIO_LOOP_DONE
        )

    def _loop_state(self) -> str:
        """The future's state as its loop sees it (see "asyncio" above):
        PENDING until the loop has seen it end."""
        aio = self._aio
        if not aio & _AIO_LOOP_DONE:
            return PENDING
        if aio & _AIO_LOOP_CANCELLED:
            return CANCELLED_AND_NOTIFIED
        return self._state  # type: ignore[no-any-return]

    def _loop_outcome(self, want_result: bool) -> Any:
        """asyncio's result() (``want_result``) or exception(), read from
        the loop's view (see "asyncio" above)."""
        state = self._loop_state()
        if state == PENDING:
            raise _asyncio_attr("InvalidStateError")(
                "Result is not set." if want_result else "Exception is not set."
            )
        if state != FINISHED:
            raise self._make_cancelled_error()
        if not want_result:
            return self._exception
        if self._exception is not None:
            try:
                raise self._exception
            finally:
                self = None  # type: ignore[assignment]  # noqa: PLW0642
        return self._result

    def _note_claimed(self) -> None:
        """asyncio has the future from now on (its loop's thread calls
        this). One that already ended is seen ended by its loop when the
        future ``wrap_future`` makes would be (ASYNCIO_SEES_ENDED_AT_ONCE): at once,
        or, before 3.14, on the loop's next turn, as a future ending now in
        another thread would be."""
        if self._aio & _AIO_CLAIMED:
            return
        with self._condition:
            aio = self._aio | _AIO_CLAIMED
            ended = self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
            if ended and ASYNCIO_SEES_ENDED_AT_ONCE:
                aio |= _AIO_LOOP_DONE
            self._aio = aio
        if ended and not ASYNCIO_SEES_ENDED_AT_ONCE:
            assert self._inbox is not None
            self._inbox._post(self)

    def _end_in_loop(self, cancelled: bool) -> list[tuple[Any, Any]] | None:
        """In the loop's thread: the loop sees the future end (``cancelled``:
        by the loop's own cancel()); returns asyncio's callbacks to run.
        None, doing nothing, if the loop had seen it end already."""
        with self._condition:
            if self._aio & _AIO_LOOP_DONE:
                return None
            self._aio |= _AIO_LOOP_DONE | (_AIO_LOOP_CANCELLED if cancelled else 0)
            callbacks, self._aio_callbacks = self._aio_callbacks, None
        return callbacks or []

    def _wait_done(self, timeout: float | None) -> float | None:
        """Wait until done, or ``timeout`` passed, in waits a Ctrl-C always
        interrupts (see :mod:`conexe._signals`); returns the timeout left
        for the stdlib's own wait, which then returns at once."""
        if not needs_slices(timeout):
            return timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._state not in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return 0.0
                wait_interruptibly(self._condition, left)
        return timeout if deadline is None else max(0.0, deadline - time.monotonic())

    def result(self, timeout: float | None = None) -> _T:
        """Wait (at most ``timeout`` seconds) and return the result, or
        raise the task's exception, CancelledError or TimeoutError.

        In its loop, once asyncio has it, this is asyncio's result(): it
        never waits, and raises asyncio.InvalidStateError until the loop has
        seen the future end."""
        if (self._state != FINISHED or not self._faces_agree()) and self._asyncio_has_it():
            return self._loop_outcome(want_result=True)
        try:
            return super().result(self._wait_done(timeout))
        finally:
            # The task's exception's traceback holds this frame: without
            # this, future -> exception -> traceback -> frame -> future.
            self = None  # type: ignore[assignment]  # noqa: PLW0642

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like :meth:`result`; return the exception (None if none)."""
        # Returns the task's exception rather than raising it: no cycle
        # through this frame to break, unlike result().
        if (self._state != FINISHED or not self._faces_agree()) and self._asyncio_has_it():
            return self._loop_outcome(want_result=False)
        return super().exception(self._wait_done(timeout))

    # -- asyncio's future protocol (see "asyncio" above) -----------------
    @property
    def _asyncio_future_blocking(self) -> bool | None:
        # asyncio.isfuture() reads this: not None means "an asyncio future
        # of get_loop()". Only true inside the future's own loop (see
        # "asyncio" above); reading it there hands the future to asyncio.
        if not self._own_loop_here(adopt=True):
            return None
        self._note_claimed()
        return self._aio_blocking

    @_asyncio_future_blocking.setter
    def _asyncio_future_blocking(self, value: bool) -> None:
        self._aio_blocking = bool(value)

    def get_loop(self) -> Any:
        """The future's event loop: the one the task was submitted from,
        or the first one asyncio looked at it in."""
        if self._inbox is None:
            raise RuntimeError("this future was not submitted from a running event loop")
        return self._inbox.loop

    def _make_cancelled_error(self) -> BaseException:
        exc_type = _asyncio_attr("CancelledError")
        return exc_type() if self._cancel_message is None else exc_type(self._cancel_message)  # type: ignore[no-any-return]

    def __await__(self) -> Generator[Any, None, _T]:
        """``await future`` in any event loop; in its own loop (see
        get_loop()) without a second future in between."""
        if self._own_loop_here(adopt=True):
            self._note_claimed()
            if not self.done():
                self._aio_blocking = True
                yield self  # the Task waits for us (asyncio's protocol)
            if not self.done():
                raise RuntimeError("await wasn't used with future")
            return self.result()
        return (yield from _asyncio_attr("wrap_future")(self).__await__())

    __iter__ = __await__  # ``yield from future``, as asyncio's futures allow

    def _asyncio_has_it(self) -> bool:
        """Whether this future is asyncio's here: claimed by asyncio, and
        this thread runs its loop (asyncio's rules apply)."""
        return bool(self._aio & _AIO_CLAIMED) and self._in_own_loop()

    def _in_own_loop(self) -> bool:
        """Whether this thread is running the future's loop."""
        return self._own_loop_here(adopt=False)

    def _own_loop_here(self, adopt: bool) -> bool:
        """Whether this thread is running the future's loop: the one it was
        submitted from or, with ``adopt``, for a future submitted outside
        any loop, the one running here, which it is bound to from now on."""
        loop = _running_loop()
        if loop is None:  # no loop here, as in every worker
            return False
        inbox = self._inbox
        if inbox is None:
            if not adopt:
                return False
            fresh = _inbox_for(loop)
            with self._condition:  # another loop's thread may be adopting it
                if self._inbox is None:
                    self._inbox = fresh
                inbox = self._inbox
        return inbox.loop is loop

    # -- core-private ----------------------------------------------------
    def _release_task(self) -> None:
        self._take_task()

    def _take_task(self) -> tuple[Any, tuple[Any, ...], Any, Any]:
        """Hand over the task (fn, args, kwargs, context) and forget it.
        Under the future's lock: a worker starting the task and asyncio
        cancelling it may both let go of it at once (read field by field,
        the worker could get the function but the emptied arguments)."""
        with self._condition:  # an RLock: callers may hold it already
            task = (self._fn, self._args, self._kwargs, self._ctx)
            self._fn = None
            self._args = ()
            self._kwargs = None
            self._ctx = None
        return task

    def _claim(self, check_deadline: bool) -> int:
        """Someone took this future off a lane: PENDING -> RUNNING. A
        worker checks the start deadline (_EXPIRED_NOW once it passed);
        close() and fail_queued() end the task either way and don't."""
        with self._condition:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                if check_deadline and self._deadline and time.monotonic() > self._deadline:
                    return _EXPIRED_NOW
                return _CLAIMED
            if state == FINISHED or state == RUNNING:  # _expire() or a caller got it
                return _SKIP_EXPIRED
            return _SKIP_CANCELLED

    def _cancel_claimed(self) -> None:
        """Cancel a future that close(cancel=True) took off a lane (and so
        claimed): waiters wake, callbacks run. No-op if it already ended."""
        # RUNNING -> cancelled in one step: going back through PENDING let
        # the deadline reaper's _expire() take it in between, and fail a
        # future close() had already counted as cancelled.
        self._end_unstarted(RUNNING, None)

    def _expire(self) -> bool:
        """Fail a still-queued task with TimeoutError (its start deadline
        passed). Returns False if it already started or ended."""
        # PENDING -> FINISHED in one step: through RUNNING, a worker or
        # close() meeting the task in between would count it failed and
        # move on (shutdown() returning) before it was done.
        return self._end_unstarted(PENDING, TimeoutError(START_DEADLINE_MESSAGE))

    def _end_unstarted(self, expected: str, exc: BaseException | None) -> bool:
        """End a task that will never run, only from state ``expected`` and
        in one step under the future's lock: failed with ``exc``, or
        cancelled (None). Its task is released (outside the lock), waiters
        wake, callbacks run. Returns False, changing nothing, otherwise."""
        with self._condition:
            if self._state != expected:
                return False
            if exc is None:
                self._state = CANCELLED_AND_NOTIFIED
            else:
                self._exception = exc
                self._state = FINISHED
            task = self._take_task()
            for waiter in self._waiters:
                if exc is None:
                    waiter.add_cancelled(self)
                else:
                    waiter.add_exception(self)
            self._condition.notify_all()
        del task  # its references drop outside the lock
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True

    def _fail_started(self, exc: BaseException) -> None:
        self._release_task()
        try:
            self.set_exception(exc)
        except Exception:  # InvalidStateError: someone completed it by hand
            pass

    def _finish(self, ok: bool, value: Any) -> None:
        try:
            if ok:
                self.set_result(value)
            else:
                self.set_exception(value)
        except Exception:  # InvalidStateError: someone completed it by hand
            pass


class ChunkItemError:
    """Marks an item of a :func:`run_chunk` result whose call raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """``[fn(*args) for args in chunk]``, except that an item that raises
    gives a :class:`ChunkItemError` and the rest still run (``map``'s
    per-item semantics, one queue entry per chunk)::

        >>> [getattr(r, "error", r) for r in run_chunk(divmod, [(7, 2), (1, 0)])]
        [(3, 1), ZeroDivisionError('integer division or modulo by zero')]
    """
    out = []
    for args in chunk:
        try:
            # Each item in a copy of the chunk's context, as if submitted
            # on its own: what one item sets, the next doesn't see.
            out.append(contextvars.copy_context().run(fn, *args))
        except BaseException as exc:
            out.append(ChunkItemError(exc))
    # A failed call's frame links back (f_back) to this one, whose locals
    # outlive it: leave ``out`` there and out -> exception -> traceback ->
    # frame -> out is a cycle only the cyclic GC frees.
    try:
        return out
    finally:
        del out


class KeyChain:
    """One key's entry in the dispatch map: the tasks waiting behind the
    key's head (the one task of the key that is in a lane or running).
    The entry is deleted as soon as the key has nothing queued or running."""

    __slots__ = ("key", "waiting", "shard")

    def __init__(self, key: Any, shard: dict[Any, KeyChain]) -> None:
        self.key = key
        self.waiting: deque[Future[Any]] = deque()
        self.shard = shard


_KEY_SHARD_MASK = KEY_SHARDS - 1


class Worker:
    """One worker thread's handle, passed to :meth:`Engine.worker_loop`.

    ``resource`` is what a Runner task receives; ``retire`` asks the worker
    to leave after its current task::

        >>> w = Worker(resource="db-connection")
        >>> w.resource
        'db-connection'
    """

    __slots__ = ("_park", "parked", "retire", "resource", "tasks_done", "__weakref__")

    def __init__(self, resource: Any = None) -> None:
        self._park = threading.Lock()
        self._park.acquire()
        self.parked = False
        self.retire = False
        self.resource = resource
        self.tasks_done = 0


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


class Engine:
    """Priority lanes, counters and the worker loop (see the module doc).

    ``max_queue_size`` bounds queued tasks (0 = unbounded).
    ``on_need_worker`` is called (outside any lock) when a task is queued,
    no worker is idle and fewer than ``target_workers`` exist: the caller
    starts a thread running :meth:`worker_loop`. ``pass_resource`` makes tasks
    ``fn(worker.resource)``; ``check_health(exc) -> bool`` and ``max_retries``
    give the Runner's retry-on-broken-resource rule.
    """

    def __init__(
        self,
        max_queue_size: int = 0,
        *,
        on_need_worker: Callable[[], None] | None = None,
        target_workers: int = 0,
        pass_resource: bool = False,
        check_health: Callable[[BaseException], bool] | None = None,
        max_retries: int = 0,
        track_latency: bool = False,
        context: str = "copy",
    ) -> None:
        if max_queue_size < 0:
            raise ValueError(must_be_non_negative("max_queue_size"))
        if target_workers < 0:
            raise ValueError(must_be_non_negative("target_workers"))
        if max_retries < 0:
            raise ValueError(must_be_non_negative("max_retries"))
        if context not in CONTEXTS:
            raise ValueError(CONTEXT_MESSAGE % (context,))
        # No task ever runs in a context another task wrote to: "copy", a
        # copy of the submitter's, made at submit (asyncio.to_thread's
        # rule); "fresh", a new, empty one, made when the task starts.
        self._fresh_context = context == "fresh"
        self._mutex = threading.Lock()
        self._lanes: dict[int, deque[Future[Any]]] = {}
        self._levels: list[int] = []  # priorities with a lane, highest first
        self._queued = 0  # in lanes + waiting behind a key's head
        self._in_lanes = 0
        self._priority_queued = 0
        self._max_queue = max_queue_size
        self._shards: list[dict[Any, KeyChain]] = [{} for _ in range(KEY_SHARDS)]
        self._active_keys = 0
        self._parked: list[Worker] = []  # LIFO: the warmest worker first
        self._waking = 0  # woken or starting, not yet back in the loop
        self._workers = 0
        self._target = target_workers
        self._running = 0
        self._blocked: deque[threading.Lock] = deque()  # producers waiting for room
        self._closed = False
        self._closed_message = CLOSED_MESSAGE
        self._on_need_worker = on_need_worker
        self._pass_resource = pass_resource
        self._check_health = check_health
        self._max_retries = max_retries
        self._track_latency = track_latency
        self._submitted = 0
        self._completed = 0
        self._failed = 0
        self._cancelled = 0
        self._rejected = 0
        self._retried = 0
        self._wakeups = 0  # parked workers woken for work
        self._wait_hist = [0] * HIST_BUCKETS
        self._run_hist = [0] * HIST_BUCKETS

    # -- submitting -------------------------------------------------------
    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
    ) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)`` at priority 0; never blocks.

        Raises QueueFull when the bound is reached and RuntimeError once
        closed."""
        check_callable(fn)
        fut: Future[Any] = Future()
        fut._fn = fn
        fut._args = args
        fut._kwargs = kwargs or None
        if not self._fresh_context:
            fut._ctx = contextvars.copy_context()
        _bind_loop(fut)
        self._push(fut, 0)
        return fut

    def submit_with(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        priority: int = 0,
        deadline: float = 0.0,
        context: Any = None,
        no_retry: bool = False,
        block: bool = False,
        timeout: float | None = None,
    ) -> Future[Any]:
        """:meth:`submit` with per-task options: ``priority`` (higher runs
        first), ``deadline`` (a ``time.monotonic()`` value; still queued then
        means TimeoutError), ``context`` (a ``contextvars.Context`` to run in),
        ``no_retry``, and ``block``/``timeout`` to wait for room in a full
        queue instead of raising QueueFull."""
        check_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        fut: Future[Any] = Future()
        fut._fn = fn
        fut._args = args
        fut._kwargs = kwargs or None
        fut._priority = priority
        fut._deadline = deadline
        fut._ctx = context
        if context is None and not self._fresh_context:
            fut._ctx = contextvars.copy_context()
        fut._no_retry = no_retry
        _bind_loop(fut)
        self._push(fut, priority, block=block, timeout=timeout)
        return fut

    def _push(
        self,
        fut: Future[Any],
        priority: int,
        *,
        key: Any = None,
        keyed: bool = False,
        unique: bool = False,
        block: bool = False,
        timeout: float | None = None,
    ) -> bool:
        """Queue ``fut`` (with ``keyed``, behind the other tasks of ``key``),
        then wake or start a worker for it. Returns False (nothing queued)
        for a ``unique`` duplicate."""
        mutex = self._mutex
        deadline = None if timeout is None else time.monotonic() + timeout
        shard = self._shards[hash(key) & _KEY_SHARD_MASK] if keyed else None
        mutex.acquire()
        try:
            if not self._wait_for_room_locked(shard, key, unique, block, deadline):
                mutex.release()
                return False
            self._submitted += 1
            if shard is not None:
                in_lane = self._add_keyed_locked(fut, priority, shard, key)
            else:
                self._enqueue_locked(fut, priority, False)
                in_lane = True
        except BaseException:
            mutex.release()
            raise
        if in_lane:
            self._unlock_and_wake_helper()
        else:
            mutex.release()
        return True

    def _wait_for_room_locked(
        self,
        shard: dict[Any, KeyChain] | None,
        key: Any,
        unique: bool,
        block: bool,
        deadline: float | None,
    ) -> bool:
        """Raise RuntimeError once closed and QueueFull for a full queue,
        unless ``block``: then wait (the engine lock released) for room
        until ``deadline`` (None: forever). Returns False for a ``unique``
        duplicate of a busy key, else True."""
        mutex = self._mutex
        while True:
            if self._closed:
                raise RuntimeError(self._closed_message)
            if unique and key in shard:  # type: ignore[operator]
                return False
            if not self._max_queue or self._queued < self._max_queue:
                return True
            if not block:
                self._rejected += 1
                raise QueueFull(self._full_message())
            gate = threading.Lock()
            gate.acquire()
            self._blocked.append(gate)
            mutex.release()
            try:
                got = acquire_interruptibly(
                    gate, None if deadline is None else max(0.0, deadline - time.monotonic())
                )
            finally:
                mutex.acquire()
            if not got:
                try:
                    self._blocked.remove(gate)
                except ValueError:  # woken just as we timed out: pass it on
                    self._wake_producer_locked()
                self._rejected += 1
                raise QueueFull(self._full_message())

    def _add_keyed_locked(
        self, fut: Future[Any], priority: int, shard: dict[Any, KeyChain], key: Any
    ) -> bool:
        """Queue ``fut`` as ``key``'s task: into a lane if the key is free
        (returns True), else behind the key's last task, out of the lanes."""
        chain = shard.get(key)
        if chain is not None:
            # The key is busy: wait behind its head, out of the lanes.
            fut._chain = chain
            chain.waiting.append(fut)
            self._queued += 1
            if self._track_latency:
                fut._enqueued_ns = time.monotonic_ns()
            return False
        fut._chain = shard[key] = KeyChain(key, shard)
        self._active_keys += 1
        self._enqueue_locked(fut, priority, False)
        return True

    def submit_keyed(
        self,
        key: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        priority: int = 0,
        deadline: float = 0.0,
        context: Any = None,
        unique: bool = False,
        block: bool = False,
        timeout: float | None = None,
    ) -> Future[Any] | None:
        """Queue ``fn(*args, **kwargs)`` behind every earlier task of ``key``:
        tasks of one key run one at a time in submission order, different
        keys in parallel. With ``unique``, returns None (and queues nothing)
        if ``key`` already has a task queued or running. Other options as
        :meth:`submit_with`."""
        check_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        check_key(key)  # an unhashable key fails here, before anything is queued
        fut: Future[Any] = Future()
        fut._fn = fn
        fut._args = args
        fut._kwargs = kwargs or None
        fut._priority = priority
        fut._deadline = deadline
        fut._ctx = context
        if context is None and not self._fresh_context:
            fut._ctx = contextvars.copy_context()
        _bind_loop(fut)
        if not self._push(
            fut, priority, key=key, keyed=True, unique=unique, block=block, timeout=timeout
        ):
            return None
        return fut

    def call_keyed(
        self, key: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        """``submit_keyed(key, fn, args, kwargs, context=copy_context())``:
        ``KeyedExecutor.submit``'s fast path (one C call in the C core)."""
        fut = self.submit_keyed(key, fn, args, kwargs)
        assert fut is not None
        return fut

    def key_active(self, key: Any) -> bool:
        """Whether ``key`` has a task queued or running."""
        shard = self._shards[hash(key) & _KEY_SHARD_MASK]
        with self._mutex:
            return key in shard

    def _advance_chain_locked(self, fut: Future[Any]) -> None:
        """``fut`` (a key's head) ended or was skipped: its key's next task
        becomes the head and joins the tail of its lane (so one busy key
        can't keep a worker), or the key's entry is freed."""
        chain = fut._chain
        fut._chain = None
        if chain is None:
            return
        if chain.waiting:
            nxt = chain.waiting.popleft()
            self._queued -= 1
            self._enqueue_locked(nxt, nxt._priority, False, restamp=False)
        else:
            del chain.shard[chain.key]
            self._active_keys -= 1

    def _full_message(self) -> str:
        return QUEUE_FULL_MESSAGE % (self._queued, self._max_queue)

    def _enqueue_locked(
        self, fut: Future[Any], priority: int, front: bool, restamp: bool = True
    ) -> None:
        lane = self._lanes.get(priority)
        if lane is None:
            lane = self._lanes[priority] = deque()
            self._levels.append(priority)
            self._levels.sort(reverse=True)
        if self._track_latency and restamp:
            fut._enqueued_ns = time.monotonic_ns()
        if front:
            lane.appendleft(fut)
        else:
            lane.append(fut)
        self._queued += 1
        self._in_lanes += 1
        if priority > 0:
            self._priority_queued += 1

    def _pop_locked(self) -> Future[Any] | None:
        if not self._in_lanes:
            return None
        for level in self._levels:
            lane = self._lanes[level]
            if lane:
                self._queued -= 1
                self._in_lanes -= 1
                if level > 0:
                    self._priority_queued -= 1
                return lane.popleft()
        raise AssertionError("queued count out of step with the lanes")

    def _pick_helper_locked(self) -> tuple[Worker | None, bool]:
        """Who should take the queued work: a parked worker, a new thread,
        or nobody (the awake workers keep up)."""
        if self._in_lanes <= self._waking:
            return None, False
        if self._parked:
            w = self._parked.pop()
            w.parked = False
            self._waking += 1
            self._wakeups += 1
            return w, False
        if self._on_need_worker is not None and not self._closed and self._workers < self._target:
            self._workers += 1
            self._waking += 1
            return None, True
        return None, False

    def _spawn(self) -> None:
        try:
            self._on_need_worker()  # type: ignore[misc]
        except Exception as exc:
            # Never let a failed thread start lose accepted work: with no
            # worker left at all, the queued tasks fail with the reason.
            _log.error(NO_WORKER_THREAD_MESSAGE, exc)
            with self._mutex:
                self._workers -= 1
                self._waking -= 1
                none_left = self._workers == 0
            if none_left:
                self.fail_queued(exc)

    def _unlock_and_wake_helper(self) -> None:
        """Release the engine lock, then wake the parked worker or start the
        thread that _pick_helper_locked() chose for the queued work: the
        lock is held across neither."""
        wake, spawn = self._pick_helper_locked()
        self._mutex.release()
        if wake is not None:
            wake._park.release()
        elif spawn:
            self._spawn()

    def _wake_producer_locked(self) -> None:
        if self._blocked:
            self._blocked.popleft().release()

    # -- workers ------------------------------------------------------------
    def add_workers(self, n: int) -> None:
        """Count ``n`` worker threads the caller is about to start."""
        with self._mutex:
            self._workers += n
            self._waking += n

    def worker_started_failed(self) -> None:
        """Undo one :meth:`add_workers` (the thread could not start)."""
        with self._mutex:
            self._workers -= 1
            self._waking -= 1

    def set_target_workers(self, n: int) -> None:
        if n < 0:
            raise ValueError(must_be_non_negative("target_workers"))
        self._mutex.acquire()
        self._target = n
        self._unlock_and_wake_helper()

    def retire_worker(self, worker: Worker) -> None:
        """Ask ``worker`` to leave once its current task is done."""
        with self._mutex:
            worker.retire = True
            if worker.parked:
                self._parked.remove(worker)
                worker.parked = False
                self._waking += 1
                worker._park.release()

    def worker_loop(self, worker: Worker) -> str:
        """Run tasks until closed and drained, retired, or (Runner) the
        worker's resource is found broken. Returns why: ``"shutdown"``,
        ``"retire"`` or ``"replace"``.

        Each turn: take the next task (parking while there is none), run
        it outside every lock, count how it ended, then complete its
        future before taking another, so what its waiters and callbacks
        do (cancel queued tasks, say) happens before the next one starts;
        the counters come first, so stats() never lags the future."""
        mutex = self._mutex
        end = TaskEnd()
        mutex.acquire()
        self._waking -= 1  # this worker is in the loop now
        while True:
            item, expired = self._next_task_locked(worker, end.replace)
            if item is None:
                return self._leave_locked(worker, end.replace)
            self._unlock_and_wake_helper()
            if expired:
                item._fail_started(TimeoutError(START_DEADLINE_MESSAGE))
                mutex.acquire()
                continue
            self._run(item, worker, end)  # outside every lock
            mutex.acquire()
            if self._end_task_locked(item, end):
                # Counted as on its way back to the lanes while it completes
                # the future: a submit made as soon as the waiter wakes
                # needn't wake or start another worker.
                self._waking += 1
                self._unlock_and_wake_helper()  # for a key's next task
                try:
                    item._finish(end.outcome == _COMPLETED, end.value)
                finally:
                    end.value = None
                    mutex.acquire()
                    self._waking -= 1
            item = None

    def _next_task_locked(self, worker: Worker, replace: bool) -> tuple[Future[Any] | None, bool]:
        """The next task to run (claimed: RUNNING) and whether its start
        deadline passed just now (the caller fails it outside the lock),
        parking while there is none; ``(None, False)`` when the worker is
        to leave: its resource is broken (``replace``), it was retired, or
        the engine is closed and drained. Cancelled and expired tasks met
        on the way are counted and skipped."""
        while True:
            if replace or worker.retire:
                return None, False
            item = self._pop_locked()
            if item is None:
                if self._closed:
                    return None, False
                self._park_locked(worker)
                continue
            if self._blocked:
                self._wake_producer_locked()
            claim = item._claim(True)
            if claim == _CLAIMED or claim == _EXPIRED_NOW:
                if self._track_latency:
                    wait = time.monotonic_ns() - item._enqueued_ns
                    self._wait_hist[_hist_index(wait)] += 1
                if claim == _EXPIRED_NOW:
                    self._failed += 1
                    self._advance_chain_locked(item)
                    return item, True
                self._running += 1
                return item, False
            if claim == _SKIP_CANCELLED:
                self._cancelled += 1
            else:
                self._failed += 1
            self._advance_chain_locked(item)

    def _park_locked(self, worker: Worker) -> None:
        """Sleep, the engine lock released, until someone wakes ``worker``."""
        self._parked.append(worker)
        worker.parked = True
        self._mutex.release()
        worker._park.acquire()
        self._mutex.acquire()
        self._waking -= 1

    def _end_task_locked(self, fut: Future[Any], end: TaskEnd) -> bool:
        """Count how ``fut`` ended. A retry goes back to the front of its
        lane (returns False: its future is not done); anything else frees
        its key for the key's next task (returns True: complete its future)."""
        if end.run_ns >= 0:
            # Recorded under the lock taken here anyway: no extra lock
            # round-trip per task for the latency histogram.
            self._run_hist[_hist_index(end.run_ns)] += 1
            end.run_ns = -1
        self._running -= 1
        outcome = end.outcome
        if outcome == _RETRIED:
            # Broken resource, tries left: back to the front of its lane
            # for a worker with a fresh resource.
            self._retried += 1
            self._enqueue_locked(fut, fut._priority, True)
            return False
        if outcome == _COMPLETED:
            self._completed += 1
        elif outcome == _FAILED:
            self._failed += 1
        else:  # CANCELLED_UNSTARTED: it never ran (its future is done)
            self._cancelled += 1
        self._advance_chain_locked(fut)
        return True

    def _leave_locked(self, worker: Worker, replace: bool) -> str:
        """The worker leaves: uncount it, release the engine lock, and say
        why (an ``EXIT_*`` reason)."""
        if replace:
            reason = EXIT_REPLACE
        elif worker.retire:
            reason = EXIT_RETIRE
        else:
            reason = EXIT_SHUTDOWN
        self._workers -= 1
        if reason == EXIT_SHUTDOWN and self._workers == 0:
            self._wake_all_producers_locked()
        # A task retried above went back into a lane without a helper being
        # picked, and this worker is leaving: wake a parked one for it (the
        # replacement may take a while to create its resource, or never
        # manage to).
        self._unlock_and_wake_helper()
        return reason

    def _run(self, fut: Future[Any], worker: Worker, end: TaskEnd) -> None:
        """Run ``fut``'s task (no lock held) and say in ``end`` how it ended."""
        t0 = time.monotonic_ns() if self._track_latency else 0
        fn, args, kwargs, ctx = fut._take_task()
        if fn is None:  # a cancel took the task after the claim (asyncio's)
            end.set(_CANCELLED_UNSTARTED, None, False)
        else:
            try:
                if self._pass_resource:
                    args = (worker.resource,)
                given = ctx
                if ctx is None:  # "fresh" (see __init__)
                    ctx = contextvars.Context()
                value = ctx.run(fn, *args, **(kwargs or {}))
            except BaseException as exc:
                del args, kwargs
                self._on_failure(fut, exc, fn, given, end)
            else:
                end.set(_COMPLETED, value, False)
                del value
        if t0:
            end.run_ns = time.monotonic_ns() - t0
        worker.tasks_done += 1
        # The task's frame, kept by the traceback of an exception it raised
        # (or caught and returned, as run_chunk does), links back (f_back)
        # to this one, whose locals outlive it: leave ``fut`` (or ``end``,
        # which holds the exception) there and future -> exception ->
        # traceback -> frame -> future is a cycle only the cyclic GC frees
        # (the C core has no frame).
        del fut, end

    def _on_failure(
        self, fut: Future[Any], exc: BaseException, fn: Any, ctx: Any, end: TaskEnd
    ) -> None:
        """The task raised ``exc``: a failure, or (Runner) a broken resource
        whose task is retried while it has tries left (``fn`` in the context
        it was given, ``ctx``: the same copy, or None for a fresh one)."""
        check = self._check_health
        if check is None:
            return end.set(_FAILED, exc, False)
        try:
            healthy = bool(check(exc))
        except Exception:
            _log.exception(CHECK_HEALTH_RAISED_MESSAGE)
            healthy = False
        if healthy:
            return end.set(_FAILED, exc, False)
        if fut._no_retry:
            return end.set(_FAILED, exc, True)
        if fut._tries >= self._max_retries:
            err = MaxRetriesExceeded(MAX_RETRIES_MESSAGE % (exc,))
            err.__cause__ = exc
            return end.set(_FAILED, err, True)
        with fut._condition:
            if fut._state != RUNNING:  # cancelled by asyncio meanwhile: no retry
                return end.set(_FAILED, exc, True)
            fut._state = PENDING
        fut._tries += 1
        fut._fn = fn
        fut._ctx = ctx
        return end.set(_RETRIED, None, True)

    # -- shutting down --------------------------------------------------------
    def close(self, cancel: bool = False, message: str | None = None) -> int:
        """Refuse new tasks; workers leave once the lanes are empty. With
        ``cancel`` the queued tasks are cancelled (their waiters wake) and
        their number is returned."""
        with self._mutex:
            self._closed = True
            if message is not None:
                self._closed_message = message
            drained = self._drain_locked() if cancel else []
            parked, self._parked = self._parked, []
            claimed = []  # those this close() took: only they are cancelled
            try:
                for fut in drained:
                    claim = fut._claim(False)
                    if claim == _SKIP_EXPIRED:
                        # Its start deadline's reaper got it first (RUNNING
                        # until it sets the TimeoutError): failed, not ours.
                        self._failed += 1
                    else:
                        self._cancelled += 1
                        if claim != _SKIP_CANCELLED:
                            claimed.append(fut)
                self._wake_all_producers_locked()
            finally:
                # Taken off the list, a parked worker is woken here or never:
                # a Ctrl-C whose handler runs in the lines above (Python code
                # runs it between bytecodes) must not leave it asleep.
                self._waking += len(parked)
                for w in parked:
                    w.parked = False
                    w._park.release()
        for fut in claimed:
            fut._cancel_claimed()
        return sum(1 for fut in drained if fut.cancelled())

    def fail_queued(self, exc: BaseException) -> int:
        """Fail every queued task with ``exc`` (the Runner uses this when no
        worker can be created); returns how many."""
        with self._mutex:
            drained = self._drain_locked()
            claimed = []
            for fut in drained:
                claim = fut._claim(False)
                if claim == _SKIP_CANCELLED:
                    self._cancelled += 1
                else:
                    self._failed += 1
                    if claim != _SKIP_EXPIRED:
                        claimed.append(fut)
            self._wake_all_producers_locked()
        for fut in claimed:
            fut._fail_started(exc)
        return len(claimed)

    def _drain_locked(self) -> list[Future[Any]]:
        """Take every queued task out: the lanes, then the tasks waiting
        behind busy keys. Keys left with nothing running are freed."""
        in_lanes: list[Future[Any]] = []
        for level in self._levels:
            lane = self._lanes[level]
            in_lanes.extend(lane)
            lane.clear()
        out = list(in_lanes)
        # Walk only what was in the lanes: the tasks taken from behind a
        # key's head share its chain, and its entry is freed only once.
        for fut in in_lanes:
            if fut._chain is not None:  # a head that never started
                chain = fut._chain
                del chain.shard[chain.key]
                self._active_keys -= 1
                out.extend(chain.waiting)
                chain.waiting.clear()
        for shard in self._shards:
            for chain in shard.values():  # heads still running
                out.extend(chain.waiting)
                chain.waiting.clear()
        for fut in out:
            fut._chain = None
        self._queued = 0
        self._in_lanes = 0
        self._priority_queued = 0
        return out

    def _wake_all_producers_locked(self) -> None:
        while self._blocked:
            self._blocked.popleft().release()

    def after_fork(self) -> None:
        """In a forked child: no worker threads exist there; refuse work."""
        self._mutex = threading.Lock()
        self._closed = True
        self._closed_message = AFTER_FORK_MESSAGE
        self._parked = []
        self._blocked = deque()
        self._workers = 0
        self._waking = 0
        self._running = 0

    # -- reading --------------------------------------------------------------
    @property
    def closed(self) -> bool:
        with self._mutex:  # written under the lock by close() and after_fork()
            return self._closed

    @property
    def queued(self) -> int:
        with self._mutex:
            return self._queued

    def stats(self) -> dict[str, int]:
        """A consistent snapshot of the counters (taken under the lock)."""
        with self._mutex:
            return {
                "workers": self._workers,
                "idle": len(self._parked),
                "queued": self._queued,
                "priority_queued": self._priority_queued,
                "active_keys": self._active_keys,
                "running": self._running,
                "submitted": self._submitted,
                "completed": self._completed,
                "failed": self._failed,
                "cancelled": self._cancelled,
                "rejected": self._rejected,
                "retried": self._retried,
                "wakeups": self._wakeups,
            }

    def latency(self, which: str, percentiles: tuple[float, ...]) -> tuple[float, ...]:
        """Percentiles (seconds) of ``"wait"`` (queued -> started) or
        ``"run"`` (started -> ended) from the fixed-size histograms."""
        with self._mutex:
            if which == "wait":
                hist = list(self._wait_hist)
            elif which == "run":
                hist = list(self._run_hist)
            else:
                raise ValueError(LATENCY_KIND_MESSAGE % (which,))
        return hist_percentiles(hist, percentiles)


def executor_submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    """Schedule ``fn(*args, **kwargs)``; returns its Future.

    ``ConcurrentExecutor.submit`` itself: a function of the core placed in
    the executor class. The C core's queues on the executor's
    ``_plain_engine`` with no Python frame; this one hands the call to
    ``self._submit(fn, args, kwargs)``, which does the same in Python.

        >>> class Plain:
        ...     submit = executor_submit
        ...     def _submit(self, fn, args, kwargs):
        ...         return fn(*args)
        >>> Plain().submit(abs, -3)
        3

    Raises RuntimeError after shutdown, TypeError if ``fn`` isn't
    callable, and (full queue, ``on_full="raise"``) QueueFull."""
    return self._submit(fn, args, kwargs)  # type: ignore[no-any-return]
