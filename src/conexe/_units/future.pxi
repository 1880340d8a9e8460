cimport cython
from conexe._contract cimport CLAIMED, EXPIRED_NOW, SKIP_CANCELLED, SKIP_EXPIRED
from cpython.pythread cimport (
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from cpython.ref cimport PyObject
from cpython.contextvars cimport PyContext_CopyCurrent

from concurrent.futures import CancelledError, InvalidStateError, Future as _StdFuture

from ._contract import START_DEADLINE_MESSAGE


cdef class FutureBase:
    """The C half of :class:`Future` (fields in _core.pxd)."""

    def __dealloc__(self):
        if self.done_lock != NULL:
            PyThread_free_lock(self.done_lock)
            self.done_lock = NULL

    # -- what concurrent.futures' helpers read --------------------------
    @property
    def _state(self):
        return _STATE_NAMES[state(self)]

    @_state.setter
    def _state(self, value):
        set_state(self, _STATE_NAMES.index(value))

    @property
    def _result(self):
        return self.res

    @property
    def _exception(self):
        return self.exc

    def __setattr__(self, name, value):
        # An attribute could close a cycle, but only through a value the
        # collector sees (asyncio's blocking flag, a bool, never does).
        if PyObject_IS_GC(value):
            gc_track(self)
        # Not object.__setattr__: it refuses a type with its own
        # __setattr__ (CPython's "hackcheck").
        PyObject_GenericSetAttr(self, name, <PyObject *>value)

    def __delattr__(self, name):
        PyObject_GenericSetAttr(self, name, NULL)

    @property
    def _condition(self):
        cdef FutureCondition cond = condition_of(self)
        if cond is None:
            cond = FutureCondition()  # made outside the lock: see _waiters
            with cython.critical_section(self):  # another thread may be setting it
                if self.cond is None:
                    publish_condition(self, cond)
                cond = self.cond
        return cond

    @property
    def _waiters(self):
        cdef Waiters view = Waiters.__new__(Waiters)
        view.fut = self
        return view

    @property
    def _done_callbacks(self):
        gc_track(self)
        cdef list fresh = [] if self.callbacks is None else None  # see _waiters
        with cython.critical_section(self):
            if self.callbacks is None:
                self.callbacks = fresh if fresh is not None else []
            if self.callback is not None:  # the list is all of them, in order
                self.callbacks.insert(0, self.callback)
                self.callback = None
            return self.callbacks

    # -- the public Future API -------------------------------------------
    def __repr__(self):
        name = type(self).__name__
        st = state(self)
        if st == FINISHED:
            if self.exc is not None:
                return "<%s at %#x state=%s raised %s>" % (
                    name, id(self), "finished", type(self.exc).__name__)
            return "<%s at %#x state=%s returned %s>" % (
                name, id(self), "finished", type(self.res).__name__)
        return "<%s at %#x state=%s>" % (name, id(self), _STATE_DESCRIPTIONS[st])

    def cancelled(self):
        """True if the future was cancelled."""
        cdef int st = state(self)
        if not faces_agree(self) and self.asyncio_has_it():
            st = loop_state(self)
        return st == CANCELLED or st == CANCELLED_AND_NOTIFIED

    def running(self):
        """True if the task is running."""
        return state(self) == RUNNING

    def done(self):
        """True if the future was cancelled or finished."""
        if state(self) < CANCELLED:
            return False  # the loop never sees an end before the task's
        if not faces_agree(self) and self.asyncio_has_it():
            return loop_state(self) >= CANCELLED
        return True

    def cancel(self, msg=None):
        """Cancel the task if it has not started; waiters wake at once.

        Inside the event loop it was submitted from, once asyncio has it,
        this is asyncio's cancel (see "asyncio" above): it also cancels a
        running task, whose outcome is then dropped, and ``msg`` is the
        CancelledError's message."""
        if self.asyncio_has_it():
            return self.cancel_in_loop(msg)
        return self.cancel_from(PENDING)

    cdef bint cancel_in_loop(self, object msg) except -1:
        """asyncio's cancel(), in the future's loop: False once the loop has
        seen the future end, else cancelled for the loop (True)."""
        cdef list due
        with cython.critical_section(self):
            if conexe_load_relaxed(&self.aio) & AIO_LOOP_DONE:
                return False
            self.cancel_msg = msg
        # Settled here, in the loop's thread, the loop sees it at once.
        if self.settle(CANCELLED_AND_NOTIFIED, None, None, -1):
            return True
        # The task has ended, but the loop has not seen it yet (its drain
        # is on its way): only the loop's view is cancelled, as asyncio
        # cancels the future wrap_future made while _chain_future's copy of
        # the outcome is on its way (the copy then leaves it cancelled).
        due = []
        self.end_in_loop(True, due)
        schedule_callbacks(self.inbox.loop, due, 0)
        return True

    def request_cancel(self):
        """Cancel the task if it has not started, as ``cancel()`` does; if
        it is running, ask it to stop: ``conexe.current_task()`` tells the
        task (``cancel_requested``), and the tasks it submitted are asked
        in turn. Conexe never stops a running task itself: the task checks
        and returns or raises when it can. False once the task has ended.

            >>> import conexe, threading, time
            >>> def patient():
            ...     while not conexe.current_task().cancel_requested:
            ...         time.sleep(0.001)
            ...     return "stopped when asked"
            >>> with conexe.ConcurrentExecutor(1) as ex:
            ...     fut = ex.submit(patient)
            ...     while not fut.running():
            ...         time.sleep(0.001)
            ...     fut.cancel(), fut.request_cancel(), fut.result()
            (False, True, 'stopped when asked')
        """
        cdef list children
        if self.cancel_from(PENDING):
            return True
        with cython.critical_section(self):
            if state(self) != RUNNING:
                return False
            conexe_store_release(&self.stop_asked, 1)  # the task reads it unlocked
            children = self.children
        if children:
            for child in list(children):
                (<FutureBase>child).request_cancel()
        return True

    @property
    def _stop_asked(self):
        """Whether request_cancel() asked the running task to stop."""
        return conexe_load_acquire(&self.stop_asked) != 0

    @property
    def _run_deadline(self):
        """The deadline the task sees (a time.monotonic() value), 0.0: none."""
        return self.run_deadline

    def _cancel_if_pending(self):
        """concurrent.futures' cancel() wherever it is called from: never
        stops a running task (for conexe's own "cancel what hasn't
        started", e.g. a group's, on futures asyncio may have)."""
        return self.cancel_from(PENDING)

    cdef bint cancel_from(self, int expected) except -1:
        """Cancel if in state ``expected`` (PENDING for cancel(); RUNNING
        for a task close() took off a lane). Waiters and callbacks are
        notified; a queued task's arguments are released."""
        # One step to cancelled: going back through PENDING would let a
        # start deadline's _expire() fail a task close() already counted.
        if self.settle(CANCELLED_AND_NOTIFIED, None, None, expected):
            return True
        # Already cancelled counts as cancelled, unless close() is asking
        # about a task it took.
        return expected == PENDING and (
            state(self) == CANCELLED or state(self) == CANCELLED_AND_NOTIFIED)

    def set_running_or_notify_cancel(self):
        """Mark the future running (True), or, if it was cancelled, notify
        its waiters and return False."""
        cdef FutureCondition cond
        cdef list waiters = None
        cdef object one = None
        cdef int st
        cond = condition_of(self)
        if cond is not None:
            cond.take(-1.0)  # as settle(): wait() may be installing a waiter
        try:
            with cython.critical_section(self):
                st = state(self)
                if st == PENDING:
                    set_state(self, RUNNING)
                    return True
                if st == CANCELLED:
                    set_state(self, CANCELLED_AND_NOTIFIED)
                    one = self.waiter
                    waiters = self.waiters
                elif st == CANCELLED_AND_NOTIFIED:
                    return False
            if st != CANCELLED:
                _LOGGER.critical("Future %s in unexpected state: %s", id(self), _STATE_NAMES[st])
                raise RuntimeError("Future in unexpected state")
            notify_waiters(one, waiters, self, NOTIFY_CANCELLED)
            if cond is not None:
                cond.notify_waiting()
            return False
        finally:
            if cond is not None:
                cond.drop()

    def set_result(self, result):
        """Set the result; waiters wake and callbacks run."""
        self.complete(FINISHED, result, None)

    def set_exception(self, exception):
        """Set the exception; waiters wake and callbacks run."""
        self.complete(FINISHED, None, exception)

    def add_done_callback(self, fn, *, context=None):
        """Call ``fn(future)`` when done (now, if it already is), in the
        thread that completes it. Added by asyncio inside the future's own
        loop, ``fn`` runs in that loop instead (scheduled like an asyncio
        future's callback, in ``context``)."""
        if self.asyncio_has_it():
            if context is None:
                context = PyContext_CopyCurrent()
            # A second one needs the list, allocated outside the lock (see
            # below): asyncio's Task adds one, and a gathered batch in
            # flight is that many lists fewer for the GC's full passes.
            if (self.store_aio_callback(fn, context, None)
                    or self.store_aio_callback(fn, context, [fn, context])):
                return
            self.inbox.loop.call_soon(fn, self, context=context)
            return
        if context is not None:
            fn = _InContext(fn, context)
        # Not gc_track(self): a future the engine made untracked is always
        # settled (run, cancelled, failed) or re-tracked by the engine, and
        # settling drops its callbacks, so a cycle through a callback can't
        # outlive it; any other future is tracked already.
        if self.store_callback(fn, None):
            return
        # A second callback: the list is allocated outside the lock (see
        # _waiters), since a GC pass run by the allocation could let the
        # task complete between the state check and the store, and the
        # callback would never run.
        if self.store_callback(fn, [fn]):
            return
        try:
            fn(self)
        except Exception:
            _LOGGER.exception("exception calling callback for %r", self)

    cdef bint store_callback(self, object fn, list fresh) except -1:
        """Keep ``fn`` to call when done: in the first-callback slot, or
        appended to the list after it (``fresh``, ``[fn]``, if there is no
        list yet; None: only if that takes no allocation). False if the
        future is done (the caller runs ``fn``) or a list is needed."""
        with cython.critical_section(self):
            if state(self) >= CANCELLED:
                return False
            if self.callbacks is not None:  # after whatever the slot holds
                self.callbacks.append(fn)
                return True
            if self.callback is None:
                self.callback = fn
                return True
            if fresh is None:
                return False
            self.callbacks = fresh
            return True

    cdef bint store_aio_callback(self, object fn, object context, list fresh) except -1:
        """store_callback() for asyncio's callbacks, each with its context:
        in the first slot, or after the others (``fresh``, ``[fn,
        context]``, if there is no list yet). False if the loop has seen
        the future end (the caller schedules ``fn``) or a list is needed."""
        with cython.critical_section(self):
            if conexe_load_relaxed(&self.aio) & AIO_LOOP_DONE:
                return False
            if self.aio_callbacks is not None:
                self.aio_callbacks.append(fn)
                self.aio_callbacks.append(context)
                return True
            if self.aio_fn is None:
                self.aio_fn = fn
                self.aio_ctx = context
                return True
            if fresh is None:
                return False
            self.aio_callbacks = fresh
            return True

    def remove_done_callback(self, fn):
        """Remove every registration of ``fn``; returns how many there were
        (asyncio's method, which asyncio.wait() and wait_for() use)."""
        cdef Py_ssize_t removed = 0, i
        cdef list kept
        with cython.critical_section(self):
            if self.callback is not None and callback_is(self.callback, fn):
                self.callback = None
                removed += 1
            if self.callbacks:
                kept = [cb for cb in self.callbacks
                        if not callback_is(cb, fn)]
                removed += len(self.callbacks) - len(kept)
                self.callbacks = kept or None
            if self.aio_fn is not None and self.aio_fn == fn:
                self.aio_fn = None
                self.aio_ctx = None
                removed += 1
            if self.aio_callbacks:
                kept = []
                for i in range(0, len(self.aio_callbacks), 2):
                    if self.aio_callbacks[i] == fn:
                        removed += 1
                    else:
                        kept.append(self.aio_callbacks[i])
                        kept.append(self.aio_callbacks[i + 1])
                self.aio_callbacks = kept or None
        return removed

    # -- asyncio's future protocol (see "asyncio" above) -------------------
    @property
    def _asyncio_future_blocking(self):
        # asyncio.isfuture() reads this: not None means "an asyncio future
        # of get_loop()". Only true inside the future's own loop (see
        # "asyncio" above); reading it there hands the future to asyncio.
        if not self.own_loop_here(True):
            return None
        self.note_claimed()
        return self.aio_blocking

    @_asyncio_future_blocking.setter
    def _asyncio_future_blocking(self, value):
        self.aio_blocking = bool(value)

    @property
    def _cancel_message(self):
        return self.cancel_msg

    @_cancel_message.setter
    def _cancel_message(self, value):
        self.cancel_msg = value

    def get_loop(self):
        """The future's event loop: the one the task was submitted from,
        or the first one asyncio looked at it in."""
        if self.inbox is None:
            raise RuntimeError("this future was not submitted from a running event loop")
        return self.inbox.loop

    def _make_cancelled_error(self):
        exc_type = asyncio_attr("CancelledError")
        return exc_type() if self.cancel_msg is None else exc_type(self.cancel_msg)

    def __await__(self):
        """``await future`` in any event loop; in its own loop (see
        get_loop()) without a second future in between."""
        cdef AwaitInOwnLoop it
        if self.own_loop_here(True):
            self.note_claimed()
            it = AwaitInOwnLoop.__new__(AwaitInOwnLoop)
            it.fut = self
            return it
        return asyncio_attr("wrap_future")(self).__await__()

    def __iter__(self):
        """``yield from future`` in a generator-based coroutine, as
        asyncio's futures allow: the same as ``__await__``."""
        return self.__await__()

    def result(self, timeout=None):
        """Wait (at most ``timeout`` seconds) and return the result, or
        raise the task's exception, CancelledError or TimeoutError.

        In its loop, once asyncio has it, this is asyncio's result(): it
        never waits, and raises asyncio.InvalidStateError until the loop has
        seen the future end."""
        cdef int st = state(self)
        # A finished future both views agree on needs no loop lookup; a
        # cancelled one raises asyncio's error in its loop.
        if (st != FINISHED or not faces_agree(self)) and self.asyncio_has_it():
            return self.loop_outcome(True)
        if st == FINISHED:
            if self.exc is not None:
                self._raise()
            return self.res
        if st == PENDING and help_with(self):
            st = state(self)
        if st < CANCELLED:
            if not self.wait_done(timeout_arg(timeout)):
                raise TimeoutError()
            st = state(self)
        if st == CANCELLED or st == CANCELLED_AND_NOTIFIED:
            raise CancelledError()
        if self.exc is not None:
            self._raise()
        return self.res

    def exception(self, timeout=None):
        """Wait like :meth:`result`; return the exception (None if none)."""
        cdef int st = state(self)
        if (st != FINISHED or not faces_agree(self)) and self.asyncio_has_it():
            return self.loop_outcome(False)
        if st == PENDING and help_with(self):
            st = state(self)
        if st < CANCELLED:
            if not self.wait_done(timeout_arg(timeout)):
                raise TimeoutError()
            st = state(self)
        if st == CANCELLED or st == CANCELLED_AND_NOTIFIED:
            raise CancelledError()
        return self.exc

    def _raise(self):
        # Like concurrent.futures: raise, then break the reference cycle
        # the traceback would make with this frame.
        try:
            raise self.exc
        finally:
            self = None

    # -- core-private -----------------------------------------------------
    cdef object loop_outcome(self, bint want_result):
        """asyncio's result() (``want_result``) or exception(), read from
        the loop's view (see "asyncio" above)."""
        cdef int st = loop_state(self)
        if st < CANCELLED:
            raise asyncio_attr("InvalidStateError")(
                "Result is not set." if want_result else "Exception is not set.")
        if st != FINISHED:
            raise self._make_cancelled_error()
        if not want_result:
            return self.exc
        if self.exc is not None:
            self._raise()
        return self.res

    cdef int note_claimed(self) except -1:
        """asyncio has the future from now on (its loop's thread calls
        this). One that already ended is seen ended by its loop when the
        future ``wrap_future`` makes would be (ASYNCIO_SEES_ENDED_AT_ONCE): at once,
        or, before 3.14, on the loop's next turn, as a future ending now in
        another thread would be."""
        cdef int flags
        cdef bint ended
        if conexe_load_relaxed(&self.aio) & AIO_CLAIMED:
            return 0
        with cython.critical_section(self):  # settle() reads the flag under it
            flags = self.aio | AIO_CLAIMED
            ended = state(self) >= CANCELLED
            if ended and ENDED_SEEN_AT_ONCE:
                flags |= AIO_LOOP_DONE
            conexe_store_release(&self.aio, flags)
        if ended and not ENDED_SEEN_AT_ONCE:
            self.inbox.post(self)
        return 0

    cdef bint end_in_loop(self, bint cancelled, list due) except -1:
        """In the loop's thread: the loop sees the future end (``cancelled``:
        by the loop's own cancel()), and asyncio's callbacks go to ``due``
        (flat future, fn, context, more) to be run. False, doing nothing,
        if the loop had seen it end already."""
        cdef object fn, ctx
        cdef list more
        cdef int flags
        with cython.critical_section(self):
            flags = self.aio
            if flags & AIO_LOOP_DONE:
                return False
            flags |= AIO_LOOP_DONE
            if cancelled:
                flags |= AIO_LOOP_CANCELLED
            conexe_store_release(&self.aio, flags)
            fn = self.aio_fn
            ctx = self.aio_ctx
            more = self.aio_callbacks
            self.aio_fn = self.aio_ctx = None
            self.aio_callbacks = None
        if fn is not None or more:
            due.append(self)
            due.append(fn)
            due.append(ctx)
            due.append(more)
        return True

    cdef bint asyncio_has_it(self) except -1:
        """Whether this future is asyncio's here: claimed by asyncio, and
        this thread runs its loop (asyncio's rules apply)."""
        return conexe_load_relaxed(&self.aio) & AIO_CLAIMED and self.in_own_loop()

    cdef bint in_own_loop(self) except -1:
        """Whether this thread is running the future's loop."""
        return self.own_loop_here(False)

    cdef bint own_loop_here(self, bint adopt) except -1:
        """Whether this thread is running the future's loop: the one it was
        submitted from or, with ``adopt``, for a future submitted outside
        any loop, the one running here, which it is bound to from now on."""
        cdef object loop = running_loop()
        cdef LoopInbox inbox, fresh
        if loop is None:  # no loop here, as in every worker: inbox unread
            return False
        # Under the future's lock: another loop's thread may be adopting it.
        with cython.critical_section(self):
            inbox = self.inbox
        if inbox is None:
            if not adopt:
                return False
            fresh = inbox_for(loop)  # outside the lock: it may allocate
            with cython.critical_section(self):
                if self.inbox is None:
                    self.inbox = fresh
                inbox = self.inbox
        return inbox.loop is loop

    cdef int wait_done(self, double timeout) except -1:
        """Block until done. Returns 1 when done, 0 on timeout."""
        cdef PyThread_type_lock lock
        with cython.critical_section(self):
            if state(self) >= CANCELLED:
                return 1
            if self.done_lock == NULL:
                self.done_lock = new_locked_lock()
            lock = self.done_lock
        if acquire_timed(lock, timeout) == 1:
            PyThread_release_lock(lock)  # pass it on to the next waiter
            return 1
        return state(self) >= CANCELLED

    cdef int complete(self, int new_state, object res, object exc) except -1:
        if exc is not None or PyObject_IS_GC(res):
            gc_track(self)
        if not self.settle(new_state, res, exc, -1):
            raise InvalidStateError("%s: %r" % (_STATE_NAMES[state(self)], self))
        return 0

    cdef bint settle(self, int new_state, object res, object exc, int expected) except -1:
        """Move to the done ``new_state`` (FINISHED with ``res``/``exc``, or
        CANCELLED_AND_NOTIFIED) and wake everyone: the blocked callers, the
        concurrent.futures waiters, the Condition's waiters, the callbacks.
        Only from state ``expected``, or (-1) from any state that isn't
        done yet. Returns False, changing nothing, otherwise.

        If wait()/as_completed() ever asked for ``_condition``, it is held
        across the change and the waiters' notification, as they expect;
        it is re-checked under the future's own lock in case one was made
        meanwhile. Without one, nobody can be installing a waiter."""
        cdef FutureCondition cond
        cdef list waiters, cbs
        cdef object one = None, first_cb = None
        cdef PyThread_type_lock lock = NULL
        cdef bint again, moved = False, claimed = False
        cdef int how
        while True:
            cond = condition_of(self)  # _condition may be making one: see again
            if cond is not None:
                cond.take(-1.0)
            try:
                with cython.critical_section(self):
                    again = self.cond is not cond
                    if not again and (
                        state(self) == expected if expected >= 0 else state(self) < CANCELLED
                    ):
                        moved = True
                        self.res = res
                        self.exc = exc
                        # Dropped with the future, by its holder: see refs.h.
                        conexe_hand_over(res)
                        if exc is not None:
                            conexe_hand_over(exc)
                        set_state(self, new_state)
                        lock = self.done_lock
                        one = self.waiter
                        waiters = self.waiters
                        first_cb = self.callback
                        self.callback = None
                        cbs = self.callbacks
                        self.callbacks = None
                        # asyncio's callbacks stay until the loop sees the
                        # end (LoopInbox.ended): it may cancel before then.
                        claimed = self.aio & AIO_CLAIMED
                if again:
                    continue
                if not moved:
                    return False
                if new_state == CANCELLED_AND_NOTIFIED or expected == PENDING:
                    self.release_task()  # it will never run
                if lock != NULL:
                    PyThread_release_lock(lock)
                if one is not None or waiters:
                    if new_state == CANCELLED_AND_NOTIFIED:
                        how = NOTIFY_CANCELLED
                    elif exc is None:
                        how = NOTIFY_RESULT
                    else:
                        how = NOTIFY_EXCEPTION
                    notify_waiters(one, waiters, self, how)
                if cond is not None:
                    cond.notify_waiting()
            finally:
                if cond is not None:
                    cond.drop()
            break
        if first_cb is not None:
            invoke_callback(self, first_cb)
        if cbs:
            invoke_callbacks(self, cbs)
        if claimed:
            self.inbox.ended(self)
        return True

    cdef void release_task(self):
        self.take_task()

    cdef tuple take_task(self):
        """Hand over the task (fn, args, kwargs, context) and forget it.
        Under the future's lock: a worker starting the task and asyncio
        cancelling it may both let go of it at once."""
        cdef tuple task
        with cython.critical_section(self):
            task = (self.fn, self.args, self.kwargs, self.ctx)
            self.fn = None
            self.args = None
            self.kwargs = None
            self.ctx = None
        return task  # the references drop in the caller, outside the lock

    cdef int claim(self, bint check_deadline):
        """Someone took this future off a lane: PENDING -> RUNNING. A
        worker checks the start deadline (EXPIRED_NOW once it passed);
        close() and fail_queued() end the task either way and don't."""
        with cython.critical_section(self):
            st = state(self)
            if st == PENDING:
                set_state(self, RUNNING)
                if check_deadline and self.deadline != 0.0 and now_s() > self.deadline:
                    return EXPIRED_NOW
                return CLAIMED
            if st == FINISHED or st == RUNNING:  # _expire() or a caller got it
                return SKIP_EXPIRED
            return SKIP_CANCELLED

    cdef void cancel_claimed(self):
        try:
            self.cancel_from(RUNNING)
        except BaseException:
            _log.exception("cancelling a queued task failed")

    cdef void fail_started(self, object exc):
        self.release_task()
        try:
            self.complete(FINISHED, None, exc)
        except InvalidStateError:  # someone completed it by hand
            pass
        except BaseException:
            _log.exception("completing a future failed")

    cdef void finish_quietly(self, bint ok, object value):
        """Complete from a worker: never raise into the worker loop."""
        try:
            if ok:
                self.complete(FINISHED, value, None)
            else:
                self.complete(FINISHED, None, value)
        except InvalidStateError:  # someone completed it by hand
            pass
        except BaseException:
            _log.exception("a done-callback raised; the worker goes on")

    def _expire(self):
        """Fail a still-queued task with TimeoutError (its start deadline
        passed). Returns False if it already started or ended."""
        cdef object err = TimeoutError(START_DEADLINE_MESSAGE)
        gc_track(self)  # it holds an exception now (a traceback may cycle)
        # PENDING -> FINISHED in one step, as cancel_from(): through RUNNING,
        # a worker or close() meeting the task in between would count it
        # failed and move on (shutdown() returning) before it was done.
        return self.settle(FINISHED, None, err, PENDING)


cdef int invoke_callback(FutureBase fut, object cb) except -1:
    try:
        cb(fut)
    except Exception:
        _LOGGER.exception("exception calling callback for %r", fut)
    return 0


cdef int invoke_callbacks(FutureBase fut, list cbs) except -1:
    for cb in cbs:
        invoke_callback(fut, cb)
    return 0


cdef inline bint callback_is(object cb, object fn) except -1:
    # A callback given a context is kept wrapped; remove_done_callback
    # is given what was added.
    return cb == fn or (type(cb) is _InContext and (<_InContext>cb).fn == fn)


class Future(FutureBase, _StdFuture):
    """The future every conexe executor returns: a real
    :class:`concurrent.futures.Future`, so ``concurrent.futures.wait``,
    ``as_completed``, ``asyncio.wrap_future`` and ``run_in_executor`` accept it.

    Unlike the stdlib one, ``cancel()`` on a queued task notifies waiters at
    once (``wait()`` and ``as_completed()`` see it done immediately)::

        >>> f = Future()
        >>> f.cancel(), f.done()
        (True, True)
    """

    def __init__(self):
        # Deliberately not concurrent.futures.Future.__init__: its
        # Condition is made only if wait()/as_completed() ask for it.
        pass


cdef object FutureType = Future


cdef inline FutureBase new_future(object fn, object args, object kwargs):
    # On GIL builds, made untracked by the cyclic GC: a queued future holds
    # no cycle the engine doesn't break by running it, and a large batch of
    # tracked futures in flight would cost more in young-generation passes
    # than everything else together. gc_track() re-tracks it once it could
    # join a cycle (a container result, an exception, callbacks, waiters,
    # attributes).
    # Free-threaded builds keep it tracked. Their collector has no young
    # generation: each pass walks the whole heap, untracked objects
    # included, and it runs once allocations since the last pass exceed
    # max(2000, a quarter of the tracked survivors). Untracked futures
    # never count as survivors, so a batch in flight would get a full
    # stop-the-world pass every 2000 submits; tracked, the threshold grows
    # with them (docs/freethreading.md has the measurements).
    cdef FutureBase fut = <FutureBase>conexe_new_instance(FutureType)
    if not CONEXE_FREE_THREADED:
        PyObject_GC_UnTrack(fut)
        fut.untracked = 1  # not yet seen by another thread: a plain store
    fut.fn = fn
    fut.args = args
    fut.kwargs = kwargs if kwargs else None
    # The worker that runs the task drops these: see conexe/refs.h.
    conexe_hand_over(fn)
    conexe_hand_over(args)
    if kwargs:
        conexe_hand_over(kwargs)
    return fut


@cython.final
cdef class _InContext:
    """A done-callback given a ``context`` outside asyncio's loop: runs
    ``fn`` in it, as asyncio would."""

    cdef readonly object fn
    cdef object ctx

    def __cinit__(self, fn, ctx):
        self.fn = fn
        self.ctx = ctx

    def __call__(self, fut):
        return self.ctx.run(self.fn, fut)
