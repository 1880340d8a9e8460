# Helping waits: a task that waits for a task of its own executor that no
# worker has taken yet runs that task itself, inline, instead of blocking
# its worker. So recursive fan-out (a task that submits and waits for its
# subtasks) completes on a pool of any size, where every worker waiting
# for work nobody can take is the stdlib pool's deadlock. Three waits help:
#
# * result()/exception() run the task waited for (help_with);
# * concurrent.futures.wait()/as_completed() run the tasks they wait for,
#   one at a time until the waiter is satisfied: the conexe futures they
#   install a waiter on swap its event for a HelpingEvent (adopt_waiter);
# * a submit that finds a bounded queue full (on_full="block") runs the
#   queued task a worker would take next, until there is room
#   (help_while_full_locked).
#
# A task taken out of order leaves its lane entry behind, marked
# ``helped``: the worker that pops it skips it, uncounted. A keyed task is
# run only when it is in a lane (its key's turn): one waiting behind its
# key's tasks in flight, or a paced key's, is waited for. Not helped: a
# Runner's tasks (they need a worker's resource and may be retried), and
# tasks of another executor.
import threading as _threading

from conexe._contract cimport CLAIMED, COMPLETED, EXPIRED_NOW

from ._contract import START_DEADLINE_MESSAGE


cdef inline Engine helping_engine(FutureBase fut):
    """The engine the calling worker may help with ``fut`` on: its own,
    when ``fut`` was queued there and a worker there may run any task.
    None otherwise (not a worker, another executor, a Runner)."""
    cdef void *w = PyThread_tss_get(&WORKER_HERE)
    cdef object engine
    if w == NULL:
        return None
    engine = (<Worker>w).engine
    if engine is None or fut.owner != <void *>engine or (<Engine>engine).pass_resource:
        return None
    return <Engine>engine


cdef inline bint its_turn(FutureBase fut) noexcept:
    """Whether queued ``fut`` is in a lane, where a worker takes it next:
    a keyed task waiting behind its key's tasks in flight is not, and a
    paced key's task keeps its pace."""
    cdef KeyChain chain
    if fut.chain is None:
        return True
    chain = <KeyChain>fut.chain
    return (chain.interval == 0.0 and fut.next_in_key is None
            and chain.first is not fut and chain.last is not fut)


cdef int run_here(Engine engine, Worker worker, FutureBase fut, FutureBase parent) except -1:
    """Run ``fut`` (claimed, counted running, the worker's current task)
    on this thread as its worker would, count how it ended, complete its
    future, and make ``parent`` the worker's current task again."""
    cdef TaskEnd end = TaskEnd()
    cdef bint done
    cdef bint keyed = fut.chain is not None
    try:
        run_task(engine, fut, worker, end)
    finally:
        engine.lock()
        worker.current = parent  # under the lock: close() reads it
        task_ran(fut)
        done = engine.end_task_locked(fut, end)
        if keyed:
            engine.unlock_and_wake_helper()  # the key's next task is queued
        else:
            engine.unlock()
    if done:
        try:
            fut.finish_quietly(end.outcome == COMPLETED, end.value)
        finally:
            end.value = None
    return 0


cdef bint help_with(FutureBase fut) except -1:
    """Run ``fut``'s task here if the caller is a worker about to wait for
    it, it belongs to that worker's engine, and no worker has taken it.
    Returns whether it ran here (its future is then done)."""
    cdef Engine engine = helping_engine(fut)
    cdef Worker worker
    cdef FutureBase parent
    cdef int claim
    cdef bint keyed
    if engine is None:
        return 0
    worker = <Worker>PyThread_tss_get(&WORKER_HERE)
    engine.lock()
    if fut.helped or state(fut) != PENDING or not its_turn(fut):
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
        keyed = fut.chain is not None
        engine.advance_chain_locked(fut)
        if keyed:
            engine.unlock_and_wake_helper()
        else:
            engine.unlock()
        fut.fail_started(TimeoutError(START_DEADLINE_MESSAGE))
        return 1
    engine.running += 1
    parent = worker.current
    worker.current = fut  # under the lock: close() reads it
    engine.unlock()
    run_here(engine, worker, fut, parent)
    return 1


cdef bint help_while_full_locked(Engine engine) except -1:
    """The queue is full and the caller would wait for room: if it is one
    of ``engine``'s workers (a task submitting more), it runs the task a
    worker would take next instead, which makes room. Returns whether it
    ran one. The engine lock is held on entry and on return."""
    cdef void *w = PyThread_tss_get(&WORKER_HERE)
    cdef Worker worker
    cdef FutureBase item, parent
    cdef bint expired
    if w == NULL or engine.pass_resource:
        return 0
    worker = <Worker>w
    if worker.engine is not engine:
        return 0
    item = engine.next_task_locked(worker, False, &expired, False)
    if item is None:
        return 0
    if expired:
        engine.unlock()
        try:
            item.fail_started(TimeoutError(START_DEADLINE_MESSAGE))
        finally:
            engine.lock()
        return 1
    parent = worker.current
    worker.current = item
    engine.unlock()
    try:
        run_here(engine, worker, item, parent)
    finally:
        engine.lock()
    return 1


class HelpingEvent(_threading.Event):
    """The event of a ``concurrent.futures`` waiter installed, on one of
    an executor's workers, on that executor's futures: ``wait()`` runs the
    tasks no worker has taken, one at a time, until the waiter is set (so
    ``wait(ALL_COMPLETED)`` runs them all, ``as_completed()`` one per
    step), then waits for the rest like any event. A task run here runs to
    its end: a wait with a timeout may return that much later."""

    def __init__(self):
        super().__init__()
        self.futures = []

    def wait(self, timeout=None):
        futures = self.futures
        while futures and not self.is_set():
            help_with(<FutureBase>futures.pop(0))
        return super().wait(timeout)


cdef int adopt_waiter(object waiter, FutureBase fut) except -1:
    """``waiter`` was installed on ``fut`` (see Waiters.append): if the
    caller is a worker that may help with ``fut``, the waiter's event is a
    HelpingEvent that knows ``fut``."""
    cdef object event
    if helping_engine(fut) is None or state(fut) != PENDING:
        return 0
    event = getattr(waiter, "event", None)
    if type(event) is _threading.Event and not event.is_set():
        event = HelpingEvent()
        waiter.event = event
    if type(event) is HelpingEvent:
        event.futures.append(fut)
    return 0
