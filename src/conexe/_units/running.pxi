# The task running in this thread, as the task itself sees it
# (conexe.current_task()): whether it was asked to stop
# (Future.request_cancel) and its deadline. The tasks it submits inherit
# both, and a request to stop reaches them too. A worker thread registers
# itself once, in thread-specific storage; running a task is then one
# field store on its Worker, and a submit checks one pointer.
cimport cython
from cpython.pythread cimport PyThread_tss_create, PyThread_tss_get, PyThread_tss_set

cdef Py_tss_t WORKER_HERE  # Cython initialises it (Py_tss_NEEDS_INIT)
if PyThread_tss_create(&WORKER_HERE) != 0:
    raise MemoryError("cannot create the thread-specific key for conexe's workers")

# A task's list of the tasks it submitted drops the ended ones each time it
# reaches a power of two from this size on, so a long task that submits
# without end holds only those still pending or running.
cdef Py_ssize_t CHILDREN_PRUNED_FROM = 64


cdef inline int worker_here(Worker worker) except -1:
    """The calling thread runs ``worker``'s loop (None: no longer)."""
    if PyThread_tss_set(&WORKER_HERE, <void *>worker) != 0:
        raise MemoryError("cannot set the thread-specific key for conexe's workers")
    return 0


cdef inline int worker_gone() except -1:
    PyThread_tss_set(&WORKER_HERE, NULL)
    return 0


cdef inline FutureBase running_here():
    """The future of the task this thread's worker runs now, or None."""
    cdef void *w = PyThread_tss_get(&WORKER_HERE)
    if w == NULL:
        return None
    return (<Worker>w).current


cdef int adopt_here(FutureBase child) except -1:
    """``child`` is being submitted: if a task runs in this thread, it is
    that task's child (see adopt)."""
    cdef FutureBase parent = running_here()
    if parent is not None:
        adopt(parent, child)
    return 0


cdef int adopt(FutureBase parent, FutureBase child) except -1:
    """``child`` was submitted by ``parent``'s task while it ran: it gets
    the parent's deadline, is asked to stop from the start if the parent
    was, and is asked when the parent is (request_cancel)."""
    cdef list kids
    cdef Py_ssize_t n
    child.run_deadline = parent.run_deadline
    if conexe_load_acquire(&parent.stop_asked):
        child.stop_asked = 1  # not yet seen by another thread
    with cython.critical_section(parent):  # request_cancel reads it from other threads
        kids = parent.children
        if kids is None:
            kids = parent.children = []
    if len(kids) == 0:
        gc_track(parent)  # it holds a container now
    else:
        n = len(kids)
        if n >= CHILDREN_PRUNED_FROM and (n & (n - 1)) == 0:
            kids[:] = [k for k in kids if not ended(<FutureBase>k)]
    kids.append(child)
    return 0


cdef inline bint ended(FutureBase fut) noexcept:
    cdef int st = state(fut)
    return st != PENDING and st != RUNNING


cdef inline void task_ran(FutureBase fut):
    """Its task has returned: no stop request reaches further from it."""
    if fut.children is None:  # it submitted nothing (only its thread sets it)
        return
    with cython.critical_section(fut):
        fut.children = None


cdef list running_tasks_locked(Engine engine):
    """The futures of the tasks the engine's workers run now."""
    cdef Worker w
    return [w.current for w in engine.live_workers if w.current is not None]


cdef inline void set_run_deadline(FutureBase fut, double deadline) noexcept:
    """The task's own deadline (``Task(timeout=...)``), or its parent's if
    that comes first."""
    if deadline != 0.0 and (fut.run_deadline == 0.0 or deadline < fut.run_deadline):
        fut.run_deadline = deadline


def running_future():
    """The future of the task running in this thread, or None outside a
    conexe worker (``conexe.current_task()`` wraps it)."""
    return running_here()
