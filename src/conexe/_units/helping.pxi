# Helping waits: a task that waits (result(), exception()) for a task of
# its own executor that no worker has taken yet runs that task itself,
# inline, instead of blocking its worker. So recursive fan-out (a task that
# submits and waits for its subtasks) completes on a pool of any size,
# where every worker waiting for work nobody can take is the stdlib pool's
# deadlock. The task taken out of order leaves its lane entry behind,
# marked ``helped``: the worker that pops it skips it, uncounted.
#
# Not helped: keyed tasks (they start in their key's order), a Runner's
# (they need a worker's resource and may be retried), tasks of another
# executor, and waits through concurrent.futures.wait()/as_completed().
from conexe._contract cimport CLAIMED, COMPLETED, EXPIRED_NOW

from ._contract import START_DEADLINE_MESSAGE


cdef bint help_with(FutureBase fut) except -1:
    """Run ``fut``'s task here if the caller is a worker about to wait for
    it, it belongs to that worker's engine, and no worker has taken it.
    Returns whether it ran here (its future is then done)."""
    cdef void *w = PyThread_tss_get(&WORKER_HERE)
    cdef Worker worker
    cdef Engine engine = None
    cdef FutureBase parent
    cdef TaskEnd end
    cdef int claim
    cdef bint done
    if w == NULL:
        return 0
    worker = <Worker>w
    if worker.engine is not None:
        engine = <Engine>worker.engine
    if (engine is None or fut.owner != <void *>engine or fut.chain is not None
            or engine.pass_resource):
        return 0
    engine.lock()
    if fut.helped or state(fut) != PENDING:
        engine.unlock()
        return 0
    claim = fut.claim(True)
    if claim != CLAIMED and claim != EXPIRED_NOW:
        engine.unlock()  # cancelled just now: its worker counts it
        return 0
    fut.helped = True
    engine.n_queued -= 1
    if claim == EXPIRED_NOW:
        engine.failed += 1
        engine.unlock()
        fut.fail_started(TimeoutError(START_DEADLINE_MESSAGE))
        return 1
    engine.running += 1
    parent = worker.current
    worker.current = fut  # under the lock: close() reads it
    engine.unlock()
    end = TaskEnd()
    try:
        run_task(engine, fut, worker, end)
    finally:
        engine.lock()
        worker.current = parent
        task_ran(fut)
        done = engine.end_task_locked(fut, end)
        engine.unlock()
    if done:
        try:
            fut.finish_quietly(end.outcome == COMPLETED, end.value)
        finally:
            end.value = None
    return 1
