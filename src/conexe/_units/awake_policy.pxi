from cpython.pythread cimport PY_LOCK_ACQUIRED, PyLockStatus, PyThread_acquire_lock

import sys

from ._options import usable_cores as _usable_cores


# -- free-threaded builds: who stays awake ------------------------------------
# Only in C (_contract.C_ONLY_UNITS): with the GIL on, every worker that
# has work runs, and none of this applies. With the GIL off, tiny tasks
# are limited by the engine lock and the cores, not by the workers, so:
#
# * an idle worker spins for new work a moment before parking
#   (spin_for_work_locked), so a producer of tiny tasks hands them over
#   without a futex wake-up each;
# * while tasks are short (note_run_time_locked), a pool sized for more
#   than the cores keeps only as many workers awake as there are cores
#   (capped_locked); more would only fight over the lock and the cores
#   (docs/freethreading.md has the measurements);
# * while capped, one worker watches (watch_locked) for workers whose task
#   has run longer than STUCK_NS (blocked, or long after all) and lets
#   another wake in their place, so blocking tasks never leave work waiting;
# * the engine lock is fitted to the pool (fit_lock_to_pool_locked).
#
# How long an idle worker polls for new work before parking. A producer
# submitting tiny tasks is a few microseconds apart per submit.
cdef long long SPIN_NS = 50000
# Tasks averaging less than SHORT_TASK_NS are short; the watcher looks
# every WATCH_US for tasks running longer than STUCK_NS; one sample counts
# for at most LONG_SAMPLE_NS (see note_run_time_locked).
cdef long long SHORT_TASK_NS = 20000
cdef long long WATCH_US = 500
cdef long long STUCK_NS = 500000
cdef long long LONG_SAMPLE_NS = 32 * SHORT_TASK_NS
# The CPUs this process may run on: a pool with more workers than these
# takes its engine lock the way that suits oversubscription (mutex.h).
cdef Py_ssize_t USABLE_CORES = _usable_cores()
# None on a GIL build: sys._is_gil_enabled() tells whether the GIL is off now
# (an incompatible extension imported later can turn it back on).
cdef object _is_gil_enabled = getattr(sys, "_is_gil_enabled", None)


cdef void fit_lock_to_pool_locked(Engine engine) noexcept:
    # With more workers than cores, waiters on the engine lock sleep at
    # once instead of yielding to each other (include/conexe/mutex.h;
    # free-threaded Linux builds only, a no-op elsewhere).
    # While short tasks cap the awake workers at the cores, the few
    # threads that take the lock suit the yielding PyMutex again.
    cdef Py_ssize_t size = max(engine.target, engine.workers)
    conexe_mutex_sleep_at_once(
        &engine.mutex, size > USABLE_CORES and not capping_locked(engine))


cdef bint capping_locked(Engine engine) noexcept:
    """Whether the awake workers are capped at the cores: the tasks are
    short, and the pool is sized for more than the cores. Never on a
    GIL build (short_tasks is only set with the GIL off)."""
    return engine.short_tasks and max(engine.target, engine.workers) > USABLE_CORES


cdef bint capped_locked(Engine engine) except -1:
    """Whether, capping, enough workers are awake for the queued short
    tasks: as many as there are cores, not counting the watcher and the
    workers it saw stuck in a long task."""
    cdef Py_ssize_t awake
    if not capping_locked(engine):
        return False
    awake = engine.workers - len(engine.parked_workers) - engine.stuck
    if engine.watcher is not None or engine.spawn_watcher:
        awake -= 1
    return awake >= USABLE_CORES


cdef Worker call_watcher_locked(Engine engine, bint *spawn):
    """Awake workers are capped and work waits: make sure one worker
    watches them (watch_locked), so that work never waits behind tasks
    that block. Returns the parked worker to wake for it, or starts a
    thread for it (*spawn), or nothing when one watches already."""
    cdef Worker w
    if engine.watcher is not None or engine.spawn_watcher:
        return None
    if engine.parked_workers:
        w = <Worker>engine.parked_workers.pop()
        unpark_locked(engine, w)
        w._watch = True
        engine.watcher = w
        return w
    if engine.on_need_worker is not None and not engine._closed and engine.workers < engine.target:
        threads_starting_locked(engine, 1)
        engine.spawn_watcher = True  # the thread watches once in the loop
        spawn[0] = True
    return None


cdef list unpark_all_locked(Engine engine):
    """Wake every parked worker (and the watcher) to see the engine closed;
    returns them, for the caller to release once unlocked."""
    cdef list parked = engine.parked_workers
    cdef Worker w
    engine.parked_workers = []
    for w in parked:
        unpark_locked(engine, w)
    w = wake_watcher_locked(engine)
    if w is not None:
        parked.append(w)
    return parked


cdef Worker wake_watcher_locked(Engine engine):
    """The watcher, if one waits in watch_locked() and nobody woke it
    yet: marked woken and counted as on its way, for the caller to
    release (once) after unlocking. Otherwise None."""
    cdef Worker w = engine.watcher
    if w is None or w._watch or w._watch_woken:
        return None  # none, not watching yet (it looks again), or woken
    w._watch_woken = True
    set_off_locked(engine)
    return w


cdef int watch_locked(Engine engine, Worker worker) except -1:
    """Watch, with the lock released between looks, while short tasks
    are queued and the awake workers are capped: every WATCH_US, count
    the workers whose task has run longer than STUCK_NS. Once those
    leave room under the cap, or the lanes are empty, or someone wakes
    it, the watcher stops watching and goes on as a worker."""
    cdef PyLockStatus got
    worker._watch = False
    while (not engine._closed and not worker._retire and engine.lanes.size
           and capped_locked(engine)):
        engine.unlock()
        with nogil:
            got = PyThread_acquire_lock_timed(worker.park, WATCH_US, 0)
        engine.lock()
        if got == PY_LOCK_ACQUIRED or worker._watch_woken:
            if got != PY_LOCK_ACQUIRED:
                # Woken just after the wait timed out: take that
                # release now, or the next park would return at once.
                engine.unlock()
                with nogil:
                    PyThread_acquire_lock(worker.park, 1)
                engine.lock()
            arrived_locked(engine)
            break
        engine.stuck = count_stuck_locked(engine)
    worker._watch_woken = False
    engine.watcher = None
    if not engine.lanes.size:
        engine.stuck = 0
    return 0


cdef Py_ssize_t count_stuck_locked(Engine engine) except -1:
    cdef long long since, started_before = now_ns() - STUCK_NS
    cdef Py_ssize_t n = 0
    cdef Worker w
    for w in engine.live_workers:
        since = conexe_load_relaxed_ll(&w.run_since)
        if since and since < started_before:
            n += 1
    return n


cdef int note_run_time_locked(Engine engine, long long ns) except -1:
    """Average the tasks' run times (free-threaded builds): below
    SHORT_TASK_NS with the GIL off the awake workers get capped, above
    four times that (no flapping in between) they do not. A sample
    counts for at most LONG_SAMPLE_NS, so one task that the scheduler
    preempted does not lift the cap: two long ones in a row do."""
    engine.run_ewma_ns = (engine.run_ewma_ns * 7 + min(ns, LONG_SAMPLE_NS)) >> 3
    if engine.short_tasks:
        if engine.run_ewma_ns > 4 * SHORT_TASK_NS:
            engine.short_tasks = False
            engine.stuck = 0
            fit_lock_to_pool_locked(engine)
    elif engine.run_ewma_ns < SHORT_TASK_NS and not _is_gil_enabled():
        engine.short_tasks = True
        fit_lock_to_pool_locked(engine)
    return 0


cdef bint spin_for_work_locked(Engine engine) except -1:
    """Called by a worker that found no work, with the lock held. With the
    GIL off, one idle worker at a time releases the lock and polls for new
    work for up to SPIN_NS before parking, so a producer of tiny tasks
    hands them over without a futex wake-up each. It counts as a worker
    on its way (``waking``), and while it spins a push wakes nobody
    (pick_helper_locked): once it has taken a task, the worker loop
    picks a helper for whatever else is queued.
    Returns whether it spun (the lock was released and taken again, so
    the caller looks at the lanes again); False on a GIL build."""
    cdef long long until
    cdef int _pause
    if not CONEXE_FREE_THREADED or engine.spinning or _is_gil_enabled():
        return False
    engine.spinning = True
    set_off_locked(engine)
    conexe_store_release(&engine.spin_signal, 0)
    engine.unlock()
    with nogil:  # detached: a stop-the-world pause need not wait for us
        until = now_ns() + SPIN_NS
        while not conexe_load_acquire(&engine.spin_signal):
            for _pause in range(32):
                conexe_cpu_relax()
            if now_ns() >= until:
                break
    engine.lock()
    engine.spinning = False
    arrived_locked(engine)
    return True
