# cython: language_level=3
# Declarations of waiters.pxi (included by _core.pxd).

cdef class FutureCondition:
    # A future's _condition: a reentrant lock, plus a threading.Condition
    # over it made only if someone waits on or notifies it.
    # With the GIL off, `lock` is the lock itself. On a GIL build the GIL
    # makes "free? then mine" one step, so `owner` is the lock, and `lock`
    # (made at the first contended acquire) only puts those who found it
    # held to sleep until a release.
    cdef PyThread_type_lock lock
    cdef unsigned long owner        # thread holding it, 0: free (atomic: owned_by)
    cdef Py_ssize_t depth           # the owner's nested acquires
    cdef Py_ssize_t sleepers        # GIL build: threads asleep on `lock`
    cdef bint wake_sent             # GIL build: `lock` is released, a sleeper's to take
    cdef list waiting               # locks of the threads in wait(), made lazily

    cdef int take(self, double timeout) except -1
    cdef int take_contended(self, unsigned long me, double timeout) except -1
    cdef bint owned_by(self, unsigned long me) noexcept
    cdef void set_owner(self, unsigned long ident) noexcept
    cdef int drop(self) except -1
    cdef Py_ssize_t let_go(self) except -1
    cdef int notify_waiting(self) except -1
