# cython: language_level=3
# Declarations of asyncio_view.pxi (included by _core.pxd).

cdef class LoopInbox:
    cdef readonly object loop
    cdef list items                 # the futures to show the loop
    cdef bint scheduled             # a drain is on its way to the loop
    cdef object ref                 # a weak reference to this inbox
    cdef object __weakref__

    cdef int ended(self, FutureBase fut) except -1
    cdef void post(self, FutureBase fut)
