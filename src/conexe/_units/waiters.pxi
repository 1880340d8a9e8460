cimport cython
from cpython.pythread cimport (
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
)

from _thread import allocate_lock as _allocate_lock


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

cdef enum Notify:
    # How a future ended, as its waiters are told (notify_waiter).
    NOTIFY_RESULT = 0
    NOTIFY_EXCEPTION = 1
    NOTIFY_CANCELLED = 2


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
            else:
                if fut.waiters is None:
                    fut.waiters = spill if spill is not None else []
                fut.waiters.append(waiter)
        if PyThread_tss_get(&WORKER_HERE) != NULL:  # on a worker: wait() may run it
            adopt_waiter(waiter, fut)  # (helping.pxi)

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
