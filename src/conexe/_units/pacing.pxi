# A key's pace: KeyedExecutor(rate_per_key=...), at most ``rate`` starts per
# second for each key (``burst`` of them back to back at most), with no
# thread sleeping per key.
#
# The rule is GCRA (the generic cell rate algorithm, a token bucket kept as
# one time per key): a key's task may start once now >= tat - tolerance;
# a start moves tat to max(tat, now) + interval. It is checked when a
# worker takes the task from its lane, the moment it would start, so a
# backlog in the lanes can't bunch a key's starts. A paced key has one task
# in the lanes at most (``chain.in_lane``): one taken too early goes back to
# the head of its key's waiting tasks (``chain.held``), and the process's
# timer (conexe._deadlines) calls Engine.release_held at its time. A key
# with nothing queued or running keeps its entry (uncounted in
# active_keys) until now >= tat, when a new entry would behave the same.
# (KeyedExecutor's docstring has an example; _units/pacing.py is the twin.)

from heapq import heappop, heappush

from . import _deadlines


cdef int release_head_locked(Engine engine, KeyChain chain) except -1:
    """The key's first waiting task goes to the tail of its lane."""
    cdef FutureBase nxt = chain.first
    chain.first = nxt.next_in_key
    nxt.next_in_key = None
    if chain.first is None:
        chain.last = None
    engine.n_queued -= 1
    if chain.interval > 0.0:
        chain.in_lane = True
    return engine.enqueue_locked(nxt, nxt.priority, False, False)


cdef double admit_paced_locked(Engine engine, FutureBase fut) except -2.0:
    """``fut``, its paced key's task in the lanes, was just taken from its
    lane. Returns -1.0 if the key's pace lets it start now. Otherwise it
    goes back to the head of the key's waiting tasks until its time, and
    the return value is when the caller must ask the timer to call
    ``release_held`` (once the engine lock is released), or 0.0 if it
    already will by then."""
    cdef KeyChain chain = fut.chain
    cdef double now = now_s()
    cdef double due = chain.tat - chain.tolerance
    chain.in_lane = False
    if now >= due:
        return -1.0
    fut.next_in_key = chain.first
    chain.first = fut
    if chain.last is None:
        chain.last = fut
    engine.n_queued += 1
    chain.active -= 1
    chain.held = True
    engine.held_keys += 1
    engine.pacing_seq += 1
    heappush(engine.held_timers, (due, engine.pacing_seq, chain))
    if engine.armed_at == 0.0 or due < engine.armed_at:
        engine.armed_at = due
        return due
    return 0.0


cdef int paced_started_locked(Engine engine, KeyChain chain) except -1:
    """A task of the paced key ``chain`` just started: count it against the
    pace, and let the key's next task into a lane if it has room (it is
    checked in turn when a worker takes it)."""
    cdef double now = now_s()
    chain.tat = (chain.tat if chain.tat > now else now) + chain.interval
    if chain.first is not None and chain.active < chain.width:
        chain.active += 1
        release_head_locked(engine, chain)
    return 0


cdef int keep_paced_key_locked(Engine engine, KeyChain chain) except -1:
    """The paced key ``chain`` has nothing queued or running: keep its entry
    (and its pace) until a new one would behave the same."""
    cdef double now = now_s()
    if now >= chain.tat:
        del chain.shard[chain.key]
        return 0
    engine.pacing_seq += 1
    heappush(engine.idle_paced, (chain.tat, engine.pacing_seq, chain))
    return 0


cdef int forget_idle_paced_locked(Engine engine, double now) except -1:
    """Free the entries of idle paced keys whose pace is forgotten by now.
    Called when a key gets a new entry and when the timer calls: the kept
    entries are bounded by the keys paced recently."""
    cdef list heap = engine.idle_paced
    cdef KeyChain chain
    while heap and <double>heap[0][0] <= now:
        chain = <KeyChain>heappop(heap)[2]
        if chain.active or chain.first is not None or chain.shard.get(chain.key) is not chain:
            continue  # busy again (it is kept again when idle), or freed
        if now >= chain.tat:
            del chain.shard[chain.key]
        else:
            engine.pacing_seq += 1
            heappush(heap, (chain.tat, engine.pacing_seq, chain))
    return 0


cdef bint release_due_locked(Engine engine, double now) except -1:
    """Held keys whose time came send their first waiting task to a lane.
    Returns whether any did (a worker is to be woken)."""
    cdef list heap = engine.held_timers
    cdef KeyChain chain
    cdef bint released = False
    while heap and <double>heap[0][0] <= now:
        chain = <KeyChain>heappop(heap)[2]
        if not chain.held:
            continue  # drained by close(cancel=True)
        chain.held = False
        engine.held_keys -= 1
        if chain.first is not None and chain.active < chain.width:
            chain.active += 1
            release_head_locked(engine, chain)
            released = True
    if engine.idle_paced:
        forget_idle_paced_locked(engine, now)
    return released


cdef int release_held_now(Engine engine) except -1:
    """``Engine.release_held``, the process timer's call: paced keys whose
    time came send their next task to a lane. Once closed, the last one
    lets the parked workers leave."""
    cdef list parked = []
    cdef bint released
    cdef double nxt = 0.0
    cdef Worker w
    engine.lock()
    try:
        if engine.armed_at <= now_s():
            engine.armed_at = 0.0
        released = release_due_locked(engine, now_s())
        if engine.held_timers and engine.armed_at == 0.0:
            nxt = engine.armed_at = <double>engine.held_timers[0][0]
        if engine._closed and not engine.held_keys:
            parked = unpark_all_locked(engine)
    except BaseException:
        engine.unlock()
        raise
    if released:
        engine.unlock_and_wake_helper()
    else:
        engine.unlock()
    for w in parked:
        PyThread_release_lock(w.park)
    if nxt:
        arm_pacing_timer(engine, nxt)
    return 0


cdef void arm_pacing_timer(Engine engine, double when) noexcept:
    """Ask the process's timer to call ``engine.release_held()`` at
    ``when``. Called with the engine lock released: it takes the timer's
    lock and runs Python code."""
    try:
        _deadlines.call_at(when, engine, "release_held")
    except BaseException:
        _log.exception("conexe: the timer for paced keys could not be set")
