# cython: language_level=3
# cython: boundscheck=False, wraparound=False, cdivision=True
# cython: freethreading_compatible=True
"""The Cython core of conexe (the pure-Python twin is ``_core_py.py``:
same names, behaviour and messages; read it first, it is the reference).

This file is the hub: the imports and declarations every part needs, then
the core's units, one concept each, included in dependency order from
``_units/`` (one extension module, as uvloop builds its loop). Each
``_units/NAME.pxi`` has its declarations in ``_units/NAME.pxd`` (included
by ``_core.pxd``) and its twin in ``_units/NAME.py``, except the two that
exist only in C (``_contract.C_ONLY_UNITS``).

* ``Future``: a real ``concurrent.futures.Future`` (a Python subclass of
  ``FutureBase`` and the stdlib class, so ``wait``, ``as_completed`` and
  asyncio accept it) whose state lives in C fields. It makes no Condition
  unless ``wait()``/``as_completed()`` ask for one, and no lock unless a
  caller blocks on it.
* ``Engine``: priority lanes of ring buffers (include/conexe/ring.h), the
  key-sharded dispatch map, counters, latency histograms and the worker
  loop. One engine lock guards it all (include/conexe/mutex.h: a PyMutex
  from 3.13, a PyThread lock before), never held across a call that could
  block or wait for the GIL.
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

from conexe._contract cimport (
    CANCELLED_UNSTARTED,
    CLAIMED,
    COMPLETED,
    EXPIRED_NOW,
    FAILED,
    HIST_BUCKETS,
    HIST_PER_OCTAVE,
    KEY_SHARDS,
    OUTCOME_NONE,
    RETRIED,
    SKIP_CANCELLED,
    SKIP_EXPIRED,
)
from cpython.pythread cimport PyLockStatus, PyThread_type_lock
from cpython.ref cimport PyObject

import logging

from . import _contract

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
    "running_future",
]

IMPLEMENTATION = "c"

_LOGGER = logging.getLogger("concurrent.futures")
_log = logging.getLogger("conexe")


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


include "_units/primitives.pxi"     # future states, clocks, timed lock waits
include "_units/asyncio_view.pxi"   # what an event loop sees of a future
include "_units/waiters.pxi"        # concurrent.futures.wait()'s protocol (C only)
include "_units/future.pxi"         # FutureBase and Future
include "_units/tasks.pxi"          # a call's checks and contexts; run_chunk
include "_units/lanes.pxi"          # the priority lanes
include "_units/keys.pxi"           # the key-sharded dispatch map's entries
include "_units/workers.pxi"        # Worker, and how one task runs and ends
include "_units/running.pxi"        # the running task as it sees itself: stop requests, deadline
include "_units/awake_policy.pxi"   # free-threaded builds: who stays awake (C only)
include "_units/pacing.pxi"         # a key's pace: its rate limit
include "_units/closing.pxi"        # closing: draining, cancelling, asking running tasks to stop
include "_units/helping.pxi"        # helping waits: a waiting worker runs the task it waits for
include "_units/engine.pxi"         # Engine: submitting, the worker loop, shutdown
