# cython: language_level=3
# Declarations of the Cython core's classes (see _core.pyx), so that other
# Cython modules can cimport them and reach their fields directly.

from cpython.pythread cimport PyThread_type_lock
from cpython.ref cimport PyObject

from conexe._contract cimport HIST_BUCKETS


cdef extern from "conexe/ring.h":
    ctypedef struct conexe_ring:
        Py_ssize_t size
    void conexe_ring_init(conexe_ring *r)
    int conexe_ring_push(conexe_ring *r, object item) except -1
    int conexe_ring_push_front(conexe_ring *r, object item) except -1
    PyObject *conexe_ring_pop(conexe_ring *r)
    void conexe_ring_free(conexe_ring *r)
    object conexe_new_instance(object type)


cdef extern from "conexe/mutex.h":
    ctypedef struct conexe_mutex:
        pass
    int conexe_mutex_init(conexe_mutex *mx)
    void conexe_mutex_free(conexe_mutex *mx)
    void conexe_mutex_lock(conexe_mutex *mx)
    void conexe_mutex_unlock(conexe_mutex *mx)
    void conexe_mutex_sleep_at_once(conexe_mutex *mx, int sleeps)
    bint CONEXE_FREE_THREADED
    void conexe_cpu_relax() nogil


cdef class LoopInbox


include "_units/waiters.pxd"
include "_units/future.pxd"
include "_units/asyncio_view.pxd"
include "_units/lanes.pxd"
include "_units/keys.pxd"
include "_units/workers.pxd"
include "_units/engine.pxd"
