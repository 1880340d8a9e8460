from conexe._contract cimport HIST_BUCKETS, HIST_PER_OCTAVE
from cpython.pythread cimport (
    PY_LOCK_ACQUIRED,
    PY_LOCK_INTR,
    PyLockStatus,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_type_lock,
)
from cpython.ref cimport PyObject, Py_DECREF, Py_INCREF, Py_XDECREF
from libc.math cimport log2
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from threading import main_thread as _main_thread


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
