# Closing an engine: refusing new tasks, cancelling or failing what is
# queued (drain_locked takes it out of the lanes and the keys' chains), and
# asking the running tasks to stop. Engine.close and Engine.fail_queued
# call these.
from conexe._contract cimport SKIP_CANCELLED, SKIP_EXPIRED
from cpython.pythread cimport PyThread_release_lock


cdef object close_engine(Engine engine, bint cancel, object message):
    """``Engine.close``: refuse new tasks; workers leave once the lanes
    are empty. With ``cancel`` the queued tasks are cancelled (their
    waiters wake) and their number is returned, and the running ones
    are asked to stop (``request_cancel``)."""
    cdef list drained = [], parked, claimed = [], running = []
    cdef FutureBase fut
    cdef Worker w
    cdef int c
    engine.lock()
    try:
        engine._closed = True
        if message is not None:
            engine.closed_message = message
        if cancel:
            drained = drain_locked(engine)
            running = running_tasks_locked(engine)
        parked = unpark_all_locked(engine)
        for fut in drained:
            c = fut.claim(False)
            if c == SKIP_EXPIRED:
                # Its start deadline's reaper got it first (it is done,
                # with the TimeoutError): failed, not ours.
                engine.failed += 1
            else:
                engine.cancelled += 1
                if c != SKIP_CANCELLED:
                    claimed.append(fut)  # only what this close() took
        engine.wake_all_producers_locked()
    finally:
        engine.unlock()
    for w in parked:
        PyThread_release_lock(w.park)
    for fut in claimed:
        fut.cancel_claimed()
    for fut in running:
        fut.request_cancel()
    return sum([1 for fut in drained if fut.cancelled()])


cdef object fail_queued_now(Engine engine, object exc):
    """``Engine.fail_queued``: fail every queued task with ``exc``;
    returns how many."""
    cdef list drained, claimed = []
    cdef FutureBase fut
    cdef int c
    engine.lock()
    try:
        drained = drain_locked(engine)
        for fut in drained:
            c = fut.claim(False)
            if c == SKIP_CANCELLED:
                engine.cancelled += 1
            else:
                engine.failed += 1
                if c != SKIP_EXPIRED:
                    claimed.append(fut)
        engine.wake_all_producers_locked()
    finally:
        engine.unlock()
    for fut in claimed:
        fut.fail_started(exc)
    return len(claimed)


cdef list drain_locked(Engine engine):
    """Take every queued task out: the lanes, then the tasks waiting
    behind busy keys (paced ones' held tasks too). Keys left with
    nothing running are freed; the lanes' stale entries of helped tasks
    (helping.pxi) are dropped."""
    cdef list out = [], idle = []
    cdef int i
    cdef FutureBase fut
    cdef KeyChain chain
    lanes_take_all(&engine.lanes, out)
    out = [fut for fut in out if not (<FutureBase>fut).helped]
    cdef Py_ssize_t n = len(out)
    for i in range(n):
        fut = <FutureBase>out[i]
        if fut.chain is not None:  # a key's task in flight that never started
            chain = fut.chain
            take_waiting(chain, out)
            chain.active -= 1
            chain.in_lane = False
            if chain.active == 0:
                del chain.shard[chain.key]
                engine.active_keys -= 1
    for shard in engine.shards:
        for chain in (<dict>shard).values():  # keys with tasks still running
            if chain.active == 0:  # a held paced key, or an idle one kept
                engine.active_keys -= chain.first is not None
                idle.append(chain)
            chain.held = False
            take_waiting(chain, out)
    for chain in idle:
        del chain.shard[chain.key]
    engine.held_keys = 0
    for fut in out:
        fut.chain = None
    engine.n_queued = 0
    return out
