cimport cython
from conexe._contract cimport (
    CANCELLED_UNSTARTED,
    COMPLETED,
    FAILED,
    OUTCOME_NONE,
    RETRIED,
)
from cpython.pythread cimport (
    PY_LOCK_ACQUIRED,
    PyLockStatus,
    PyThread_acquire_lock,
    PyThread_free_lock,
)
from cpython.contextvars cimport PyContext_Enter, PyContext_Exit, PyContext_New

from ._contract import CHECK_HEALTH_RAISED_MESSAGE, MAX_RETRIES_MESSAGE
from ._errors import MaxRetriesExceeded


cdef class Worker:
    """One worker thread's handle, passed to :meth:`Engine.worker_loop`.

        >>> Worker(resource="db-connection").resource
        'db-connection'
    """

    def __cinit__(self):
        self.park = new_locked_lock()

    def __init__(self, resource=None):
        self.resource = resource

    def __dealloc__(self):
        if self.park != NULL:
            PyThread_free_lock(self.park)
            self.park = NULL

    @property
    def parked(self):
        # A snapshot, read without the engine lock (resize() sorts idle
        # workers first by it); written under the lock, atomically.
        return conexe_load_relaxed(&self._parked) != 0

    @property
    def retire(self):
        return self._retire


cdef class Gate:
    """A producer waiting for room in a full queue parks on this."""

    def __cinit__(self):
        self.lock = new_locked_lock()

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)


@cython.final
cdef class TaskEnd:
    """How the task a worker just ran ended, filled in by run_task(): one
    per worker loop, reused for every task it runs."""

    def __cinit__(self):
        self.outcome = OUTCOME_NONE
        self.run_ns = -1

    cdef int set(self, int outcome, object value, bint replace) except -1:
        self.outcome = outcome
        self.value = value
        self.replace = replace
        return 0


# -- workers on their way ---------------------------------------------------------
# ``Engine.waking`` counts the workers on their way to the lanes: woken from
# their park, starting, spinning for work (awake_policy.pxi), or completing
# the future of the task they just ran. A push wakes or starts a worker
# only while the queued tasks outnumber them (Engine.pick_helper_locked).
# Every count up is matched by one count down when that worker reaches the
# lanes; these functions are the only places it changes (with the engine
# lock held), besides after_fork's reset.


cdef inline void unpark_locked(Engine engine, Worker worker) noexcept:
    """``worker``, just taken off the parked list, is on its way; the caller
    releases its park lock once the engine lock is released."""
    conexe_store_release(&worker._parked, 0)
    engine.waking += 1


cdef inline void threads_starting_locked(Engine engine, Py_ssize_t n) noexcept:
    """``n`` new worker threads are about to start: counted as workers, and
    on their way until they enter the worker loop."""
    engine.workers += n
    engine.waking += n


cdef inline void thread_start_failed_locked(Engine engine) noexcept:
    """A thread counted by threads_starting_locked() could not start."""
    engine.workers -= 1
    engine.waking -= 1


cdef inline void set_off_locked(Engine engine) noexcept:
    """An awake worker counts as on its way: it spins for work, its watch
    is cut short, or it completes the future of the task it ran."""
    engine.waking += 1


cdef inline void arrived_locked(Engine engine) noexcept:
    """A worker on its way has reached the lanes (entered the worker loop,
    woke from its park, stopped spinning or watching, completed a future)."""
    engine.waking -= 1


# -- parking, and idle reaping ---------------------------------------------------
cdef inline bint reaps_locked(Engine engine) noexcept:
    """Whether an idle worker may leave now (idle reaping)."""
    return engine.idle_timeout_us > 0 and engine.workers > engine.min_workers and not engine._closed


cdef int park_locked(Engine engine, Worker worker) except -1:
    """Sleep, the engine lock released, until someone wakes ``worker``;
    with an idle timeout, at most that long: then, unless it is needed
    to keep ``min_workers``, it is marked to retire."""
    cdef long long us = engine.idle_timeout_us if reaps_locked(engine) else -1
    cdef PyLockStatus woken
    engine.parked_workers.append(worker)
    conexe_store_release(&worker._parked, 1)
    engine.unlock()
    with nogil:
        woken = PyThread_acquire_lock_timed(worker.park, us, 0)
    engine.lock()
    if woken != PY_LOCK_ACQUIRED:
        if conexe_load_relaxed(&worker._parked):  # nobody woke it: idle that long
            engine.parked_workers.remove(worker)
            conexe_store_release(&worker._parked, 0)
            worker._retire = reaps_locked(engine)
            return 0
        # Woken just as the wait timed out: take the wake-up it was sent.
        engine.unlock()
        with nogil:
            PyThread_acquire_lock(worker.park, 1)
        engine.lock()
    arrived_locked(engine)
    return 0


cdef int run_task(Engine engine, FutureBase fut, Worker worker, TaskEnd end) except -1:
    """Run ``fut``'s task (the GIL held, no lock) and say in ``end`` how
    it ended."""
    cdef object fn, args, kwargs, ctx, given
    cdef long long t0 = now_ns() if engine.track_latency else 0
    fn, args, kwargs, ctx = fut.take_task()
    if fn is None:  # a cancel took the task after the claim (asyncio's)
        end.set(CANCELLED_UNSTARTED, None, False)
    else:
        try:
            if engine.pass_resource:
                args = (worker.resource,)
            given = ctx
            if ctx is None:  # "fresh" (see __init__)
                ctx = PyContext_New()
            # ctx.run() without its method call and argument tuple.
            PyContext_Enter(ctx)
            try:
                if kwargs is None:
                    value = fn(*args)
                else:
                    value = fn(*args, **kwargs)
            finally:
                PyContext_Exit(ctx)
        except BaseException as exc:
            args = kwargs = None
            task_failed(engine, fut, exc, fn, given, end)
        else:
            end.set(COMPLETED, value, False)
    if t0:
        end.run_ns = now_ns() - t0
    return 0


cdef int task_failed(Engine engine, FutureBase fut, object exc, object fn, object ctx,
                     TaskEnd end) except -1:
    """The task raised ``exc``: a failure, or (Runner) a broken resource
    whose task is retried while it has tries left (``fn`` in the context
    it was given, ``ctx``: the same copy, or None for a fresh one)."""
    check = engine.check_health
    if check is None:
        return end.set(FAILED, exc, False)
    try:
        healthy = bool(check(exc))
    except Exception:
        _log.exception(CHECK_HEALTH_RAISED_MESSAGE)
        healthy = False
    if healthy:
        return end.set(FAILED, exc, False)
    if fut.no_retry:
        return end.set(FAILED, exc, True)
    if fut.tries >= engine.max_retries:
        err = MaxRetriesExceeded(MAX_RETRIES_MESSAGE % (exc,))
        err.__cause__ = exc
        return end.set(FAILED, err, True)
    with cython.critical_section(fut):
        if state(fut) != RUNNING:  # cancelled by asyncio meanwhile: no retry
            return end.set(FAILED, exc, True)
        set_state(fut, PENDING)
    fut.tries += 1
    fut.fn = fn
    fut.ctx = ctx
    return end.set(RETRIED, None, True)
