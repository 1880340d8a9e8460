"""The twin of future.pxi: :class:`Future`."""

from __future__ import annotations

import contextvars
import time
import weakref
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
from typing import TYPE_CHECKING, Any, TypeVar

from .._contract import (
    ASYNCIO_SEES_ENDED_AT_ONCE,
    START_DEADLINE_MESSAGE,
)
from .._signals import needs_slices, wait_interruptibly
from .asyncio_view import (
    AIO_CLAIMED,
    AIO_LOOP_CANCELLED,
    AIO_LOOP_DONE,
    LoopInbox,
    asyncio_attr,
    inbox_for,
    running_loop,
)
from .primitives import CLAIMED, EXPIRED_NOW, SKIP_CANCELLED, SKIP_EXPIRED

if TYPE_CHECKING:
    from .keys import KeyChain


class _InContext:
    """A done-callback given a ``context`` outside asyncio's loop: runs
    ``fn`` in it, as asyncio would."""

    __slots__ = ("fn", "ctx")

    def __init__(self, fn: Any, ctx: Any) -> None:
        self.fn = fn
        self.ctx = ctx

    def __call__(self, fut: Future[Any]) -> Any:
        return self.ctx.run(self.fn, fut)


class _Waiters(list[Any]):
    """A future's ``_waiters``: a list that lets helping.py see each
    ``concurrent.futures`` waiter installed (on a worker, waiting may run
    the task). It refers to its future weakly: no cycle for the GC."""

    __slots__ = ("_fut",)

    def __init__(self, fut: weakref.ref[Future[Any]]) -> None:
        super().__init__()
        self._fut = fut

    def append(self, waiter: Any) -> None:
        super().append(waiter)
        fut = self._fut()
        if fut is not None:
            from .helping import adopt_waiter  # it imports this module

            adopt_waiter(waiter, fut)


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
        # Seen by the running task (running.py, conexe.current_task()).
        self._stop_asked = False  # request_cancel() asked it to stop
        self._run_deadline = 0.0  # time.monotonic() deadline it sees, 0.0: none
        self._children: list[Future[Any]] | None = None  # what it submitted while running
        # Helping waits (helping.py): the engine it was queued on, and
        # whether a worker waiting for it ran it (its lane entry is stale).
        self._waiters = _Waiters(weakref.ref(self))
        self._owner: Any = None
        self._helped = False
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
            if self._aio & AIO_LOOP_DONE:
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

    def request_cancel(self) -> bool:
        """Cancel the task if it has not started, as ``cancel()`` does; if
        it is running, ask it to stop: ``conexe.current_task()`` tells the
        task (``cancel_requested``), and the tasks it submitted are asked
        in turn. Conexe never stops a running task itself: the task checks
        and returns or raises when it can. False once the task has ended."""
        if self._cancel_if_pending():
            return True
        with self._condition:
            if self._state != RUNNING:
                return False
            self._stop_asked = True
            children = self._children
        for child in list(children or ()):
            child.request_cancel()
        return True

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
                if not self._aio & AIO_LOOP_DONE:
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
        if self._aio & AIO_CLAIMED:
            assert self._inbox is not None
            self._inbox.ended(self)

    def _faces_agree(self) -> bool:
        """Whether the loop's view is the task's state, whichever thread
        asks: asyncio never had the future, or its loop has seen it end
        (and not cancelled it). Then done(), result()... need not ask which
        loop runs here."""
        aio = self._aio
        return not aio & AIO_CLAIMED or aio & (AIO_LOOP_DONE | AIO_LOOP_CANCELLED) == AIO_LOOP_DONE

    def _loop_state(self) -> str:
        """The future's state as its loop sees it (see "asyncio" above):
        PENDING until the loop has seen it end."""
        aio = self._aio
        if not aio & AIO_LOOP_DONE:
            return PENDING
        if aio & AIO_LOOP_CANCELLED:
            return CANCELLED_AND_NOTIFIED
        return self._state  # type: ignore[no-any-return]

    def _loop_outcome(self, want_result: bool) -> Any:
        """asyncio's result() (``want_result``) or exception(), read from
        the loop's view (see "asyncio" above)."""
        state = self._loop_state()
        if state == PENDING:
            raise asyncio_attr("InvalidStateError")(
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
        if self._aio & AIO_CLAIMED:
            return
        with self._condition:
            aio = self._aio | AIO_CLAIMED
            ended = self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
            if ended and ASYNCIO_SEES_ENDED_AT_ONCE:
                aio |= AIO_LOOP_DONE
            self._aio = aio
        if ended and not ASYNCIO_SEES_ENDED_AT_ONCE:
            assert self._inbox is not None
            self._inbox._post(self)

    def _end_in_loop(self, cancelled: bool) -> list[tuple[Any, Any]] | None:
        """In the loop's thread: the loop sees the future end (``cancelled``:
        by the loop's own cancel()); returns asyncio's callbacks to run.
        None, doing nothing, if the loop had seen it end already."""
        with self._condition:
            if self._aio & AIO_LOOP_DONE:
                return None
            self._aio |= AIO_LOOP_DONE | (AIO_LOOP_CANCELLED if cancelled else 0)
            callbacks, self._aio_callbacks = self._aio_callbacks, None
        return callbacks or []

    def _wait_done(self, timeout: float | None) -> float | None:
        """Wait until done, or ``timeout`` passed, in waits a Ctrl-C always
        interrupts (see :mod:`conexe._signals`); returns the timeout left
        for the stdlib's own wait, which then returns at once."""
        if self._state == PENDING:
            from .helping import help_with  # it imports this module

            if help_with(self):
                return timeout
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
        exc_type = asyncio_attr("CancelledError")
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
        return (yield from asyncio_attr("wrap_future")(self).__await__())

    __iter__ = __await__  # ``yield from future``, as asyncio's futures allow

    def _asyncio_has_it(self) -> bool:
        """Whether this future is asyncio's here: claimed by asyncio, and
        this thread runs its loop (asyncio's rules apply)."""
        return bool(self._aio & AIO_CLAIMED) and self._in_own_loop()

    def _in_own_loop(self) -> bool:
        """Whether this thread is running the future's loop."""
        return self._own_loop_here(adopt=False)

    def _own_loop_here(self, adopt: bool) -> bool:
        """Whether this thread is running the future's loop: the one it was
        submitted from or, with ``adopt``, for a future submitted outside
        any loop, the one running here, which it is bound to from now on."""
        loop = running_loop()
        if loop is None:  # no loop here, as in every worker
            return False
        inbox = self._inbox
        if inbox is None:
            if not adopt:
                return False
            fresh = inbox_for(loop)
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
        worker checks the start deadline (EXPIRED_NOW once it passed);
        close() and fail_queued() end the task either way and don't."""
        with self._condition:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                if check_deadline and self._deadline and time.monotonic() > self._deadline:
                    return EXPIRED_NOW
                return CLAIMED
            if state == FINISHED or state == RUNNING:  # _expire() or a caller got it
                return SKIP_EXPIRED
            return SKIP_CANCELLED

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
