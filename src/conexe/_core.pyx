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
from conexe._contract cimport (
    CANCELLED_UNSTARTED,
    CLAIMED,
    COMPLETED,
    EXPIRED_NOW,
    FAILED,
    HIST_BUCKETS,
    HIST_PER_OCTAVE,
    KEY_SHARD_MASK,
    KEY_SHARDS,
    OUTCOME_NONE,
    RETRIED,
    SKIP_CANCELLED,
    SKIP_EXPIRED,
)
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
from cpython.ref cimport PyObject, Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.contextvars cimport (
    PyContext_Copy, PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit, PyContext_New,
)
from libc.math cimport log2
from libc.string cimport memmove, memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import logging
import sys
import weakref
from _thread import allocate_lock as _allocate_lock
from threading import main_thread as _main_thread
from collections import deque
from concurrent.futures import CancelledError, InvalidStateError
from concurrent.futures import Future as _StdFuture

from . import _contract
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
    KEY_NOT_HASHABLE_MESSAGE,
    LATENCY_KIND_MESSAGE,
    MAX_RETRIES_MESSAGE,
    NO_WORKER_THREAD_MESSAGE,
    NOT_CALLABLE_MESSAGE,
    QUEUE_FULL_MESSAGE,
    START_DEADLINE_MESSAGE,
    hist_percentiles,
    must_be_non_negative,
)
from ._errors import MaxRetriesExceeded, QueueFull
from ._options import usable_cores as _usable_cores

cdef extern from "conexe/refs.h":
    void conexe_hand_over(object op)

cdef extern from "conexe/atomic.h" nogil:
    int conexe_load_acquire(const int *p)
    int conexe_load_relaxed(const int *p)
    int conexe_exchange(int *p, int value)
    void conexe_store_release(int *p, int value)
    unsigned long conexe_load_relaxed_ulong(const unsigned long *p)
    void conexe_store_relaxed_ulong(unsigned long *p, unsigned long value)
    long long conexe_load_relaxed_ll(const long long *p)
    void conexe_store_relaxed_ll(long long *p, long long value)
    PyObject *conexe_load_cond(FutureBase fut)
    void conexe_store_cond(FutureBase fut, PyObject *value)

cdef extern from "Python.h":
    void PyObject_GC_Track(object op)
    void PyObject_GC_UnTrack(object op)
    int PyObject_IS_GC(object op)
    PyLockStatus PyThread_acquire_lock_timed(
        PyThread_type_lock lock, long long microseconds, int intr_flag) nogil
    int Py_MakePendingCalls() except -1
    int PyErr_CheckSignals() except -1
    int PyObject_GenericSetAttr(object o, object name, PyObject *value) except -1
    unsigned long PyThread_get_thread_ident() nogil

__all__ = [
    "ChunkItemError",
    "Engine",
    "Future",
    "Worker",
    "IMPLEMENTATION",
    "executor_submit",
    "run_chunk",
]

IMPLEMENTATION = "c"

_LOGGER = logging.getLogger("concurrent.futures")
_log = logging.getLogger("conexe")

# Future states; _STATE_NAMES are concurrent.futures' own strings.
cdef enum FutureState:
    PENDING = 0
    RUNNING = 1
    CANCELLED = 2
    CANCELLED_AND_NOTIFIED = 3
    FINISHED = 4
# C-level names, not module globals: a module global is a dict lookup on
# every use where Cython can't cache it (3.12 and later), and wait() reads
# every future's ``_state``.
cdef tuple _STATE_NAMES = (
    "PENDING", "RUNNING", "CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED")
# What repr() shows, as concurrent.futures' _STATE_TO_DESCRIPTION_MAP.
cdef tuple _STATE_DESCRIPTIONS = ("pending", "running", "cancelled", "cancelled", "finished")

# Longest single lock wait, in microseconds (PY_TIMEOUT_MAX is larger on
# every platform we build for); longer waits simply loop.
cdef long long MAX_WAIT_US = 1000000000000
# Longest single lock wait on the main thread, where Python runs signal
# handlers: a SIGINT whose C handler ran just before the thread parked
# (CPython's lock code checks for signals only when a wait is interrupted)
# is then handled at the next slice's end instead of never.
cdef long long SIGNAL_SLICE_US = 50000
cdef unsigned long MAIN_THREAD_IDENT = _main_thread().ident  # where handlers run


def _check_contract():
    """ImportError unless the C codes this module was compiled with (from
    _contract.pxd) are the ones _contract.py declares."""
    compiled = {
        "Claim": {"SKIP_CANCELLED": SKIP_CANCELLED, "CLAIMED": CLAIMED,
                  "SKIP_EXPIRED": SKIP_EXPIRED, "EXPIRED_NOW": EXPIRED_NOW},
        "Outcome": {"NONE": OUTCOME_NONE, "COMPLETED": COMPLETED, "FAILED": FAILED,
                    "RETRIED": RETRIED, "CANCELLED_UNSTARTED": CANCELLED_UNSTARTED},
        "sizes": {"HIST_BUCKETS": HIST_BUCKETS, "HIST_PER_OCTAVE": HIST_PER_OCTAVE,
                  "KEY_SHARDS": KEY_SHARDS},
    }
    declared = {
        "Claim": {c.name: c.value for c in _contract.Claim},
        "Outcome": {o.name: o.value for o in _contract.Outcome},
        "sizes": {name: getattr(_contract, name) for name in compiled["sizes"]},
    }
    if compiled != declared:
        raise ImportError(
            "conexe._core was compiled against another _contract.pxd than "
            f"_contract.py declares: {compiled} != {declared}; rebuild the extension")
    return compiled


_check_contract()

# How long an idle worker polls for new work before parking, on a
# free-threaded build with the GIL off (Engine.spin_for_work_locked). A
# producer submitting tiny tasks is a few microseconds apart per submit.
cdef long long SPIN_NS = 50000
# Free-threaded builds with the GIL off: while tasks run for less than
# SHORT_TASK_NS on average, a pool sized for more than twice the cores
# keeps only as many workers awake as there are cores (Engine.capped_locked);
# more would only fight over the engine lock and the cores. (Up to twice
# the cores, the futex lock of mutex.h serves all of them better: measured
# on 2 cores, capping 4 workers at 2 cost 10-35 % in the idiom bench, and
# capping 16 at 2 gained 3-5x.) A watcher looks every WATCH_US for workers
# whose task has run longer than STUCK_NS (blocked, or long after all) and
# lets another worker wake in their place, so blocking tasks never leave
# work waiting.
cdef long long SHORT_TASK_NS = 20000
cdef long long WATCH_US = 500
cdef long long STUCK_NS = 500000
cdef long long LONG_SAMPLE_NS = 32 * SHORT_TASK_NS
# The CPUs this process may run on: a pool with more workers than these
# takes its engine lock the way that suits oversubscription (mutex.h).
cdef Py_ssize_t USABLE_CORES = _usable_cores()
# None on a GIL build: sys._is_gil_enabled() tells whether the GIL is off now
# (an incompatible extension imported later can turn it back on).
cdef object _is_gil_enabled = getattr(sys, "_is_gil_enabled", None)


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


cdef inline void gc_track(FutureBase fut) noexcept:
    # Futures are created untracked (see new_future); this puts one under
    # the cyclic GC as soon as it could be part of a reference cycle. The
    # flag, not PyObject_GC_IsTracked(): two threads may get here at once
    # (see conexe_exchange), and tracking a tracked object aborts.
    if conexe_load_relaxed(&fut.untracked) and conexe_exchange(&fut.untracked, 0):
        PyObject_GC_Track(fut)


cdef inline int state(FutureBase fut) noexcept:
    # Read without the future's lock (see include/conexe/atomic.h).
    return conexe_load_acquire(&fut.st)


cdef inline void set_state(FutureBase fut, int value) noexcept:
    conexe_store_release(&fut.st, value)


cdef inline FutureCondition condition_of(FutureBase fut):
    """The future's ``_condition`` if one was made, else None. Read without
    the future's lock: once set it never changes (conexe_load_cond), and
    every wait() and every completion asks."""
    cdef PyObject *p = conexe_load_cond(fut)
    if p == NULL:  # Cython keeps None there, never NULL: checked all the same
        return None
    return <FutureCondition>p


cdef inline void publish_condition(FutureBase fut, FutureCondition cond) noexcept:
    """Set the future's ``_condition`` to ``cond``; the caller holds the
    future's lock and found none set."""
    cdef PyObject *old = <PyObject *>fut.cond
    Py_INCREF(cond)
    conexe_store_cond(fut, <PyObject *>cond)
    Py_XDECREF(old)


cdef int acquire_timed(PyThread_type_lock lock, double timeout) except -1:
    """Acquire ``lock``; ``timeout`` < 0 waits forever. Returns 1 if
    acquired, 0 on timeout, -1 with an exception set if a signal handler
    raised (Ctrl-C). The GIL is released only if the lock is taken."""
    cdef PyLockStatus r
    cdef long long us
    cdef double deadline = 0.0
    cdef long long longest = MAX_WAIT_US
    if PyThread_acquire_lock_timed(lock, 0, 0) == PY_LOCK_ACQUIRED:
        return 1
    if timeout == 0.0:
        return 0
    if timeout > 0.0:
        deadline = now_s() + timeout
    if PyThread_get_thread_ident() == MAIN_THREAD_IDENT:
        longest = SIGNAL_SLICE_US
    while True:
        if timeout < 0.0:
            us = -1 if longest == MAX_WAIT_US else longest
        else:
            us = <long long>((deadline - now_s()) * 1e6)
            if us <= 0:
                return 0
            if us > longest:
                us = longest
        with nogil:
            r = PyThread_acquire_lock_timed(lock, us, 1)
        if r == PY_LOCK_ACQUIRED:
            return 1
        if r == PY_LOCK_INTR:
            Py_MakePendingCalls()  # runs signal handlers; raises on Ctrl-C
            continue
        if longest == SIGNAL_SLICE_US:
            PyErr_CheckSignals()  # a slice ended: a signal that came too early
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
# (its ``inbox``); one submitted outside any loop is bound to the first loop
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
# view* (the AIO_LOOP_* flags), which only the loop's thread moves: when a
# drain reaches the future, or at once when the future ends in the loop's
# own thread. The concurrent state (``st``) moves as before, for every other
# thread.

cdef enum AioFlag:
    AIO_CLAIMED = 1         # asyncio has seen the future (isfuture() was True)
    AIO_LOOP_DONE = 2       # its loop has seen it end (the loop view is done)
    AIO_LOOP_CANCELLED = 4  # ... cancelled in the loop, whatever the task did

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


cdef bint ENDED_SEEN_AT_ONCE = ASYNCIO_SEES_ENDED_AT_ONCE  # C-level copy

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
    """Loop-bound futures that ended in another thread, on their way to
    their loop. An ending thread appends and, only if no drain is pending,
    schedules one with ``call_soon_threadsafe``; the drain, in the loop,
    shows the loop every future that arrived meanwhile and schedules
    their asyncio callbacks for its next turn."""

    def __cinit__(self, loop):
        self.loop = loop
        self.items = []
        self.scheduled = False
        self.ref = weakref.ref(self)

    cdef int ended(self, FutureBase fut) except -1:
        """``fut``, which asyncio has, just ended: its loop sees it at once
        in the loop's own thread (as an asyncio future), or from the next
        drain (as ``_chain_future``'s state copy, one per batch here)."""
        cdef list due
        if running_loop() is self.loop:
            due = []
            fut.end_in_loop(False, due)
            schedule_callbacks(self.loop, due, 0)
        else:
            self.post(fut)
        return 0

    cdef void post(self, FutureBase fut):
        cdef bint wake
        gc_track(fut)  # fut -> inbox -> items -> fut, until drained
        with cython.critical_section(self):
            self.items.append(fut)
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
        cdef list items, due = []
        cdef object fut
        with cython.critical_section(self):
            items = self.items
            self.items = []
            self.scheduled = False
        # The loop sees every future of the batch end now, and their
        # callbacks run on its next turn, in order: asyncio's state copy
        # (_set_state) schedules them with call_soon, so code that counts
        # turns sees what it sees with the stdlib; one handle runs them all.
        for fut in items:
            (<FutureBase>fut).end_in_loop(False, due)
        if due:
            self.loop.call_soon(self._run_due, due)

    def _run_due(self, list due):
        """The callbacks a drain found, on the loop's next turn."""
        run_callbacks(self.loop, due)


cdef int run_callbacks(object loop, list due) except -1:
    """Run asyncio callbacks ``due`` (flat future, fn, context, more),
    in the loop's thread, as its handles would: an exception goes to the
    loop's handler; SystemExit and KeyboardInterrupt leave the loop, as
    asyncio lets them, and what is left is scheduled for its next turn."""
    cdef Py_ssize_t i = 0, j, n = len(due)
    cdef object fut, fn, ctx
    cdef list more
    while i < n:
        fut = due[i]
        fn = due[i + 1]
        ctx = due[i + 2]
        more = <list>due[i + 3]
        i += 4
        j = 0  # the next of ``more`` to run after ``fn``
        while True:
            if fn is not None:
                try:
                    PyContext_Enter(ctx)
                    try:
                        fn(fut)
                    finally:
                        PyContext_Exit(ctx)
                except (SystemExit, KeyboardInterrupt):
                    while more is not None and j < len(more):
                        loop.call_soon(more[j], fut, context=more[j + 1])
                        j += 2
                    schedule_callbacks(loop, due, i)
                    raise
                except BaseException as exc:
                    loop.call_exception_handler({
                        "message": "Exception in callback %r" % (fn,),
                        "exception": exc,
                        "future": fut,
                    })
            if more is None or j >= len(more):
                break
            fn = more[j]
            ctx = more[j + 1]
            j += 2
    return 0


cdef int schedule_callbacks(object loop, list due, Py_ssize_t start) except -1:
    """``loop.call_soon`` each asyncio callback of ``due`` (flat future,
    fn, context, more) from entry index ``start`` on, in order."""
    cdef Py_ssize_t i, j
    cdef list more
    call_soon = loop.call_soon
    for i in range(start, len(due), 4):
        if due[i + 1] is not None:
            call_soon(due[i + 1], due[i], context=due[i + 2])
        more = <list>due[i + 3]
        if more is not None:
            for j in range(0, len(more), 2):
                call_soon(more[j], due[i], context=more[j + 1])
    return 0


cdef inline bint faces_agree(FutureBase fut) noexcept:
    """Whether the loop's view is the task's state, whichever thread asks:
    asyncio never had the future, or its loop has seen it end (and not
    cancelled it). Then done(), result()... need not ask which loop runs
    here, which costs more than the rest of a result() of a done future."""
    cdef int flags = conexe_load_acquire(&fut.aio)
    return not flags & AIO_CLAIMED or (
        flags & (AIO_LOOP_DONE | AIO_LOOP_CANCELLED)) == AIO_LOOP_DONE


cdef inline int loop_state(FutureBase fut) noexcept:
    """The future's state as its loop sees it (see "asyncio" above):
    PENDING until the loop has seen it end."""
    cdef int flags = conexe_load_acquire(&fut.aio)
    if not flags & AIO_LOOP_DONE:
        return PENDING
    if flags & AIO_LOOP_CANCELLED:
        return CANCELLED_AND_NOTIFIED
    return state(fut)


# -- what concurrent.futures.wait() and as_completed() use ----------------------
# They hold every future's ``_condition`` while they read its ``_state`` and
# append their waiter to its ``_waiters``; completing a future takes the same
# lock around the state change and the waiters' notification, so a waiter is
# either installed before the change (and notified) or sees the future done.
# ``_condition`` is a FutureCondition: one C lock, made the first time it is
# asked for, instead of a threading.Condition per future.

cdef object _AllCompletedWaiter = None
cdef object _AsCompletedWaiter = None
cdef object _FirstCompletedWaiter = None
try:
    from concurrent.futures._base import (
        _AllCompletedWaiter, _AsCompletedWaiter, _FirstCompletedWaiter)
except ImportError:  # another stdlib: every waiter takes the generic path
    pass

DEF NOTIFY_RESULT = 0
DEF NOTIFY_EXCEPTION = 1
DEF NOTIFY_CANCELLED = 2


cdef inline int set_event_once(object event) except -1:
    # Event.set() on a set event changes nothing (nobody can be blocked
    # on it), but costs a Condition round trip in Python.
    if not event.is_set():
        event.set()
    return 0


cdef int notify_waiter(object w, FutureBase fut, int how) except -1:
    """``w.add_result(fut)`` (or add_exception/add_cancelled), done here
    for the stdlib's own waiter classes exactly as their methods do it,
    and through the methods for any other."""
    cdef object t = type(w), lock
    cdef Py_ssize_t left
    if t is _AllCompletedWaiter:  # wait(ALL_COMPLETED / FIRST_EXCEPTION)
        w.finished_futures.append(fut)
        if how == NOTIFY_EXCEPTION and w.stop_on_exception:
            set_event_once(w.event)
            return 0
        lock = w.lock
        lock.acquire()
        try:
            left = w.num_pending_calls - 1
            w.num_pending_calls = left
            if not left:
                w.event.set()
        finally:
            lock.release()
    elif t is _AsCompletedWaiter:  # as_completed(): clears its event under the lock
        lock = w.lock
        lock.acquire()
        try:
            w.finished_futures.append(fut)
            set_event_once(w.event)
        finally:
            lock.release()
    elif t is _FirstCompletedWaiter:  # wait(FIRST_COMPLETED): never cleared
        w.finished_futures.append(fut)
        set_event_once(w.event)
    elif how == NOTIFY_RESULT:
        w.add_result(fut)
    elif how == NOTIFY_EXCEPTION:
        w.add_exception(fut)
    else:
        w.add_cancelled(fut)
    return 0


@cython.final
@cython.no_gc  # refers to nothing that could refer back: never in a cycle
cdef class FutureCondition:
    """A future's ``_condition``: the reentrant lock that guards its state
    (as ``threading.Condition()``'s RLock does on the stdlib future), with
    a Condition's ``wait``/``wait_for``/``notify``/``notify_all``.

        >>> f = Future()
        >>> with f._condition:
        ...     f._condition.notify_all()
        >>> f._condition.acquire(timeout=0.1), f._condition.release()
        (True, None)
    """

    def __cinit__(self):
        # A GIL build makes its sleepers' lock only if it is ever contended:
        # wait() gives each future it sees a condition, and most are never
        # contended (the allocation, and a semaphore operation on each
        # acquire and release, were a tenth of a wait(FIRST_COMPLETED) loop).
        if CONEXE_FREE_THREADED:
            self.lock = PyThread_allocate_lock()
            if self.lock == NULL:
                raise MemoryError("cannot allocate a lock")

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)
            self.lock = NULL

    cdef int take(self, double timeout) except -1:
        """Acquire (``timeout`` < 0: forever); 1 if acquired, 0 if not."""
        cdef unsigned long me = PyThread_get_thread_ident()
        if self.owned_by(me):
            self.depth += 1
            return 1
        if not CONEXE_FREE_THREADED:
            if self.owned_by(0):  # free: under the GIL, check and take are one step
                self.set_owner(me)
                self.depth = 1
                return 1
            return self.take_contended(me, timeout)
        if acquire_timed(self.lock, timeout) != 1:
            return 0
        self.set_owner(me)
        self.depth = 1
        return 1

    cdef int take_contended(self, unsigned long me, double timeout) except -1:
        """GIL build, held by another thread: sleep (GIL released) until a
        release finds it free, or ``timeout`` passes. A release wakes one
        sleeper while any sleep; a thread that takes the lock first meanwhile
        sends the woken one back to sleep, and its own release wakes it.

        ``lock`` is a one-slot wake-up: a release posts one only while none
        is posted (``wake_sent``), and the sleeper that takes it clears the
        flag. Two releases before a sleeper wakes (a third thread taking and
        releasing the lock in between) would otherwise release ``lock``
        twice, which a PyMutex-based lock (3.13+) treats as a fatal error."""
        cdef double deadline = 0.0, left = timeout
        cdef int woken
        if timeout == 0.0:
            return 0
        if self.lock == NULL:
            self.lock = new_locked_lock()  # held: acquiring it sleeps until a release
        if timeout > 0.0:
            deadline = now_s() + timeout
        self.sleepers += 1
        try:
            while True:
                woken = acquire_timed(self.lock, left)  # raises if Ctrl-C's handler does
                if woken:
                    self.wake_sent = False
                if self.owned_by(0):
                    self.set_owner(me)
                    self.depth = 1
                    return 1
                if not woken:
                    return 0
                if timeout > 0.0:
                    left = deadline - now_s()
                    if left <= 0.0:
                        return 0
        finally:
            self.sleepers -= 1

    cdef bint owned_by(self, unsigned long me) noexcept:
        """Whether thread ``me`` holds the lock. Read without the lock (by
        anyone), written only by its holder: atomic, see conexe/atomic.h."""
        return conexe_load_relaxed_ulong(&self.owner) == me

    cdef void set_owner(self, unsigned long ident) noexcept:
        conexe_store_relaxed_ulong(&self.owner, ident)

    cdef int drop(self) except -1:
        if not self.owned_by(PyThread_get_thread_ident()) or self.depth == 0:
            raise RuntimeError("cannot release un-acquired lock")
        self.depth -= 1
        if self.depth == 0:
            self.let_go()
        return 0

    cdef Py_ssize_t let_go(self) except -1:
        """Release the lock however deeply held (the caller holds it);
        returns the depth it was held at."""
        cdef Py_ssize_t depth = self.depth
        self.depth = 0
        self.set_owner(0)
        if CONEXE_FREE_THREADED:
            PyThread_release_lock(self.lock)
        elif self.sleepers and not self.wake_sent:
            self.wake_sent = True
            PyThread_release_lock(self.lock)  # wakes one sleeper
        return depth

    cdef int notify_waiting(self) except -1:
        """notify_all() if anyone waits (the lock is held)."""
        if self.waiting:
            self.notify_all()
        return 0

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, as ``threading.RLock.acquire``."""
        if not blocking:
            if timeout != -1:
                raise ValueError("can't specify a timeout for a non-blocking call")
            return self.take(0.0) == 1
        if timeout == -1:
            return self.take(-1.0) == 1
        if timeout < 0:
            raise ValueError("timeout value must be a non-negative number")
        return self.take(timeout) == 1

    def release(self):
        """Release the lock once (it is reentrant)."""
        self.drop()

    def __enter__(self):
        self.take(-1.0)
        return True

    def __exit__(self, *exc_info):
        self.drop()

    def _is_owned(self):
        return self.owned_by(PyThread_get_thread_ident()) and self.depth > 0

    def wait(self, timeout=None):
        """``threading.Condition.wait``: let go of the lock (however deeply
        held) until notified or ``timeout`` passes; True if notified."""
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _allocate_lock()
        waiter.acquire()
        if self.waiting is None:
            self.waiting = []
        self.waiting.append(waiter)
        cdef Py_ssize_t saved = self.let_go()
        notified = False
        try:
            if timeout is None:
                notified = waiter.acquire()
            elif timeout > 0:
                notified = waiter.acquire(True, timeout)
            else:
                notified = waiter.acquire(False)
            return notified
        finally:
            self.take(-1.0)
            self.depth = saved
            if not notified:
                try:
                    self.waiting.remove(waiter)
                except ValueError:  # notified just as the wait ended
                    pass

    def wait_for(self, predicate, timeout=None):
        """``threading.Condition.wait_for``: wait until ``predicate()`` is
        true or ``timeout`` passes; returns the last ``predicate()``."""
        endtime = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = now_s() + waittime
                else:
                    waittime = endtime - now_s()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        """Wake up to ``n`` threads in :meth:`wait` (the lock must be held)."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        cdef list waiting = self.waiting
        while waiting and n > 0:
            waiting.pop(0).release()
            n -= 1

    def notify_all(self):
        """Wake every thread in :meth:`wait` (the lock must be held)."""
        self.notify(len(self.waiting) if self.waiting else 0)

    def __repr__(self):
        return "<%s %s, depth %d>" % (
            type(self).__name__, "locked" if self.depth else "unlocked", self.depth)


@cython.final
@cython.no_gc  # short-lived; the future it refers to is tracked
@cython.freelist(8)  # one per ``f._waiters`` read: wait() reads it twice per future
cdef class Waiters:
    """A future's ``_waiters``: the concurrent.futures waiters that
    ``wait()``/``as_completed()`` install and remove (under ``_condition``),
    kept in the future's own fields (one slot, then a list) so that
    installing one allocates nothing the cyclic GC must look at.

        >>> f = Future(); w = object()
        >>> f._waiters.append(w); list(f._waiters) == [w]
        True
        >>> f._waiters.remove(w); len(f._waiters)
        0
    """

    cdef FutureBase fut

    def append(self, waiter):
        cdef FutureBase fut = self.fut
        gc_track(fut)  # waiter -> finished futures -> fut -> waiter
        # Allocated outside the critical section (see FutureBase._waiters).
        cdef list spill = [] if fut.waiter is not None and fut.waiters is None else None
        with cython.critical_section(fut):
            if fut.waiter is None:
                fut.waiter = waiter
                return
            if fut.waiters is None:
                fut.waiters = spill if spill is not None else []
            fut.waiters.append(waiter)

    def remove(self, waiter):
        cdef FutureBase fut = self.fut
        with cython.critical_section(fut):
            if fut.waiter is waiter:
                fut.waiter = None
                return
            if fut.waiters and waiter in fut.waiters:
                fut.waiters.remove(waiter)
                return
        raise ValueError("list.remove(x): x not in list")

    cdef list snapshot(self):
        cdef FutureBase fut = self.fut
        cdef list out = []
        with cython.critical_section(fut):
            if fut.waiter is not None:
                out.append(fut.waiter)
            if fut.waiters:
                out.extend(fut.waiters)
        return out

    def __iter__(self):
        return iter(self.snapshot())

    def __len__(self):
        return len(self.snapshot())

    def __bool__(self):
        cdef FutureBase fut = self.fut
        with cython.critical_section(fut):  # another thread may be appending
            return fut.waiter is not None or bool(fut.waiters)

    def __repr__(self):
        return repr(self.snapshot())


cdef int notify_waiters(object one, list more, FutureBase fut, int how) except -1:
    if one is not None:
        notify_waiter(one, fut, how)
    if more:
        for w in more:  # changed only under the _condition its caller holds
            notify_waiter(w, fut, how)
    return 0


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

    def _cancel_claimed(self):
        self.cancel_claimed()

    def _claim(self, bint check_deadline):
        return self.claim(check_deadline)


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
    # no cycle the engine doesn't break by running it, and 200k tracked
    # futures in flight would cost more in young-generation passes than
    # everything else together. gc_track() re-tracks it once it could join
    # a cycle (a container result, an exception, callbacks, waiters,
    # attributes).
    # Free-threaded builds keep it tracked. Their collector has no young
    # generation: each pass walks the whole heap, untracked objects
    # included, and it runs once allocations since the last pass exceed
    # max(2000, a quarter of the tracked survivors). Untracked futures
    # never count as survivors, so a batch in flight got a full
    # stop-the-world pass every 2000 submits (24 per 50,000 after a
    # gc.collect()); tracked, the threshold grows with them (8 passes, and
    # 1.5x the result() loop's throughput on 3.13.5t, 1.8x wait()'s).
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
cdef class AwaitInOwnLoop:
    """What ``await future`` steps through in the future's own loop: it
    yields the future once to the Task (asyncio's protocol), then returns
    its result. One small object per await, where a generator would take
    a generator and its closure: a gathered batch of awaits in flight
    keeps the cyclic GC's full passes that much shorter.

        >>> import asyncio, conexe
        >>> async def main():
        ...     with conexe.ConcurrentExecutor(1) as ex:
        ...         return await ex.submit(pow, 2, 5)  # submitted in the loop: its own
        >>> asyncio.run(main())
        32
    """
    cdef FutureBase fut   # None once the await is over
    cdef bint yielded

    def __iter__(self):
        return self

    def __next__(self):
        cdef FutureBase fut = self.fut
        if fut is None:
            raise StopIteration
        if not self.yielded and loop_state(fut) < CANCELLED:
            self.yielded = True
            fut.aio_blocking = True
            return fut  # the Task waits for it, then steps us again
        self.fut = None
        if loop_state(fut) < CANCELLED:
            raise RuntimeError("await wasn't used with future")
        raise StopIteration(fut.result())

    def send(self, value):
        """As a generator's ``send``: the value is ignored."""
        return self.__next__()

    def close(self):
        self.fut = None


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
    cdef object chunk_ctx = PyContext_CopyCurrent(), ctx
    for args in chunk:
        # Each item in a copy of the chunk's context, as if submitted on
        # its own: what one item sets, the next doesn't see.
        ctx = PyContext_Copy(chunk_ctx)
        PyContext_Enter(ctx)
        try:
            out.append(fn(*args))
        except BaseException as exc:
            out.append(ChunkItemError(exc))
        finally:
            PyContext_Exit(ctx)
    return out


cdef inline object copy_context_here():
    """A copy of the calling thread's context, for a task to run in; the
    worker drops it (see new_future)."""
    cdef object ctx = PyContext_CopyCurrent()
    conexe_hand_over(ctx)
    return ctx


cdef object not_callable(object fn):
    return TypeError(NOT_CALLABLE_MESSAGE % type(fn).__name__)


cdef int check_key(object key) except -1:
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(KEY_NOT_HASHABLE_MESSAGE % (type(key).__name__, exc)) from None
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

    def __cinit__(self):
        self.park = new_locked_lock()

    def __init__(self, resource=None):
        self.resource = resource

    def __dealloc__(self):
        if self.park != NULL:
            PyThread_free_lock(self.park)
            self.park = NULL

    @property
    def parked(self):
        # A snapshot, read without the engine lock (resize() sorts idle
        # workers first by it); written under the lock, atomically.
        return conexe_load_relaxed(&self._parked) != 0

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


@cython.final
cdef class TaskEnd:
    """How the task a worker just ran ended, filled in by Engine.run(): one
    per worker loop, reused for every task it runs."""

    def __cinit__(self):
        self.outcome = OUTCOME_NONE
        self.run_ns = -1

    cdef int set(self, int outcome, object value, bint replace) except -1:
        self.outcome = outcome
        self.value = value
        self.replace = replace
        return 0


# How the submit methods queue: unkeyed or keyed, never waiting for room.
cdef PushMode UNKEYED_NO_WAIT = PushMode(keyed=False, unique=False, block=False, timeout=-1.0)
cdef PushMode KEYED_NO_WAIT = PushMode(keyed=True, unique=False, block=False, timeout=-1.0)


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
                 track_latency=False, context="copy"):
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
        self.fresh_context = context == "fresh"
        self.max_queue = max_queue_size
        self.target = target_workers
        self.lock()
        self.fit_lock_to_pool_locked()
        self.unlock()
        self.on_need_worker = on_need_worker
        self.pass_resource = pass_resource
        self.check_health = check_health
        self.max_retries = max_retries
        self.track_latency = track_latency
        self.parked_workers = []
        self.live_workers = []
        self.run_ewma_ns = 4 * SHORT_TASK_NS + 1  # long, until tasks show otherwise
        self.blocked = deque()
        self.closed_message = CLOSED_MESSAGE
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
                    gc_track(<FutureBase>item)  # its arguments may close a cycle
                conexe_ring_free(&self.lanes[i].ring)
            PyMem_Free(self.lanes)
            self.lanes = NULL
        conexe_mutex_free(&self.mutex)

    # -- the engine lock ----------------------------------------------------
    cdef int lock(self) except -1:
        # include/conexe/mutex.h: a PyMutex where there is one (it spins
        # before parking, and lets the GIL or the thread state go if it parks).
        conexe_mutex_lock(&self.mutex)
        return 0

    cdef void unlock(self) noexcept:
        conexe_mutex_unlock(&self.mutex)

    cdef void fit_lock_to_pool_locked(self) noexcept:
        # With more workers than cores, waiters on the engine lock sleep at
        # once instead of yielding to each other (include/conexe/mutex.h;
        # free-threaded Linux builds only, a no-op elsewhere).
        # While short tasks cap the awake workers at the cores, the few
        # threads that take the lock suit the yielding PyMutex again.
        cdef Py_ssize_t size = max(self.target, self.workers)
        conexe_mutex_sleep_at_once(
            &self.mutex, size > USABLE_CORES and not self.capping_locked())

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
        self.n_queued += 1
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
                self.n_queued -= 1
                self.in_lanes -= 1
                if self.lanes[i].priority > 0:
                    self.priority_queued -= 1
                return <FutureBase>ring_pop(&self.lanes[i].ring)
        return None

    cdef Worker pick_helper_locked(self, bint *spawn):
        """Who takes the queued work: a parked worker (returned), a new
        thread (*spawn), or nobody (the awake workers keep up, or a worker
        is spinning: it takes the first task and then picks a helper for
        the rest itself, so a producer of tiny tasks makes no futex wake-up
        per submit while one worker keeps up)."""
        cdef Worker w
        spawn[0] = False
        if self.in_lanes <= self.waking or self.spinning:
            return None
        if self.capped_locked():
            return self.call_watcher_locked(spawn)
        if self.parked_workers:
            w = <Worker>self.parked_workers.pop()
            conexe_store_release(&w._parked, 0)
            self.waking += 1
            self.wakeups += 1
            return w
        if self.on_need_worker is not None and not self._closed and self.workers < self.target:
            self.workers += 1  # workers <= target: the lock already fits
            self.waking += 1
            spawn[0] = True
            return None
        w = self.wake_watcher_locked()  # the last worker left: put it to work
        if w is not None:
            self.wakeups += 1
        return w

    # -- short tasks on a free-threaded build: as many awake workers as cores
    cdef bint capping_locked(self) noexcept:
        """Whether the awake workers are capped at the cores: the tasks are
        short, and the pool is sized for more than twice the cores. Never
        on a GIL build (short_tasks is only set with the GIL off)."""
        return self.short_tasks and max(self.target, self.workers) > 2 * USABLE_CORES

    cdef bint capped_locked(self) except -1:
        """Whether, capping, enough workers are awake for the queued short
        tasks: as many as there are cores, not counting the watcher and the
        workers it saw stuck in a long task."""
        cdef Py_ssize_t awake
        if not self.capping_locked():
            return False
        awake = self.workers - len(self.parked_workers) - self.stuck
        if self.watcher is not None or self.spawn_watcher:
            awake -= 1
        return awake >= USABLE_CORES

    cdef Worker call_watcher_locked(self, bint *spawn):
        """Awake workers are capped and work waits: make sure one worker
        watches them (watch_locked), so that work never waits behind tasks
        that block. Returns the parked worker to wake for it, or starts a
        thread for it (*spawn), or nothing when one watches already."""
        cdef Worker w
        if self.watcher is not None or self.spawn_watcher:
            return None
        if self.parked_workers:
            w = <Worker>self.parked_workers.pop()
            conexe_store_release(&w._parked, 0)
            w._watch = True
            self.watcher = w
            self.waking += 1
            return w
        if self.on_need_worker is not None and not self._closed and self.workers < self.target:
            self.workers += 1
            self.waking += 1
            self.spawn_watcher = True  # the thread watches once in the loop
            spawn[0] = True
        return None

    cdef Worker wake_watcher_locked(self):
        """The watcher, if one waits in watch_locked() and nobody woke it
        yet: marked woken and counted as on its way, for the caller to
        release (once) after unlocking. Otherwise None."""
        cdef Worker w = self.watcher
        if w is None or w._watch or w._watch_woken:
            return None  # none, not watching yet (it looks again), or woken
        w._watch_woken = True
        self.waking += 1
        return w

    cdef int watch_locked(self, Worker worker) except -1:
        """Watch, with the lock released between looks, while short tasks
        are queued and the awake workers are capped: every WATCH_US, count
        the workers whose task has run longer than STUCK_NS. Once those
        leave room under the cap, or the lanes are empty, or someone wakes
        it, the watcher stops watching and goes on as a worker."""
        cdef PyLockStatus got
        worker._watch = False
        while (not self._closed and not worker._retire and self.in_lanes
               and self.capped_locked()):
            self.unlock()
            with nogil:
                got = PyThread_acquire_lock_timed(worker.park, WATCH_US, 0)
            self.lock()
            if got == PY_LOCK_ACQUIRED or worker._watch_woken:
                if got != PY_LOCK_ACQUIRED:
                    # Woken just after the wait timed out: take that
                    # release now, or the next park would return at once.
                    self.unlock()
                    with nogil:
                        PyThread_acquire_lock(worker.park, 1)
                    self.lock()
                self.waking -= 1
                break
            self.stuck = self.count_stuck_locked()
        worker._watch_woken = False
        self.watcher = None
        if not self.in_lanes:
            self.stuck = 0
        return 0

    cdef Py_ssize_t count_stuck_locked(self) except -1:
        cdef long long since, started_before = now_ns() - STUCK_NS
        cdef Py_ssize_t n = 0
        cdef Worker w
        for w in self.live_workers:
            since = conexe_load_relaxed_ll(&w.run_since)
            if since and since < started_before:
                n += 1
        return n

    cdef int note_run_time_locked(self, long long ns) except -1:
        """Average the tasks' run times (free-threaded builds): below
        SHORT_TASK_NS with the GIL off the awake workers get capped, above
        four times that (no flapping in between) they do not. A sample
        counts for at most LONG_SAMPLE_NS, so one task that the scheduler
        preempted does not lift the cap: two long ones in a row do."""
        self.run_ewma_ns = (self.run_ewma_ns * 7 + min(ns, LONG_SAMPLE_NS)) >> 3
        if self.short_tasks:
            if self.run_ewma_ns > 4 * SHORT_TASK_NS:
                self.short_tasks = False
                self.stuck = 0
                self.fit_lock_to_pool_locked()
        elif self.run_ewma_ns < SHORT_TASK_NS and not _is_gil_enabled():
            self.short_tasks = True
            self.fit_lock_to_pool_locked()
        return 0

    cdef bint spin_for_work_locked(self) except -1:
        """Called by a worker that found no work, with the lock held. With the
        GIL off, one idle worker at a time releases the lock and polls for new
        work for up to SPIN_NS before parking, so a producer of tiny tasks
        hands them over without a futex wake-up each. It counts as a worker
        on its way (``waking``), and while it spins a push wakes nobody
        (pick_helper_locked): once it has taken a task, the worker loop
        picks a helper for whatever else is queued.
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
            _log.error(NO_WORKER_THREAD_MESSAGE, exc)
            self.lock()
            self.workers -= 1
            self.waking -= 1
            self.spawn_watcher = False  # if it was to watch, the next one will
            none_left = self.workers == 0
            self.unlock()
            if none_left:
                self.fail_queued(exc)

    cdef void unlock_and_wake_helper(self):
        """Release the engine lock, then wake the parked worker or start the
        thread that pick_helper_locked() chose for the queued work: the
        lock is held across neither."""
        cdef bint spawn
        cdef Worker wake = self.pick_helper_locked(&spawn)
        self.unlock()
        if wake is not None:
            PyThread_release_lock(wake.park)
        elif spawn:
            self.spawn()

    cdef void wake_producer_locked(self):
        cdef Gate g
        if self.blocked:
            g = <Gate>self.blocked.popleft()
            PyThread_release_lock(g.lock)

    cdef void wake_all_producers_locked(self):
        while self.blocked:
            self.wake_producer_locked()

    def _full_message(self):
        return QUEUE_FULL_MESSAGE % (self.n_queued, self.max_queue)

    # -- submitting -------------------------------------------------------------
    def submit(self, fn, tuple args, kwargs):
        """Queue ``fn(*args, **kwargs)`` at priority 0; never blocks.

        Raises QueueFull when the bound is reached and RuntimeError once
        closed."""
        return self.queue_call(fn, args, kwargs)

    cdef FutureBase queue_call(self, object fn, tuple args, object kwargs):
        """What submit() and executor_submit() do: queue at priority 0, unkeyed."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        cdef FutureBase fut = new_future(fn, args, kwargs)
        if not self.fresh_context:
            fut.ctx = copy_context_here()
        bind_loop(fut)
        self.push(fut, 0, None, UNKEYED_NO_WAIT)
        return fut

    def submit_with(self, fn, tuple args, kwargs, *, int priority=0, double deadline=0.0,
                    context=None, bint no_retry=False, bint block=False, timeout=None):
        """:meth:`submit` with per-task options (see the twin)."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        cdef FutureBase fut = new_future(fn, args, kwargs)
        fut.priority = priority
        fut.deadline = deadline
        if context is not None:
            fut.ctx = context
            conexe_hand_over(context)  # dropped by the worker: see new_future
        elif not self.fresh_context:
            fut.ctx = copy_context_here()
        fut.no_retry = no_retry
        bind_loop(fut)
        self.push(fut, priority, None, PushMode(
            keyed=False, unique=False, block=block, timeout=timeout_arg(timeout)))
        return fut

    def submit_keyed(self, key, fn, tuple args, kwargs, *, int priority=0,
                     double deadline=0.0, context=None, bint unique=False,
                     bint block=False, timeout=None):
        """Queue ``fn(*args, **kwargs)`` behind every earlier task of ``key``
        (see the twin). With ``unique``, returns None for a busy key."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        check_key(key)  # an unhashable key fails here, before anything is queued
        cdef FutureBase fut = new_future(fn, args, kwargs)
        fut.priority = priority
        fut.deadline = deadline
        if context is not None:
            fut.ctx = context
            conexe_hand_over(context)  # dropped by the worker: see new_future
        elif not self.fresh_context:
            fut.ctx = copy_context_here()
        bind_loop(fut)
        if not self.push(fut, priority, key, PushMode(
                keyed=True, unique=unique, block=block, timeout=timeout_arg(timeout))):
            return None
        return fut

    cdef int push(self, FutureBase fut, int priority, object key, PushMode mode) except -1:
        """Queue ``fut`` (with ``mode.keyed``, behind the other tasks of
        ``key``), then wake or start a worker for it. Returns 1, or 0 (and
        queues nothing) for a ``mode.unique`` duplicate."""
        cdef dict shard = None
        cdef double deadline = 0.0
        cdef bint in_lane
        if mode.keyed:
            shard = <dict>self.shards[hash(key) & KEY_SHARD_MASK]
        if mode.block and mode.timeout > 0.0:
            deadline = now_s() + mode.timeout
        self.lock()
        try:
            if not self.wait_for_room_locked(shard, key, mode, deadline):
                self.unlock()
                return 0
            self.submitted += 1
            if mode.keyed:
                in_lane = self.add_keyed_locked(fut, priority, shard, key)
            else:
                self.enqueue_locked(fut, priority, False, True)
                in_lane = True
        except BaseException:
            self.unlock()
            raise
        if in_lane:
            self.unlock_and_wake_helper()
        else:
            self.unlock()
        return 1

    cdef bint wait_for_room_locked(self, dict shard, object key, PushMode mode,
                                   double deadline) except -1:
        """Raise RuntimeError once closed and QueueFull for a full queue,
        unless ``mode.block``: then wait (the engine lock released) for
        room until ``deadline`` (``mode.timeout`` < 0: forever). Returns 0
        for a ``mode.unique`` duplicate of a busy key, else 1."""
        cdef Gate gate
        cdef int got
        while True:
            if self._closed:
                raise RuntimeError(self.closed_message)
            if mode.unique and key in shard:
                return 0
            if self.max_queue == 0 or self.n_queued < self.max_queue:
                return 1
            if not mode.block:
                self.rejected += 1
                raise QueueFull(self._full_message())
            gate = Gate()
            self.blocked.append(gate)
            self.unlock()
            try:
                if mode.timeout < 0.0:
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

    cdef bint add_keyed_locked(self, FutureBase fut, int priority, dict shard,
                               object key) except -1:
        """Queue ``fut`` as ``key``'s task: into a lane if the key is free
        (returns 1), else behind the key's last task, out of the lanes (0)."""
        cdef KeyChain chain = shard.get(key)
        if chain is not None:
            # The key is busy: wait behind its head, out of the lanes.
            fut.chain = chain
            if chain.last is None:
                chain.first = fut
            else:
                chain.last.next_in_key = fut
            chain.last = fut
            self.n_queued += 1
            if self.track_latency:
                fut.enqueued_ns = now_ns()
            return 0
        chain = KeyChain(key, shard)
        shard[key] = chain
        fut.chain = chain
        self.active_keys += 1
        self.enqueue_locked(fut, priority, False, True)
        return 1

    def call_keyed(self, key, fn, /, *args, **kwargs):
        """``submit_keyed(key, fn, args, kwargs, context=copy_context())`` in
        one C call: ``KeyedExecutor.submit``'s fast path."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        check_key(key)
        cdef FutureBase fut = new_future(fn, args, kwargs or None)
        if not self.fresh_context:
            fut.ctx = copy_context_here()
        bind_loop(fut)
        self.push(fut, 0, key, KEYED_NO_WAIT)
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
            self.n_queued -= 1
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
        self.fit_lock_to_pool_locked()
        self.unlock()

    def worker_started_failed(self):
        """Undo one :meth:`add_workers` (the thread could not start)."""
        self.lock()
        self.workers -= 1
        self.waking -= 1
        self.unlock()

    def set_target_workers(self, Py_ssize_t n):
        if n < 0:
            raise ValueError(must_be_non_negative("target_workers"))
        self.lock()
        self.target = n
        self.fit_lock_to_pool_locked()
        self.unlock_and_wake_helper()

    def retire_worker(self, Worker worker):
        """Ask ``worker`` to leave once its current task is done."""
        self.lock()
        worker._retire = True
        if conexe_load_relaxed(&worker._parked):
            self.parked_workers.remove(worker)
            conexe_store_release(&worker._parked, 0)
            self.waking += 1
            PyThread_release_lock(worker.park)
        elif worker is self.watcher and self.wake_watcher_locked() is not None:
            PyThread_release_lock(worker.park)
        self.unlock()

    def worker_loop(self, Worker worker):
        """Run tasks until closed and drained, retired, or (Runner) the
        worker's resource is found broken. Returns why: ``"shutdown"``,
        ``"retire"`` or ``"replace"``.

        Each turn: take the next task (parking while there is none), run
        it outside every lock, count how it ended, then complete its
        future before taking another, so what its waiters and callbacks
        do (cancel queued tasks, say) happens before the next one starts;
        the counters come first, so stats() never lags the future."""
        cdef TaskEnd end = TaskEnd()
        cdef FutureBase item
        cdef bint expired, locked = True
        cdef long long started = 0
        self.lock()
        try:
            self.waking -= 1  # this worker is in the loop now
            self.live_workers.append(worker)
            if self.spawn_watcher:
                self.spawn_watcher = False
                self.watcher = worker
                worker._watch = True
            while True:
                item = self.next_task_locked(worker, end.replace, &expired)
                if item is None:
                    locked = False
                    return self.leave_locked(worker, end.replace)
                locked = False
                self.unlock_and_wake_helper()
                if expired:
                    item.fail_started(TimeoutError(START_DEADLINE_MESSAGE))
                    self.lock()
                    locked = True
                    continue
                if CONEXE_FREE_THREADED:
                    started = now_ns()
                    conexe_store_relaxed_ll(&worker.run_since, started)
                self.run(item, worker, end)  # with the GIL, outside every lock
                if CONEXE_FREE_THREADED:
                    conexe_store_relaxed_ll(&worker.run_since, 0)
                self.lock()
                locked = True
                if CONEXE_FREE_THREADED:
                    self.note_run_time_locked(now_ns() - started)
                if self.end_task_locked(item, end):
                    # Counted as on its way back to the lanes while it
                    # completes the future: a submit made as soon as the
                    # waiter wakes needn't wake or start another worker.
                    self.waking += 1
                    locked = False
                    self.unlock_and_wake_helper()  # for a key's next task
                    try:
                        item.finish_quietly(end.outcome == COMPLETED, end.value)
                    finally:
                        end.value = None
                        self.lock()
                        locked = True
                        self.waking -= 1
                item = None
        except BaseException:
            if not locked:
                self.lock()
            if worker in self.live_workers:
                self.live_workers.remove(worker)
            if self.watcher is worker:
                self.watcher = None
            self.unlock()
            raise

    cdef FutureBase next_task_locked(self, Worker worker, bint replace, bint *expired):
        """The next task to run (claimed: RUNNING), parking while there is
        none; None when the worker is to leave: its resource is broken
        (``replace``), it was retired, or the engine is closed and drained.
        Cancelled and expired tasks met on the way are counted and skipped;
        one whose start deadline passed just now is returned with
        ``*expired`` set, for the caller to fail outside the lock."""
        cdef FutureBase item
        cdef int claim
        cdef bint spun = False
        expired[0] = False
        while True:
            if replace or worker._retire:
                return None
            if worker._watch:
                self.watch_locked(worker)
                continue
            item = self.pop_locked()
            if item is None:
                if self._closed:
                    return None
                if not spun and self.spin_for_work_locked():
                    spun = True  # once per idle spell: look again, then park
                    continue
                spun = False
                self.park_locked(worker)
                continue
            spun = False
            if self.blocked:
                self.wake_producer_locked()
            claim = item.claim(True)
            if claim == CLAIMED or claim == EXPIRED_NOW:
                if self.track_latency:
                    self.wait_hist[hist_index(now_ns() - item.enqueued_ns)] += 1
                if claim == EXPIRED_NOW:
                    self.failed += 1
                    self.advance_chain_locked(item)
                    expired[0] = True
                else:
                    self.running += 1
                return item
            if claim == SKIP_CANCELLED:
                self.cancelled += 1
            else:
                self.failed += 1
            self.advance_chain_locked(item)

    cdef int park_locked(self, Worker worker) except -1:
        """Sleep, the engine lock released, until someone wakes ``worker``."""
        self.parked_workers.append(worker)
        conexe_store_release(&worker._parked, 1)
        self.unlock()
        with nogil:
            PyThread_acquire_lock(worker.park, 1)
        self.lock()
        self.waking -= 1
        return 0

    cdef bint end_task_locked(self, FutureBase fut, TaskEnd end) except -1:
        """Count how ``fut`` ended. A retry goes back to the front of its
        lane (returns 0: its future is not done); anything else frees its
        key for the key's next task (returns 1: complete its future)."""
        if end.run_ns >= 0:
            # Recorded under the lock taken here anyway: no extra lock
            # round-trip per task for the latency histogram.
            self.run_hist[hist_index(end.run_ns)] += 1
            end.run_ns = -1
        self.running -= 1
        if end.outcome == RETRIED:
            # Broken resource, tries left: back to the front of its lane
            # for a worker with a fresh resource.
            self.retried += 1
            self.enqueue_locked(fut, fut.priority, True, False)
            return 0
        if end.outcome == COMPLETED:
            self.completed += 1
        elif end.outcome == FAILED:
            self.failed += 1
        else:  # CANCELLED_UNSTARTED: it never ran (its future is done)
            self.cancelled += 1
        self.advance_chain_locked(fut)
        return 1

    cdef object leave_locked(self, Worker worker, bint replace):
        """The worker leaves: uncount it, release the engine lock, and say
        why (an ``EXIT_*`` reason)."""
        if replace:
            reason = EXIT_REPLACE
        elif worker._retire:
            reason = EXIT_RETIRE
        else:
            reason = EXIT_SHUTDOWN
        self.workers -= 1
        self.live_workers.remove(worker)
        if self.watcher is worker:  # woken to watch, then retired or replaced
            self.watcher = None
            worker._watch = False
        self.fit_lock_to_pool_locked()
        if reason is EXIT_SHUTDOWN and self.workers == 0:
            self.wake_all_producers_locked()
        # A task retried above went back into a lane without a helper being
        # picked, and this worker is leaving: wake a parked one for it (the
        # replacement may take a while to create its resource, or never
        # manage to).
        self.unlock_and_wake_helper()
        return reason

    cdef int run(self, FutureBase fut, Worker worker, TaskEnd end) except -1:
        """Run ``fut``'s task (the GIL held, no lock) and say in ``end`` how
        it ended."""
        cdef object fn, args, kwargs, ctx, given
        cdef long long t0 = now_ns() if self.track_latency else 0
        fn, args, kwargs, ctx = fut.take_task()
        if fn is None:  # a cancel took the task after the claim (asyncio's)
            end.set(CANCELLED_UNSTARTED, None, False)
        else:
            try:
                if self.pass_resource:
                    args = (worker.resource,)
                given = ctx
                if ctx is None:  # "fresh" (see __init__)
                    ctx = PyContext_New()
                # ctx.run() without its method call and argument tuple.
                PyContext_Enter(ctx)
                try:
                    if kwargs is None:
                        value = fn(*args)
                    else:
                        value = fn(*args, **kwargs)
                finally:
                    PyContext_Exit(ctx)
            except BaseException as exc:
                args = kwargs = None
                self.on_failure(fut, exc, fn, given, end)
            else:
                end.set(COMPLETED, value, False)
        if t0:
            end.run_ns = now_ns() - t0
        worker.tasks_done += 1
        return 0

    cdef int on_failure(self, FutureBase fut, object exc, object fn, object ctx,
                        TaskEnd end) except -1:
        """The task raised ``exc``: a failure, or (Runner) a broken resource
        whose task is retried while it has tries left (``fn`` in the context
        it was given, ``ctx``: the same copy, or None for a fresh one)."""
        check = self.check_health
        if check is None:
            return end.set(FAILED, exc, False)
        try:
            healthy = bool(check(exc))
        except Exception:
            _log.exception(CHECK_HEALTH_RAISED_MESSAGE)
            healthy = False
        if healthy:
            return end.set(FAILED, exc, False)
        if fut.no_retry:
            return end.set(FAILED, exc, True)
        if fut.tries >= self.max_retries:
            err = MaxRetriesExceeded(MAX_RETRIES_MESSAGE % (exc,))
            err.__cause__ = exc
            return end.set(FAILED, err, True)
        with cython.critical_section(fut):
            if state(fut) != RUNNING:  # cancelled by asyncio meanwhile: no retry
                return end.set(FAILED, exc, True)
            set_state(fut, PENDING)
        fut.tries += 1
        fut.fn = fn
        fut.ctx = ctx
        return end.set(RETRIED, None, True)

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
                conexe_store_release(&w._parked, 0)
            self.waking += len(parked)
            w = self.wake_watcher_locked()
            if w is not None:
                parked.append(w)
            for fut in drained:
                c = fut.claim(False)
                if c == SKIP_EXPIRED:
                    # Its start deadline's reaper got it first (it is done,
                    # with the TimeoutError): failed, not ours.
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
                c = fut.claim(False)
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
        self.n_queued = 0
        self.in_lanes = 0
        self.priority_queued = 0
        return out

    def after_fork(self):
        """In a forked child: no worker threads exist there; refuse work."""
        # The parent's lock may have been held by a thread that is gone.
        conexe_mutex_init(&self.mutex)
        self._closed = True
        self.closed_message = AFTER_FORK_MESSAGE
        self.parked_workers = []
        self.blocked = deque()
        self.workers = 0
        self.waking = 0
        self.spinning = False
        self.running = 0
        self.live_workers = []
        self.watcher = None
        self.spawn_watcher = False
        self.stuck = 0

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
            return self.n_queued
        finally:
            self.unlock()

    def stats(self):
        """A consistent snapshot of the counters (taken under the lock)."""
        self.lock()
        try:
            return {
                "workers": self.workers,
                "idle": len(self.parked_workers),
                "queued": self.n_queued,
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
            raise ValueError(LATENCY_KIND_MESSAGE % (which,))
        self.lock()
        hist = [src[i] for i in range(HIST_BUCKETS)]
        self.unlock()
        return hist_percentiles(hist, percentiles)


def executor_submit(self, fn, /, *args, **kwargs):
    """Schedule ``fn(*args, **kwargs)``; returns its Future.

    ``ConcurrentExecutor.submit`` itself: a function of this core placed
    in the executor class, so ``ex.submit`` is a true bound method (it
    holds the executor, as ThreadPoolExecutor's does) and a call runs no
    Python frame. While the executor's ``_plain_engine`` is an Engine of
    this core (no full-queue policy, not broken) the call is queued here;
    otherwise ``self._submit(fn, args, kwargs)`` decides.

    Raises RuntimeError after shutdown, TypeError if ``fn`` isn't
    callable, and (full queue, ``on_full="raise"``) QueueFull."""
    engine = self._plain_engine
    if type(engine) is Engine:
        return (<Engine>engine).queue_call(fn, args, kwargs)
    return self._submit(fn, args, kwargs)
