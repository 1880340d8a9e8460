# cython: language_level=3
# Declarations of keys.pxi (included by _core.pxd).

cdef class KeyChain:
    cdef object key
    cdef FutureBase first           # tasks waiting behind the key's head (FIFO)
    cdef FutureBase last
    cdef dict shard
    cdef Py_ssize_t width           # how many of the key's tasks may be in flight at once
    cdef Py_ssize_t active          # how many are: in a lane or running
