# cython: language_level=3
# Declarations of keys.pxi (included by _core.pxd).

cdef class KeyChain:
    cdef object key
    cdef FutureBase first           # tasks waiting behind the key's head (FIFO)
    cdef FutureBase last
    cdef dict shard
    cdef Py_ssize_t width           # how many of the key's tasks may be in flight at once
    cdef Py_ssize_t active          # how many are: in a lane or running
    # A paced key (a rate limit, pacing.pxi): starts at most one task per
    # ``interval`` seconds on average, up to ``tolerance`` seconds ahead.
    cdef double interval            # seconds between the key's starts (0.0: not paced)
    cdef double tolerance           # (burst - 1) * interval
    cdef double tat                 # when its next start is due at its pace (GCRA's "TAT")
    cdef bint in_lane               # paced: one of its tasks is in a lane (one at most)
    cdef bint held                  # paced: its first waiting task waits for its time
