# cython: language_level=3
# cython: boundscheck=False, wraparound=False, cdivision=True
# cython: freethreading_compatible=True
"""The Cython core of conexe (the pure-Python twin is ``_core_py.py``:
same names, behaviour and messages; read it first, it is the reference).

* ``Future``: a real ``concurrent.futures.Future`` (a Python subclass of
  ``FutureBase`` and the stdlib class, so ``wait``, ``as_completed`` and
  asyncio accept it) whose state lives in C fields. It makes no Condition
  unless ``wait()``/``as_completed()`` ask for one, and no lock unless a
  caller blocks on it.
* ``Engine``: priority lanes of ring buffers (include/conexe/ring.h), the
  key-sharded dispatch map, counters, latency histograms and the worker
  loop. One engine lock guards it all; it is a PyThread lock taken with a
  non-blocking try first and only then with the GIL released, and it is
  never held across a call that could block or wait for the GIL.
* Workers park on their own lock with the GIL released; a parked worker is
  woken only while queued tasks outnumber the workers already on their way.
* Waits in the caller's thread loop on their predicate with the GIL
  released and wake on signals, so Ctrl-C raises KeyboardInterrupt.

    >>> import threading
    >>> engine = Engine(); worker = Worker(); engine.add_workers(1)
    >>> t = threading.Thread(target=engine.worker_loop, args=(worker,)); t.start()
    >>> engine.submit(pow, (2, 10), None).result()
    1024
    >>> engine.close(); t.join()
    0
"""

cimport cython
from cpython.pythread cimport (
    PY_LOCK_ACQUIRED,
    PY_LOCK_INTR,
    PyLockStatus,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from cpython.object cimport PyCallable_Check
from cpython.ref cimport PyObject, Py_DECREF
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.contextvars cimport PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit
from libc.math cimport log2
from libc.string cimport memmove, memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import logging
import math
import sys
import threading
import weakref
from collections import deque
from concurrent.futures import CancelledError, InvalidStateError
from concurrent.futures import Future as _StdFuture

from ._errors import MaxRetriesExceeded, QueueFull

cdef extern from "conexe/atomic.h" nogil:
    int conexe_load_acquire(const int *p)
    void conexe_store_release(int *p, int value)

cdef extern from "Python.h":
    void PyObject_GC_Track(object op)
    void PyObject_GC_UnTrack(object op)
    int PyObject_GC_IsTracked(object op)
    int PyObject_IS_GC(object op)
    PyLockStatus PyThread_acquire_lock_timed(
        PyThread_type_lock lock, long long microseconds, int intr_flag) nogil
    int Py_MakePendingCalls() except -1
    int PyObject_GenericSetAttr(object o, object name, PyObject *value) except -1

__all__ = ["ChunkItemError", "Engine", "Future", "Worker", "IMPLEMENTATION", "run_chunk"]

IMPLEMENTATION = "c"

_LOGGER = logging.getLogger("concurrent.futures")
_log = logging.getLogger("conexe")

# Future states; _STATE_NAMES are concurrent.futures' own strings.
DEF PENDING = 0
DEF RUNNING = 1
DEF CANCELLED = 2
DEF CANCELLED_AND_NOTIFIED = 3
DEF FINISHED = 4
_STATE_NAMES = ("PENDING", "RUNNING", "CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED")
# What repr() shows, as concurrent.futures' _STATE_TO_DESCRIPTION_MAP.
_STATE_DESCRIPTIONS = ("pending", "running", "cancelled", "cancelled", "finished")

# Outcomes of claiming a queued future.
DEF SKIP_CANCELLED = 0
DEF CLAIMED = 1
DEF SKIP_EXPIRED = 2
DEF EXPIRED_NOW = 3

EXIT_SHUTDOWN = "shutdown"
EXIT_RETIRE = "retire"
EXIT_REPLACE = "replace"

DEF HIST_BUCKETS = 256
DEF HIST_PER_OCTAVE = 4
HIST_BUCKETS_PY = HIST_BUCKETS
KEY_SHARDS = 64
DEF KEY_SHARD_MASK = 63

# Longest single lock wait, in microseconds (PY_TIMEOUT_MAX is larger on
# every platform we build for); longer waits simply loop.
DEF MAX_WAIT_US = 1000000000000

# How long an idle worker polls for new work before parking, on a
# free-threaded build with the GIL off (Engine.spin_for_work_locked). A
# producer submitting tiny tasks is a few microseconds apart per submit.
DEF SPIN_NS = 50000
# None on a GIL build: sys._is_gil_enabled() tells whether the GIL is off now
# (an incompatible extension imported later can turn it back on).
_is_gil_enabled = getattr(sys, "_is_gil_enabled", None)

_START_DEADLINE_MESSAGE = "task did not start before its start deadline"


cdef inline object ring_pop(conexe_ring *r):
    """Pop the ring's head (taking over its reference), or None."""
    cdef PyObject *p = conexe_ring_pop(r)
    if p == NULL:
        return None
    cdef object item = <object>p  # a new reference...
    Py_DECREF(item)               # ...so drop the one the ring held
    return item


cdef inline long long now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline double now_s() noexcept nogil:
    # The clock time.monotonic() reads on Linux, so deadlines computed in
    # Python compare directly.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef inline int hist_index(long long ns) noexcept nogil:
    if ns < 1:
        return 0
    cdef int i = <int>(log2(<double>ns) * HIST_PER_OCTAVE)
    return i if i < HIST_BUCKETS else HIST_BUCKETS - 1


cdef inline void gc_track(object op) noexcept:
    # Futures are created untracked (see new_future); this puts one under
    # the cyclic GC as soon as it could be part of a reference cycle.
    if not PyObject_GC_IsTracked(op):
        PyObject_GC_Track(op)


cdef inline int state(FutureBase fut) noexcept:
    # Read without the future's lock (see include/conexe/atomic.h).
    return conexe_load_acquire(&fut.st)


cdef inline void set_state(FutureBase fut, int value) noexcept:
    conexe_store_release(&fut.st, value)


cdef int acquire_timed(PyThread_type_lock lock, double timeout) except -1:
    """Acquire ``lock``; ``timeout`` < 0 waits forever. Returns 1 if
    acquired, 0 on timeout, -1 with an exception set if a signal handler
    raised (Ctrl-C). The GIL is released only if the lock is taken."""
    cdef PyLockStatus r
    cdef long long us
    cdef double deadline = 0.0
    if PyThread_acquire_lock_timed(lock, 0, 0) == PY_LOCK_ACQUIRED:
        return 1
    if timeout == 0.0:
        return 0
    if timeout > 0.0:
        deadline = now_s() + timeout
    while True:
        if timeout < 0.0:
            us = -1
        else:
            us = <long long>((deadline - now_s()) * 1e6)
            if us <= 0:
                return 0
            if us > MAX_WAIT_US:
                us = MAX_WAIT_US
        with nogil:
            r = PyThread_acquire_lock_timed(lock, us, 1)
        if r == PY_LOCK_ACQUIRED:
            return 1
        if r == PY_LOCK_INTR:
            Py_MakePendingCalls()  # runs signal handlers; raises on Ctrl-C
            continue
        if timeout < 0.0:
            continue
        if now_s() >= deadline:
            return 0


cdef double timeout_arg(object timeout) except? -2.0:
    if timeout is None:
        return -1.0
    cdef double t = timeout
    return t if t > 0.0 else 0.0


cdef PyThread_type_lock new_locked_lock() except NULL:
    cdef PyThread_type_lock lock = PyThread_allocate_lock()
    if lock == NULL:
        raise MemoryError("cannot allocate a lock")
    PyThread_acquire_lock(lock, 0)
    return lock


# -- asyncio ------------------------------------------------------------------
# A future submitted from inside a running event loop is bound to that loop
# (its ``inbox``). Until asyncio looks at it, it is a plain
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

DEF AIO_CLAIMED = 1   # asyncio has seen the future (isfuture() was True)
DEF AIO_BLOCKING = 2  # _asyncio_future_blocking

cdef object _running_loop_fn = None
cdef object _sys_modules = sys.modules


cdef object running_loop():
    """The event loop running in this thread, or None; asyncio is not
    imported for it (no loop can run before something imported it)."""
    global _running_loop_fn
    cdef object get = _running_loop_fn
    if get is None:
        get = getattr(_sys_modules.get("asyncio.events"), "_get_running_loop", None)
        if get is None:
            return None
        with cython.critical_section(_inboxes):
            _running_loop_fn = get
    return get()


cdef object asyncio_attr(str name):
    return getattr(_sys_modules["asyncio"], name)


cdef object _inboxes = weakref.WeakValueDictionary()  # id(loop) -> LoopInbox
cdef object _last_inbox = None  # weak reference to the last inbox used


cdef LoopInbox inbox_for(object loop):
    """The loop's inbox (one per loop, alive while a future bound to the
    loop is). The inbox holds its loop, so while it lives id(loop) is the
    loop's alone."""
    global _last_inbox
    cdef LoopInbox inbox
    with cython.critical_section(_inboxes):  # the cache is shared by all threads
        if _last_inbox is not None:
            inbox = _last_inbox()
            if inbox is not None and inbox.loop is loop:
                return inbox
        inbox = _inboxes.get(id(loop))
        if inbox is None:
            inbox = LoopInbox(loop)
            _inboxes[id(loop)] = inbox
        _last_inbox = inbox.ref
        return inbox


cdef inline void bind_loop(FutureBase fut) except *:
    cdef object loop = running_loop()
    if loop is not None:
        fut.inbox = inbox_for(loop)


cdef class LoopInbox:
    """Completed loop-bound futures on their way to the loop, with the
    asyncio callbacks to run there. A completing thread appends and, only
    if no drain is pending, schedules one with ``call_soon_threadsafe``;
    the drain runs everything that arrived meanwhile."""

    def __cinit__(self, loop):
        self.loop = loop
        self.items = []
        self.scheduled = False
        self.ref = weakref.ref(self)

    cdef int deliver(self, FutureBase fut, list callbacks) except -1:
        """Run ``callbacks`` (asyncio's, for the now done ``fut``) in the
        loop: scheduled right away in the loop's own thread, as an asyncio
        future does, or posted to the inbox from any other."""
        cdef Py_ssize_t i
        if running_loop() is self.loop:
            call_soon = self.loop.call_soon
            for i in range(0, len(callbacks), 2):
                call_soon(callbacks[i], fut, context=callbacks[i + 1])
        else:
            self.post(fut, callbacks)
        return 0

    cdef void post(self, FutureBase fut, list callbacks):
        cdef bint wake
        gc_track(fut)  # fut -> inbox -> items -> fut, until drained
        with cython.critical_section(self):
            self.items.append(fut)
            self.items.append(callbacks)
            wake = not self.scheduled
            self.scheduled = True
        if not wake:
            return
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop is closed: asyncio drops callbacks it can no longer
            # run (an asyncio future of a closed loop can't even complete).
            with cython.critical_section(self):
                self.items = []
                self.scheduled = False
        except BaseException:
            _log.exception("waking the event loop failed")

    def _drain(self):
        cdef list items, cbs
        cdef Py_ssize_t i, j, n
        cdef object fut, fn, ctx
        with cython.critical_section(self):
            items = self.items
            self.items = []
            self.scheduled = False
        n = len(items)
        i = 0
        while i < n:
            fut = items[i]
            cbs = <list>items[i + 1]
            i += 2
            for j in range(0, len(cbs), 2):
                fn = cbs[j]
                ctx = cbs[j + 1]
                try:
                    PyContext_Enter(ctx)
                    try:
                        fn(fut)
                    finally:
                        PyContext_Exit(ctx)
                except (SystemExit, KeyboardInterrupt):
                    # Out of the loop, as asyncio lets them; what is left
                    # is delivered by the next drain.
                    rest = cbs[j + 2:]
                    if rest:
                        self.post(<FutureBase>fut, rest)
                    while i < n:
                        self.post(<FutureBase>items[i], <list>items[i + 1])
                        i += 2
                    raise
                except BaseException as exc:
                    self.loop.call_exception_handler({
                        "message": "Exception in callback %r" % (fn,),
                        "exception": exc,
                        "future": fut,
                    })


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
        gc_track(self)  # an attribute could close a cycle
        # Not object.__setattr__: it refuses a type with its own
        # __setattr__ (CPython's "hackcheck").
        PyObject_GenericSetAttr(self, name, <PyObject *>value)

    def __delattr__(self, name):
        PyObject_GenericSetAttr(self, name, NULL)

    @property
    def _condition(self):
        gc_track(self)
        with cython.critical_section(self):
            if self.cond is None:
                self.cond = threading.Condition()
            return self.cond

    @property
    def _waiters(self):
        gc_track(self)
        with cython.critical_section(self):
            if self.waiters is None:
                self.waiters = []
            return self.waiters

    @property
    def _done_callbacks(self):
        gc_track(self)
        with cython.critical_section(self):
            if self.callbacks is None:
                self.callbacks = []
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
        return st == CANCELLED or st == CANCELLED_AND_NOTIFIED

    def running(self):
        """True if the task is running."""
        return state(self) == RUNNING

    def done(self):
        """True if the future was cancelled or finished."""
        return state(self) >= CANCELLED

    def cancel(self, msg=None):
        """Cancel the task if it has not started; waiters wake at once.

        Inside the event loop it was submitted from, once asyncio has it,
        this is asyncio's cancel (see "asyncio" above): it also cancels a
        running task, whose outcome is then dropped, and ``msg`` is the
        CancelledError's message."""
        if self.asyncio_has_it():
            with cython.critical_section(self):
                if state(self) >= CANCELLED:
                    return False
                self.cancel_msg = msg
            return self.settle(CANCELLED_AND_NOTIFIED, None, None, -1)
        return self.cancel_from(PENDING)

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
        cdef object cond = None
        cdef bint has_waiters
        with cython.critical_section(self):
            has_waiters = self.waiters is not None
        if has_waiters:
            cond = self._condition
        cdef list waiters
        if cond is not None:
            cond.acquire()
        try:
            with cython.critical_section(self):
                st = state(self)
                if st == PENDING:
                    set_state(self, RUNNING)
                    return True
                if st == CANCELLED:
                    set_state(self, CANCELLED_AND_NOTIFIED)
                    waiters = self.waiters
                elif st == CANCELLED_AND_NOTIFIED:
                    return False
                else:
                    waiters = None
            if st != CANCELLED:
                _LOGGER.critical("Future %s in unexpected state: %s", id(self), _STATE_NAMES[st])
                raise RuntimeError("Future in unexpected state")
            if waiters:
                for w in waiters:
                    w.add_cancelled(self)
            return False
        finally:
            if cond is not None:
                cond.release()

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
        gc_track(self)
        if self.asyncio_has_it():
            if context is None:
                context = PyContext_CopyCurrent()
            with cython.critical_section(self):
                if state(self) < CANCELLED:
                    if self.aio_callbacks is None:
                        self.aio_callbacks = [fn, context]
                    else:
                        self.aio_callbacks.append(fn)
                        self.aio_callbacks.append(context)
                    return
            self.inbox.loop.call_soon(fn, self, context=context)
            return
        if context is not None:
            fn = _InContext(fn, context)
        with cython.critical_section(self):
            if state(self) < CANCELLED:
                if self.callbacks is None:
                    self.callbacks = [fn]
                else:
                    self.callbacks.append(fn)
                return
        try:
            fn(self)
        except Exception:
            _LOGGER.exception("exception calling callback for %r", self)

    def remove_done_callback(self, fn):
        """Remove every registration of ``fn``; returns how many there were
        (asyncio's method, which asyncio.wait() and wait_for() use)."""
        cdef Py_ssize_t removed = 0, i
        cdef list kept
        with cython.critical_section(self):
            if self.callbacks:
                kept = [cb for cb in self.callbacks
                        if not (cb == fn or (type(cb) is _InContext and (<_InContext>cb).fn == fn))]
                removed += len(self.callbacks) - len(kept)
                self.callbacks = kept or None
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
        # of get_loop()". Only true inside the loop the task was submitted
        # from; reading it there hands the future to asyncio.
        if not self.in_own_loop():
            return None
        self.aio |= AIO_CLAIMED
        return bool(self.aio & AIO_BLOCKING)

    @_asyncio_future_blocking.setter
    def _asyncio_future_blocking(self, value):
        if value:
            self.aio |= AIO_BLOCKING
        else:
            self.aio &= ~AIO_BLOCKING

    @property
    def _cancel_message(self):
        return self.cancel_msg

    @_cancel_message.setter
    def _cancel_message(self, value):
        self.cancel_msg = value

    def get_loop(self):
        """The event loop the task was submitted from."""
        if self.inbox is None:
            raise RuntimeError("this future was not submitted from a running event loop")
        return self.inbox.loop

    def _make_cancelled_error(self):
        exc_type = asyncio_attr("CancelledError")
        return exc_type() if self.cancel_msg is None else exc_type(self.cancel_msg)

    def __await__(self):
        """``await future`` in any event loop; in the one it was submitted
        from without a second future in between."""
        if self.in_own_loop():
            self.aio |= AIO_CLAIMED
            if state(self) < CANCELLED:
                self.aio |= AIO_BLOCKING
                yield self  # the Task waits for us (asyncio's protocol)
            if state(self) < CANCELLED:
                raise RuntimeError("await wasn't used with future")
            return self.result()
        return (yield from asyncio_attr("wrap_future")(self).__await__())

    def result(self, timeout=None):
        """Wait (at most ``timeout`` seconds) and return the result, or
        raise the task's exception, CancelledError or TimeoutError."""
        cdef int st = state(self)
        if st == FINISHED:
            if self.exc is not None:
                self._raise()
            return self.res
        if st < CANCELLED:
            if not self.wait_done(timeout_arg(timeout)):
                raise TimeoutError()
            st = state(self)
        if st == CANCELLED or st == CANCELLED_AND_NOTIFIED:
            self.raise_cancelled()
        if self.exc is not None:
            self._raise()
        return self.res

    def exception(self, timeout=None):
        """Wait like :meth:`result`; return the exception (None if none)."""
        cdef int st = state(self)
        if st < CANCELLED:
            if not self.wait_done(timeout_arg(timeout)):
                raise TimeoutError()
            st = state(self)
        if st == CANCELLED or st == CANCELLED_AND_NOTIFIED:
            self.raise_cancelled()
        return self.exc

    def _raise(self):
        # Like concurrent.futures: raise, then break the reference cycle
        # the traceback would make with this frame.
        try:
            raise self.exc
        finally:
            self = None

    # -- core-private -----------------------------------------------------
    cdef int raise_cancelled(self) except -1:
        if self.asyncio_has_it():
            raise self._make_cancelled_error()
        raise CancelledError()

    cdef bint asyncio_has_it(self) except -1:
        """Whether this future is asyncio's here: claimed by asyncio, and
        this thread runs its loop (asyncio's rules apply)."""
        return self.aio & AIO_CLAIMED and self.in_own_loop()

    cdef bint in_own_loop(self) except -1:
        """Whether this thread is running the loop the task came from."""
        return self.inbox is not None and running_loop() is self.inbox.loop

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
        concurrent.futures waiters, the Condition, the callbacks. Only from
        state ``expected``, or (-1) from any state that isn't done yet.
        Returns False, changing nothing, otherwise.

        The Condition, if wait()/as_completed() made one, is held across
        the change, as they expect; it is re-checked under the future's
        own lock in case one was made meanwhile."""
        cdef object cond
        cdef list waiters, cbs, aio = None
        cdef PyThread_type_lock lock = NULL
        cdef bint again, moved = False
        while True:
            with cython.critical_section(self):  # _condition may be making it
                cond = self.cond
            if cond is not None:
                cond.acquire()
            try:
                with cython.critical_section(self):
                    again = self.cond is not cond
                    if not again and (
                        state(self) == expected if expected >= 0 else state(self) < CANCELLED
                    ):
                        moved = True
                        self.res = res
                        self.exc = exc
                        set_state(self, new_state)
                        lock = self.done_lock
                        waiters = self.waiters
                        cbs = self.callbacks
                        self.callbacks = None
                        aio = self.aio_callbacks
                        self.aio_callbacks = None
                if again:
                    continue
                if not moved:
                    return False
                if new_state == CANCELLED_AND_NOTIFIED:
                    self.release_task()
                if lock != NULL:
                    PyThread_release_lock(lock)
                if waiters:
                    for w in waiters:
                        if new_state == CANCELLED_AND_NOTIFIED:
                            w.add_cancelled(self)
                        elif exc is None:
                            w.add_result(self)
                        else:
                            w.add_exception(self)
                if cond is not None:
                    cond.notify_all()
            finally:
                if cond is not None:
                    cond.release()
            break
        if cbs:
            self._invoke(cbs)
        if aio:
            self.inbox.deliver(self, aio)
        return True

    def _invoke(self, list cbs):
        for cb in cbs:
            try:
                cb(self)
            except Exception:
                _LOGGER.exception("exception calling callback for %r", self)

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

    cdef int claim(self, double now):
        """A worker popped this future off a lane: PENDING -> RUNNING."""
        with cython.critical_section(self):
            st = state(self)
            if st == PENDING:
                set_state(self, RUNNING)
                if self.deadline != 0.0:
                    if now == 0.0:
                        now = now_s()
                    if now > self.deadline:
                        return EXPIRED_NOW
                return CLAIMED
            if st == FINISHED or st == RUNNING:  # _expire() got it first
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
        with cython.critical_section(self):
            if state(self) != PENDING:
                return False
            set_state(self, RUNNING)
        self.fail_started(TimeoutError(_START_DEADLINE_MESSAGE))
        return True

    def _cancel_claimed(self):
        self.cancel_claimed()

    def _claim(self, double now):
        return self.claim(now)


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
    # Made untracked by the cyclic GC: a queued future holds no cycle the
    # engine doesn't break by running it, and 200k tracked futures in
    # flight would cost more in GC passes than everything else together.
    # gc_track() re-tracks it once it could join a cycle (a container
    # result, an exception, callbacks, waiters, attributes).
    cdef FutureBase fut = <FutureBase>conexe_new_instance(FutureType)
    PyObject_GC_UnTrack(fut)
    fut.fn = fn
    fut.args = args
    fut.kwargs = kwargs if kwargs else None
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


class ChunkItemError:
    """Marks an item of a :func:`run_chunk` result whose call raised."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


def run_chunk(fn, list chunk):
    """``[fn(*args) for args in chunk]``, except that an item that raises
    gives a :class:`ChunkItemError` and the rest still run (``map``'s
    per-item semantics, one queue entry per chunk)::

        >>> [getattr(r, "error", r) for r in run_chunk(divmod, [(7, 2), (1, 0)])]
        [(3, 1), ZeroDivisionError('integer division or modulo by zero')]
    """
    cdef list out = []
    for args in chunk:
        try:
            out.append(fn(*args))
        except BaseException as exc:
            out.append(ChunkItemError(exc))
    return out


cdef object not_callable(object fn):
    return TypeError("%r object is not callable" % type(fn).__name__)


cdef int check_key(object key) except -1:
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(
            f"key must be hashable (str, int, bytes, tuple, frozenset, ...), "
            f"got {type(key).__name__!r}: {exc}") from None
    return 0


cdef void take_waiting(KeyChain chain, list out):
    cdef FutureBase fut = chain.first, nxt
    while fut is not None:
        out.append(fut)
        nxt = fut.next_in_key
        fut.next_in_key = None
        fut = nxt
    chain.first = chain.last = None


cdef class KeyChain:
    """One key's entry in the dispatch map: the tasks waiting behind the
    key's head (the one task of the key that is in a lane or running)."""

    def __cinit__(self, key, dict shard):
        self.key = key
        self.first = self.last = None
        self.shard = shard


cdef class Worker:
    """One worker thread's handle, passed to :meth:`Engine.worker_loop`.

        >>> Worker(resource="db-connection").resource
        'db-connection'
    """

    def __cinit__(self, resource=None):
        self.park = new_locked_lock()
        self.resource = resource

    def __dealloc__(self):
        if self.park != NULL:
            PyThread_free_lock(self.park)
            self.park = NULL

    @property
    def parked(self):
        return self._parked

    @property
    def retire(self):
        return self._retire


cdef class Gate:
    """A producer waiting for room in a full queue parks on this."""

    def __cinit__(self):
        self.lock = new_locked_lock()

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)


cdef class Engine:
    """Priority lanes, the dispatch map, counters and the worker loop.

    See ``_core_py.Engine`` for the reference behaviour of every method.
    """

    def __cinit__(self):
        if conexe_mutex_init(&self.mutex) < 0:
            raise MemoryError("cannot allocate the engine lock")
        self.lanes = NULL
        self.nlanes = 0
        self.cap_lanes = 0
        memset(self.wait_hist, 0, sizeof(self.wait_hist))
        memset(self.run_hist, 0, sizeof(self.run_hist))

    def __init__(self, max_queue_size=0, *, on_need_worker=None, target_workers=0,
                 pass_resource=False, check_health=None, max_retries=0,
                 track_latency=False):
        if max_queue_size < 0:
            raise ValueError("max_queue_size must be >= 0")
        if target_workers < 0:
            raise ValueError("target_workers must be >= 0")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_queue = max_queue_size
        self.target = target_workers
        self.on_need_worker = on_need_worker
        self.pass_resource = pass_resource
        self.check_health = check_health
        self.max_retries = max_retries
        self.track_latency = track_latency
        self.parked_workers = []
        self.blocked = deque()
        self.closed_message = "cannot schedule new futures after shutdown"
        self.shards = [{} for _ in range(KEY_SHARDS)]

    def __dealloc__(self):
        cdef int i
        cdef object item
        cdef KeyChain chain
        cdef FutureBase fut, nxt
        if self.shards is not None:
            # Tasks still waiting behind a key: untracked futures and their
            # chain form a cycle the GC can't see, so unlink them by hand,
            # one by one (freeing a long chain at once would recurse).
            for shard in self.shards:
                for chain in (<dict>shard).values():
                    fut = chain.first
                    chain.first = chain.last = None
                    while fut is not None:
                        nxt = fut.next_in_key
                        fut.next_in_key = None
                        fut.chain = None
                        gc_track(fut)  # its arguments may close a cycle
                        fut = nxt
        if self.lanes != NULL:
            for i in range(self.nlanes):
                while True:
                    item = ring_pop(&self.lanes[i].ring)
                    if item is None:
                        break
                    gc_track(item)  # its arguments may close a cycle
                conexe_ring_free(&self.lanes[i].ring)
            PyMem_Free(self.lanes)
            self.lanes = NULL
        conexe_mutex_free(&self.mutex)

    def __traverse_lanes__(self):  # pragma: no cover - debugging aid
        return self.in_lanes

    # -- the engine lock ----------------------------------------------------
    cdef int lock(self) except -1:
        # include/conexe/mutex.h: a PyMutex where there is one (it spins
        # before parking, and lets the GIL or the thread state go if it parks).
        conexe_mutex_lock(&self.mutex)
        return 0

    cdef void unlock(self) noexcept:
        conexe_mutex_unlock(&self.mutex)

    # -- lanes ----------------------------------------------------------------
    cdef int enqueue_locked(self, FutureBase fut, int priority, bint front,
                            bint restamp) except -1:
        cdef int i, j
        cdef Lane *lanes
        for i in range(self.nlanes):
            if self.lanes[i].priority == priority:
                break
        else:
            # A new level: keep the lanes sorted, highest priority first.
            if self.nlanes == self.cap_lanes:
                j = self.cap_lanes * 2 if self.cap_lanes else 4
                lanes = <Lane *>PyMem_Realloc(self.lanes, j * sizeof(Lane))
                if lanes == NULL:
                    raise MemoryError()
                self.lanes = lanes
                self.cap_lanes = j
            i = 0
            while i < self.nlanes and self.lanes[i].priority > priority:
                i += 1
            memmove(&self.lanes[i + 1], &self.lanes[i], (self.nlanes - i) * sizeof(Lane))
            self.lanes[i].priority = priority
            conexe_ring_init(&self.lanes[i].ring)
            self.nlanes += 1
        if self.track_latency and restamp:
            fut.enqueued_ns = now_ns()
        if front:
            conexe_ring_push_front(&self.lanes[i].ring, fut)
        else:
            conexe_ring_push(&self.lanes[i].ring, fut)
        self.queued += 1
        self.in_lanes += 1
        if priority > 0:
            self.priority_queued += 1
        if self.spinning:
            conexe_store_release(&self.spin_signal, 1)
        return 0

    cdef FutureBase pop_locked(self):
        cdef int i
        if self.in_lanes == 0:
            return None
        for i in range(self.nlanes):
            if self.lanes[i].ring.size:
                self.queued -= 1
                self.in_lanes -= 1
                if self.lanes[i].priority > 0:
                    self.priority_queued -= 1
                return <FutureBase>ring_pop(&self.lanes[i].ring)
        return None

    cdef Worker pick_helper_locked(self, bint *spawn):
        """Who takes the queued work: a parked worker (returned), a new
        thread (*spawn), or nobody (the awake workers keep up)."""
        cdef Worker w
        spawn[0] = False
        if self.in_lanes <= self.waking:
            return None
        if self.parked_workers:
            w = <Worker>self.parked_workers.pop()
            w._parked = False
            self.waking += 1
            self.wakeups += 1
            return w
        if self.on_need_worker is not None and not self._closed and self.workers < self.target:
            self.workers += 1
            self.waking += 1
            spawn[0] = True
        return None

    cdef bint spin_for_work_locked(self) except -1:
        """Called by a worker that found no work, with the lock held. With the
        GIL off, one idle worker at a time releases the lock and polls for new
        work for up to SPIN_NS before parking, so a producer of tiny tasks
        hands them over without a futex wake-up each. It counts as a worker
        on its way (``waking``): a push wakes nobody for the first new task.
        Returns whether it spun (the lock was released and taken again, so
        the caller looks at the lanes again); False on a GIL build."""
        cdef long long until
        cdef int _pause
        if not CONEXE_FREE_THREADED or self.spinning or _is_gil_enabled():
            return False
        self.spinning = True
        self.waking += 1
        conexe_store_release(&self.spin_signal, 0)
        self.unlock()
        with nogil:  # detached: a stop-the-world pause need not wait for us
            until = now_ns() + SPIN_NS
            while not conexe_load_acquire(&self.spin_signal):
                for _pause in range(32):
                    conexe_cpu_relax()
                if now_ns() >= until:
                    break
        self.lock()
        self.spinning = False
        self.waking -= 1
        return True

    cdef void spawn(self):
        cdef bint none_left
        try:
            self.on_need_worker()
        except Exception as exc:
            # Never let a failed thread start lose accepted work: with no
            # worker left at all, the queued tasks fail with the reason.
            _log.error("conexe could not start a worker thread: %r", exc)
            self.lock()
            self.workers -= 1
            self.waking -= 1
            none_left = self.workers == 0
            self.unlock()
            if none_left:
                self.fail_queued(exc)

    cdef void wake_producer_locked(self):
        cdef Gate g
        if self.blocked:
            g = <Gate>self.blocked.popleft()
            PyThread_release_lock(g.lock)

    cdef void wake_all_producers_locked(self):
        while self.blocked:
            self.wake_producer_locked()

    def _full_message(self):
        return "the queue is full (%d tasks queued, max_queue_size=%d)" % (
            self.queued, self.max_queue)

    # -- submitting -------------------------------------------------------------
    def submit(self, fn, tuple args, kwargs):
        """Queue ``fn(*args, **kwargs)`` at priority 0; never blocks.

        Raises QueueFull when the bound is reached and RuntimeError once
        closed."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        cdef FutureBase fut = new_future(fn, args, kwargs)
        bind_loop(fut)
        self.push(fut, 0, False, -1.0, None, False, False)
        return fut

    def submit_with(self, fn, tuple args, kwargs, *, int priority=0, double deadline=0.0,
                    context=None, bint no_retry=False, bint block=False, timeout=None):
        """:meth:`submit` with per-task options (see the twin)."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0")
        cdef FutureBase fut = new_future(fn, args, kwargs)
        fut.priority = priority
        fut.deadline = deadline
        fut.ctx = context
        fut.no_retry = no_retry
        bind_loop(fut)
        self.push(fut, priority, block, timeout_arg(timeout), None, False, False)
        return fut

    def submit_keyed(self, key, fn, tuple args, kwargs, *, int priority=0,
                     double deadline=0.0, context=None, bint unique=False,
                     bint block=False, timeout=None):
        """Queue ``fn(*args, **kwargs)`` behind every earlier task of ``key``
        (see the twin). With ``unique``, returns None for a busy key."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0")
        check_key(key)  # an unhashable key fails here, before anything is queued
        cdef FutureBase fut = new_future(fn, args, kwargs)
        fut.priority = priority
        fut.deadline = deadline
        fut.ctx = context
        bind_loop(fut)
        if not self.push(fut, priority, block, timeout_arg(timeout), key, True, unique):
            return None
        return fut

    cdef int push(self, FutureBase fut, int priority, bint block, double timeout,
                  object key, bint keyed, bint unique) except -1:
        """Queue ``fut``. Returns 1, or 0 for a ``unique`` duplicate."""
        cdef dict shard = None
        cdef KeyChain chain
        cdef Gate gate
        cdef Worker wake = None
        cdef bint spawn = False
        cdef double deadline = 0.0
        cdef int got
        if keyed:
            shard = <dict>self.shards[hash(key) & KEY_SHARD_MASK]
        if block and timeout > 0.0:
            deadline = now_s() + timeout
        self.lock()
        try:
            while True:
                if self._closed:
                    raise RuntimeError(self.closed_message)
                if unique and key in shard:
                    return 0
                if self.max_queue == 0 or self.queued < self.max_queue:
                    break
                if not block:
                    self.rejected += 1
                    raise QueueFull(self._full_message())
                gate = Gate()
                self.blocked.append(gate)
                self.unlock()
                try:
                    if timeout < 0.0:
                        got = acquire_timed(gate.lock, -1.0)
                    else:
                        got = acquire_timed(gate.lock, max(0.0, deadline - now_s()))
                finally:
                    self.lock()
                if not got:
                    try:
                        self.blocked.remove(gate)
                    except ValueError:  # woken just as we timed out: pass it on
                        self.wake_producer_locked()
                    self.rejected += 1
                    raise QueueFull(self._full_message())
            self.submitted += 1
            if keyed:
                chain = shard.get(key)
                if chain is not None:
                    # The key is busy: wait behind its head, out of the lanes.
                    fut.chain = chain
                    if chain.last is None:
                        chain.first = fut
                    else:
                        chain.last.next_in_key = fut
                    chain.last = fut
                    self.queued += 1
                    if self.track_latency:
                        fut.enqueued_ns = now_ns()
                    return 1
                chain = KeyChain(key, shard)
                shard[key] = chain
                fut.chain = chain
                self.active_keys += 1
            self.enqueue_locked(fut, priority, False, True)
            wake = self.pick_helper_locked(&spawn)
        finally:
            self.unlock()
        if wake is not None:
            PyThread_release_lock(wake.park)
        elif spawn:
            self.spawn()
        return 1

    def call_keyed(self, key, fn, *args, **kwargs):
        """``submit_keyed(key, fn, args, kwargs, context=copy_context())`` in
        one C call: ``KeyedExecutor.submit``'s fast path."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        check_key(key)
        cdef FutureBase fut = new_future(fn, args, kwargs or None)
        fut.ctx = PyContext_CopyCurrent()
        bind_loop(fut)
        self.push(fut, 0, False, -1.0, key, True, False)
        return fut

    def key_active(self, key):
        """Whether ``key`` has a task queued or running."""
        cdef dict shard = <dict>self.shards[hash(key) & KEY_SHARD_MASK]
        self.lock()
        try:
            return key in shard
        finally:
            self.unlock()

    cdef void advance_chain_locked(self, FutureBase fut):
        """``fut`` (a key's head) ended or was skipped: the key's next task
        joins the tail of its lane, or the key's entry is freed."""
        cdef KeyChain chain = fut.chain
        cdef FutureBase nxt
        if chain is None:
            return
        fut.chain = None
        nxt = chain.first
        if nxt is not None:
            chain.first = nxt.next_in_key
            nxt.next_in_key = None
            if chain.first is None:
                chain.last = None
            self.queued -= 1
            self.enqueue_locked(nxt, nxt.priority, False, False)
        else:
            del chain.shard[chain.key]
            self.active_keys -= 1

    # -- workers ------------------------------------------------------------------
    def add_workers(self, Py_ssize_t n):
        """Count ``n`` worker threads the caller is about to start."""
        self.lock()
        self.workers += n
        self.waking += n
        self.unlock()

    def worker_started_failed(self):
        """Undo one :meth:`add_workers` (the thread could not start)."""
        self.lock()
        self.workers -= 1
        self.waking -= 1
        self.unlock()

    def set_target_workers(self, Py_ssize_t n):
        cdef Worker wake
        cdef bint spawn = False
        if n < 0:
            raise ValueError("target_workers must be >= 0")
        self.lock()
        self.target = n
        wake = self.pick_helper_locked(&spawn)
        self.unlock()
        if wake is not None:
            PyThread_release_lock(wake.park)
        elif spawn:
            self.spawn()

    def retire_worker(self, Worker worker):
        """Ask ``worker`` to leave once its current task is done."""
        self.lock()
        worker._retire = True
        if worker._parked:
            self.parked_workers.remove(worker)
            worker._parked = False
            self.waking += 1
            PyThread_release_lock(worker.park)
        self.unlock()

    def worker_loop(self, Worker worker):
        """Run tasks until closed and drained, retired, or (Runner) the
        worker's resource is found broken. Returns why: ``"shutdown"``,
        ``"retire"`` or ``"replace"``."""
        cdef FutureBase done = None, item = None, retry = None
        cdef object value = None, reason
        cdef bint ok = True, replace = False, first = True, expired, spawn = False
        cdef bint locked = False, spun = False
        cdef int outcome = 0, claim
        cdef Worker wake
        cdef long long t0, run_ns = -1  # the last task's run time, not yet recorded
        try:
            while True:
                self.lock()
                locked = True
                if run_ns >= 0:
                    # Recorded under the lock taken here anyway: no extra
                    # lock round-trip per task for the latency histogram.
                    self.run_hist[hist_index(run_ns)] += 1
                    run_ns = -1
                if first:
                    self.waking -= 1
                    first = False
                if outcome:
                    self.running -= 1
                    if outcome == 3:
                        # Broken resource, tries left: back to the front of
                        # its lane for a worker with a fresh resource.
                        self.retried += 1
                        self.enqueue_locked(retry, retry.priority, True, False)
                        retry = None
                    else:
                        if outcome == 1:
                            self.completed += 1
                        elif outcome == 2:
                            self.failed += 1
                        else:
                            # 4: asyncio cancelled it between its claim and
                            # its start: it never ran (its future is done).
                            self.cancelled += 1
                        self.advance_chain_locked(done)
                    outcome = 0
                if done is not None:
                    # Complete the finished task's future before taking
                    # another, so what its waiters and callbacks do (cancel
                    # queued tasks, say) happens before the next one starts.
                    # The counters were updated first: stats() never lags.
                    wake = self.pick_helper_locked(&spawn)  # a key's next task
                    self.unlock()
                    locked = False
                    if wake is not None:
                        PyThread_release_lock(wake.park)
                        wake = None
                    elif spawn:
                        self.spawn()
                    done.finish_quietly(ok, value)
                    done = None
                    value = None
                    self.lock()
                    locked = True
                reason = None
                expired = False
                while True:
                    if replace:
                        reason = EXIT_REPLACE
                        break
                    if worker._retire:
                        reason = EXIT_RETIRE
                        break
                    item = self.pop_locked()
                    if item is None:
                        if self._closed:
                            reason = EXIT_SHUTDOWN
                            break
                        if not spun and self.spin_for_work_locked():
                            spun = True  # once per idle spell: look again, then park
                            continue
                        spun = False
                        self.parked_workers.append(worker)
                        worker._parked = True
                        self.unlock()
                        locked = False
                        with nogil:
                            PyThread_acquire_lock(worker.park, 1)
                        self.lock()
                        locked = True
                        self.waking -= 1
                        continue
                    spun = False
                    if self.blocked:
                        self.wake_producer_locked()
                    claim = item.claim(0.0)
                    if claim == CLAIMED or claim == EXPIRED_NOW:
                        if self.track_latency:
                            self.wait_hist[hist_index(now_ns() - item.enqueued_ns)] += 1
                        if claim == EXPIRED_NOW:
                            self.failed += 1
                            self.advance_chain_locked(item)
                            expired = True
                        else:
                            self.running += 1
                        break
                    if claim == SKIP_CANCELLED:
                        self.cancelled += 1
                    else:
                        self.failed += 1
                    self.advance_chain_locked(item)
                if reason is not None:
                    self.workers -= 1
                    if reason == EXIT_SHUTDOWN and self.workers == 0:
                        self.wake_all_producers_locked()
                    # A task retried above went back into a lane without a
                    # helper being picked, and this worker is leaving: wake
                    # a parked one for it (the replacement may take a while
                    # to create its resource, or never manage to).
                    wake = self.pick_helper_locked(&spawn)
                    self.unlock()
                    locked = False
                    if wake is not None:
                        PyThread_release_lock(wake.park)
                    elif spawn:
                        self.spawn()
                    return reason
                wake = self.pick_helper_locked(&spawn)
                self.unlock()
                locked = False
                if wake is not None:
                    PyThread_release_lock(wake.park)
                    wake = None
                elif spawn:
                    self.spawn()
                if expired:
                    item.fail_started(TimeoutError(_START_DEADLINE_MESSAGE))
                    item = None
                    continue
                # -- run it (with the GIL, outside every lock) --
                t0 = now_ns() if self.track_latency else 0
                ok, value, outcome, replace = self.run(item, worker)
                if t0:
                    run_ns = now_ns() - t0
                if outcome == 3:
                    retry = item
                else:
                    done = item
                item = None
                worker.tasks_done += 1
        except BaseException:
            if locked:
                self.unlock()
            raise

    cdef tuple run(self, FutureBase fut, Worker worker):
        cdef object fn, args, kwargs, ctx
        fn, args, kwargs, ctx = fut.take_task()
        if fn is None:  # a cancel took the task after the claim (asyncio's)
            return (False, None, 4, False)
        try:
            if self.pass_resource:
                args = (worker.resource,)
            if ctx is not None:
                # ctx.run() without its method call and argument tuple.
                PyContext_Enter(ctx)
                try:
                    if kwargs is None:
                        value = fn(*args)
                    else:
                        value = fn(*args, **kwargs)
                finally:
                    PyContext_Exit(ctx)
            elif kwargs is None:
                value = fn(*args)
            else:
                value = fn(*args, **kwargs)
        except BaseException as exc:
            args = kwargs = None
            return self.on_failure(fut, exc, fn)
        return (True, value, 1, False)

    cdef tuple on_failure(self, FutureBase fut, object exc, object fn):
        check = self.check_health
        if check is None:
            return (False, exc, 2, False)
        try:
            healthy = bool(check(exc))
        except Exception:
            _log.exception("check_health raised; treating the resource as broken")
            healthy = False
        if healthy:
            return (False, exc, 2, False)
        if fut.no_retry:
            return (False, exc, 2, True)
        if fut.tries >= self.max_retries:
            err = MaxRetriesExceeded("max retries exceeded: %r" % (exc,))
            err.__cause__ = exc
            return (False, err, 2, True)
        with cython.critical_section(fut):
            if state(fut) != RUNNING:  # cancelled by asyncio meanwhile: no retry
                return (False, exc, 2, True)
            set_state(fut, PENDING)
        fut.tries += 1
        fut.fn = fn
        return (False, None, 3, True)

    # -- shutting down -------------------------------------------------------------
    def close(self, bint cancel=False, message=None):
        """Refuse new tasks; workers leave once the lanes are empty. With
        ``cancel`` the queued tasks are cancelled (their waiters wake) and
        their number is returned."""
        cdef list drained = [], parked, claimed = []
        cdef FutureBase fut
        cdef Worker w
        cdef int c
        self.lock()
        try:
            self._closed = True
            if message is not None:
                self.closed_message = message
            if cancel:
                drained = self.drain_locked()
            parked = self.parked_workers
            self.parked_workers = []
            for w in parked:
                w._parked = False
            self.waking += len(parked)
            for fut in drained:
                c = fut.claim(1.0)
                if c == SKIP_EXPIRED:
                    # Its start deadline's reaper got it first (RUNNING
                    # until it sets the TimeoutError): failed, not ours.
                    self.failed += 1
                else:
                    self.cancelled += 1
                    if c != SKIP_CANCELLED:
                        claimed.append(fut)  # only what this close() took
            self.wake_all_producers_locked()
        finally:
            self.unlock()
        for w in parked:
            PyThread_release_lock(w.park)
        for fut in claimed:
            fut.cancel_claimed()
        return sum([1 for fut in drained if fut.cancelled()])

    def fail_queued(self, exc):
        """Fail every queued task with ``exc``; returns how many."""
        cdef list drained, claimed = []
        cdef FutureBase fut
        cdef int c
        self.lock()
        try:
            drained = self.drain_locked()
            for fut in drained:
                c = fut.claim(1.0)
                if c == SKIP_CANCELLED:
                    self.cancelled += 1
                else:
                    self.failed += 1
                    if c != SKIP_EXPIRED:
                        claimed.append(fut)
            self.wake_all_producers_locked()
        finally:
            self.unlock()
        for fut in claimed:
            fut.fail_started(exc)
        return len(claimed)

    cdef list drain_locked(self):
        """Take every queued task out: the lanes, then the tasks waiting
        behind busy keys. Keys left with nothing running are freed."""
        cdef list out = []
        cdef int i
        cdef object item
        cdef FutureBase fut
        cdef KeyChain chain
        for i in range(self.nlanes):
            while True:
                item = ring_pop(&self.lanes[i].ring)
                if item is None:
                    break
                out.append(item)
        cdef Py_ssize_t n = len(out)
        for i in range(n):
            fut = <FutureBase>out[i]
            if fut.chain is not None:  # a head that never started
                chain = fut.chain
                del chain.shard[chain.key]
                self.active_keys -= 1
                take_waiting(chain, out)
        for shard in self.shards:
            for chain in (<dict>shard).values():  # heads still running
                take_waiting(chain, out)
        for fut in out:
            fut.chain = None
        self.queued = 0
        self.in_lanes = 0
        self.priority_queued = 0
        return out

    def after_fork(self):
        """In a forked child: no worker threads exist there; refuse work."""
        # The parent's lock may have been held by a thread that is gone.
        conexe_mutex_init(&self.mutex)
        self._closed = True
        self.closed_message = (
            "cannot schedule new futures: this executor was created before "
            "os.fork(); create a new one in the child process")
        self.parked_workers = []
        self.blocked = deque()
        self.workers = 0
        self.waking = 0
        self.spinning = False
        self.running = 0

    # -- reading ---------------------------------------------------------------------
    @property
    def closed(self):
        self.lock()  # written under the lock by close() and after_fork()
        try:
            return self._closed
        finally:
            self.unlock()

    @property
    def queued(self):
        self.lock()
        try:
            return self.queued
        finally:
            self.unlock()

    def stats(self):
        """A consistent snapshot of the counters (taken under the lock)."""
        self.lock()
        try:
            return {
                "workers": self.workers,
                "idle": len(self.parked_workers),
                "queued": self.queued,
                "priority_queued": self.priority_queued,
                "active_keys": self.active_keys,
                "running": self.running,
                "submitted": self.submitted,
                "completed": self.completed,
                "failed": self.failed,
                "cancelled": self.cancelled,
                "rejected": self.rejected,
                "retried": self.retried,
                "wakeups": self.wakeups,
            }
        finally:
            self.unlock()

    def latency(self, which, percentiles):
        """Percentiles (seconds) of ``"wait"`` or ``"run"`` latencies."""
        cdef long long *src
        if which == "wait":
            src = self.wait_hist
        elif which == "run":
            src = self.run_hist
        else:
            raise ValueError("unknown latency kind %r: use 'wait' or 'run'" % (which,))
        self.lock()
        hist = [src[i] for i in range(HIST_BUCKETS)]
        self.unlock()
        total = sum(hist)
        out = []
        for p in percentiles:
            if total == 0:
                out.append(0.0)
                continue
            rank = max(1, math.ceil(total * p / 100.0))
            seen = 0
            for i, n in enumerate(hist):
                seen += n
                if seen >= rank:
                    out.append(2.0 ** ((i + 1) / HIST_PER_OCTAVE) / 1e9)
                    break
        return tuple(out)
