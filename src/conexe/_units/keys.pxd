# cython: language_level=3
# Declarations of keys.pxi (included by _core.pxd).

cdef class KeyChain:
    cdef object key
    cdef FutureBase first           # tasks waiting behind the key's head (FIFO)
    cdef FutureBase last
    cdef dict shard
