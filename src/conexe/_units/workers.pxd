# cython: language_level=3
# Declarations of workers.pxi (included by _core.pxd).

cdef class Worker:
    cdef PyThread_type_lock park
    cdef int _parked               # atomic: resize() reads it without the lock
    cdef bint _retire
    cdef public object resource
    cdef FutureBase current         # the task it runs now (running.pxi), or None
    cdef object engine              # the Engine whose loop it runs, or None (helping.pxi)
    cdef long long run_since        # atomic: its task's start (ns), 0 between tasks
    cdef bint _watch                # woken to watch the lanes (awake_policy.pxi: watch_locked)
    cdef bint _watch_woken          # watching, and its park lock was released


cdef class TaskEnd:
    cdef int outcome                # an Outcome (_contract.pxd)
    cdef object value               # the result or exception for its future
    cdef bint replace               # the worker's resource is broken: leave
    cdef long long run_ns           # its run time, not yet recorded (-1: none)

    cdef int set(self, int outcome, object value, bint replace) except -1


cdef class Gate:
    cdef PyThread_type_lock lock
