from conexe._contract cimport (
    CLAIMED,
    COMPLETED,
    EXPIRED_NOW,
    FAILED,
    HIST_BUCKETS,
    KEY_SHARD_MASK,
    KEY_SHARDS,
    RETRIED,
    SKIP_CANCELLED,
    SKIP_EXPIRED,
)
from cpython.pythread cimport PyThread_release_lock
from cpython.object cimport PyCallable_Check
from libc.math cimport ceil
from libc.string cimport memset

from collections import deque
from threading import TIMEOUT_MAX

from ._contract import (
    AFTER_FORK_MESSAGE,
    CLOSED_MESSAGE,
    CONTEXT_MESSAGE,
    CONTEXTS,
    EXIT_REPLACE,
    EXIT_RETIRE,
    EXIT_SHUTDOWN,
    KEY_WIDTH_MESSAGE,
    LATENCY_KIND_MESSAGE,
    NO_WORKER_THREAD_MESSAGE,
    QUEUE_FULL_MESSAGE,
    START_DEADLINE_MESSAGE,
    hist_percentiles,
    must_be_non_negative,
)
from ._errors import QueueFull


# How the submit methods queue: unkeyed or keyed, never waiting for room.
cdef PushMode UNKEYED_NO_WAIT = PushMode(
    keyed=False, unique=False, block=False, timeout=-1.0, width=0, rate=-1.0)
cdef PushMode KEYED_NO_WAIT = PushMode(
    keyed=True, unique=False, block=False, timeout=-1.0, width=0, rate=-1.0)


cdef class Engine:
    """Priority lanes, the dispatch map, counters and the worker loop.

    See ``_core_py.Engine`` for the reference behaviour of every method.
    """

    def __cinit__(self):
        if conexe_mutex_init(&self.mutex) < 0:
            raise MemoryError("cannot allocate the engine lock")
        memset(&self.lanes, 0, sizeof(self.lanes))
        memset(self.wait_hist, 0, sizeof(self.wait_hist))
        memset(self.run_hist, 0, sizeof(self.run_hist))

    def __init__(self, max_queue_size=0, *, on_need_worker=None, target_workers=0,
                 pass_resource=False, check_health=None, max_retries=0,
                 track_latency=False, context="copy", key_width=1, double key_rate=0.0,
                 Py_ssize_t key_burst=1, double idle_timeout=0.0, Py_ssize_t min_workers=0):
        if max_queue_size < 0:
            raise ValueError(must_be_non_negative("max_queue_size"))
        if target_workers < 0:
            raise ValueError(must_be_non_negative("target_workers"))
        if max_retries < 0:
            raise ValueError(must_be_non_negative("max_retries"))
        if context not in CONTEXTS:
            raise ValueError(CONTEXT_MESSAGE % (context,))
        if key_width < 1:
            raise ValueError(KEY_WIDTH_MESSAGE % (key_width,))
        self.key_width = key_width
        if not key_rate >= 0.0 or key_burst < 1:  # a NaN rate fails the first
            raise ValueError(
                f"key_rate must be >= 0 and key_burst >= 1, got {key_rate}, {key_burst}")
        self.key_rate = key_rate
        if not idle_timeout >= 0.0:  # NaN fails too
            raise ValueError(must_be_non_negative("idle_timeout"))
        if idle_timeout > TIMEOUT_MAX:
            raise OverflowError(f"idle_timeout must be at most {TIMEOUT_MAX}")
        if min_workers < 0:
            raise ValueError(must_be_non_negative("min_workers"))
        # A worker parked this long (0: forever) leaves, while more than
        # min_workers remain; the next task that needs one starts a thread.
        self.idle_timeout_us = <long long>ceil(idle_timeout * 1e6)
        self.min_workers = min_workers
        self.key_burst = key_burst
        self.held_timers = []
        self.idle_paced = []
        # No task ever runs in a context another task wrote to: "copy", a
        # copy of the submitter's, made at submit (asyncio.to_thread's
        # rule); "fresh", a new, empty one, made when the task starts.
        self.fresh_context = context == "fresh"
        self.max_queue = max_queue_size
        self.target = target_workers
        self.lock()
        fit_lock_to_pool_locked(self)
        self.unlock()
        self.on_need_worker = on_need_worker
        self.pass_resource = pass_resource
        self.check_health = check_health
        self.max_retries = max_retries
        self.track_latency = track_latency
        self.parked_workers = []
        self.live_workers = []
        self.run_ewma_ns = 4 * SHORT_TASK_NS + 1  # long, until tasks show otherwise
        self.blocked = deque()
        self.closed_message = CLOSED_MESSAGE
        self.shards = [{} for _ in range(KEY_SHARDS)]

    def __dealloc__(self):
        cdef list left
        cdef object item
        cdef KeyChain chain
        if self.shards is not None:
            for shard in self.shards:
                for chain in (<dict>shard).values():
                    unlink_waiting(chain)
        if self.lanes.size:
            left = []
            lanes_take_all(&self.lanes, left)
            for item in left:
                gc_track(<FutureBase>item)  # its arguments may close a cycle
        lanes_free(&self.lanes)
        conexe_mutex_free(&self.mutex)

    # -- the engine lock ----------------------------------------------------
    cdef int lock(self) except -1:
        # include/conexe/mutex.h: a PyMutex where there is one (it spins
        # before parking, and lets the GIL or the thread state go if it parks).
        conexe_mutex_lock(&self.mutex)
        return 0

    cdef void unlock(self) noexcept:
        conexe_mutex_unlock(&self.mutex)

    # -- lanes ----------------------------------------------------------------
    cdef int enqueue_locked(self, FutureBase fut, int priority, bint front,
                            bint restamp) except -1:
        if self.track_latency and restamp:
            fut.enqueued_ns = now_ns()
        lanes_push(&self.lanes, fut, priority, front)
        self.n_queued += 1
        if self.spinning:
            conexe_store_release(&self.spin_signal, 1)
        return 0

    cdef FutureBase pop_locked(self):
        cdef FutureBase fut = lanes_pop(&self.lanes)
        if fut is not None:
            self.n_queued -= 1
        return fut

    cdef Worker pick_helper_locked(self, bint *spawn):
        """Who takes the queued work: a parked worker (returned), a new
        thread (*spawn), or nobody (the awake workers keep up, or a worker
        is spinning: it takes the first task and then picks a helper for
        the rest itself, so a producer of tiny tasks makes no futex wake-up
        per submit while one worker keeps up)."""
        cdef Worker w
        spawn[0] = False
        if self.lanes.size <= self.waking or self.spinning:
            return None
        if capped_locked(self):
            return call_watcher_locked(self, spawn)
        if self.parked_workers:
            w = <Worker>self.parked_workers.pop()
            unpark_locked(self, w)
            self.wakeups += 1
            return w
        if self.on_need_worker is not None and not self._closed and self.workers < self.target:
            threads_starting_locked(self, 1)  # workers <= target: the lock already fits
            spawn[0] = True
            return None
        w = wake_watcher_locked(self)  # the last worker left: put it to work
        if w is not None:
            self.wakeups += 1
        return w

    cdef void spawn(self):
        cdef bint none_left
        try:
            self.on_need_worker()
        except Exception as exc:
            # Never let a failed thread start lose accepted work: with no
            # worker left at all, the queued tasks fail with the reason.
            _log.error(NO_WORKER_THREAD_MESSAGE, exc)
            self.lock()
            thread_start_failed_locked(self)
            self.spawn_watcher = False  # if it was to watch, the next one will
            none_left = self.workers == 0
            self.unlock()
            if none_left:
                self.fail_queued(exc)

    cdef void unlock_and_wake_helper(self):
        """Release the engine lock, then wake the parked worker or start the
        thread that pick_helper_locked() chose for the queued work: the
        lock is held across neither."""
        cdef bint spawn
        cdef Worker wake = self.pick_helper_locked(&spawn)
        self.unlock()
        if wake is not None:
            PyThread_release_lock(wake.park)
        elif spawn:
            self.spawn()

    cdef void wake_producer_locked(self):
        cdef Gate g
        if self.blocked:
            g = <Gate>self.blocked.popleft()
            PyThread_release_lock(g.lock)

    cdef void wake_all_producers_locked(self):
        while self.blocked:
            self.wake_producer_locked()

    def _full_message(self):
        return QUEUE_FULL_MESSAGE % (self.n_queued, self.max_queue)

    # -- submitting -------------------------------------------------------------
    def submit(self, fn, tuple args, kwargs):
        """Queue ``fn(*args, **kwargs)`` at priority 0; never blocks.

        Raises QueueFull when the bound is reached and RuntimeError once
        closed."""
        return self.queue_call(fn, args, kwargs)

    cdef FutureBase queue_call(self, object fn, tuple args, object kwargs):
        """What submit() and executor_submit() do: queue at priority 0, unkeyed."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        cdef FutureBase fut = new_future(fn, args, kwargs)
        adopt_here(fut)
        if not self.fresh_context:
            fut.ctx = copy_context_here()
        bind_loop(fut)
        self.push(fut, 0, None, UNKEYED_NO_WAIT)
        return fut

    def submit_with(self, fn, tuple args, kwargs, *, int priority=0, double deadline=0.0,
                    context=None, bint no_retry=False, bint block=False, timeout=None,
                    double run_deadline=0.0):
        """:meth:`submit` with per-task options (see the twin)."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        cdef FutureBase fut = new_future(fn, args, kwargs)
        adopt_here(fut)
        set_run_deadline(fut, run_deadline)
        fut.priority = priority
        fut.deadline = deadline
        if context is not None:
            fut.ctx = context
            conexe_hand_over(context)  # dropped by the worker: see new_future
        elif not self.fresh_context:
            fut.ctx = copy_context_here()
        fut.no_retry = no_retry
        bind_loop(fut)
        self.push(fut, priority, None, PushMode(
            keyed=False, unique=False, block=block, timeout=timeout_arg(timeout), width=0,
            rate=-1.0))
        return fut

    def submit_keyed(self, key, fn, tuple args, kwargs, *, int priority=0,
                     double deadline=0.0, context=None, bint unique=False,
                     bint block=False, timeout=None, Py_ssize_t width=0,
                     double rate=-1.0, double run_deadline=0.0):
        """Queue ``fn(*args, **kwargs)`` behind every earlier task of ``key``
        (see the twin). With ``unique``, returns None for a busy key."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        check_key(key)  # an unhashable key fails here, before anything is queued
        if width < 0:
            raise ValueError(KEY_WIDTH_MESSAGE % (width,))
        cdef FutureBase fut = new_future(fn, args, kwargs)
        adopt_here(fut)
        set_run_deadline(fut, run_deadline)
        fut.priority = priority
        fut.deadline = deadline
        if context is not None:
            fut.ctx = context
            conexe_hand_over(context)  # dropped by the worker: see new_future
        elif not self.fresh_context:
            fut.ctx = copy_context_here()
        bind_loop(fut)
        if not self.push(fut, priority, key, PushMode(
                keyed=True, unique=unique, block=block, timeout=timeout_arg(timeout),
                width=width, rate=rate)):
            return None
        return fut

    cdef int push(self, FutureBase fut, int priority, object key, PushMode mode) except -1:
        """Queue ``fut`` (with ``mode.keyed``, behind the other tasks of
        ``key``), then wake or start a worker for it. Returns 1, or 0 (and
        queues nothing) for a ``mode.unique`` duplicate."""
        cdef dict shard = None
        cdef double deadline = 0.0
        cdef bint in_lane
        if mode.keyed:
            shard = <dict>self.shards[hash(key) & KEY_SHARD_MASK]
        if mode.block and mode.timeout > 0.0:
            deadline = now_s() + mode.timeout
        self.lock()
        try:
            if not self.wait_for_room_locked(shard, key, mode, deadline):
                self.unlock()
                return 0
            self.submitted += 1
            fut.owner = <void *>self
            if mode.keyed:
                in_lane = self.add_keyed_locked(
                    fut, priority, shard, key, mode.width or self.key_width,
                    mode.rate if mode.rate >= 0.0 else self.key_rate)
            else:
                self.enqueue_locked(fut, priority, False, True)
                in_lane = True
        except BaseException:
            self.unlock()
            raise
        if in_lane:
            self.unlock_and_wake_helper()
        else:
            self.unlock()
        return 1

    cdef bint wait_for_room_locked(self, dict shard, object key, PushMode mode,
                                   double deadline) except -1:
        """Raise RuntimeError once closed and QueueFull for a full queue,
        unless ``mode.block``: then wait (the engine lock released) for
        room until ``deadline`` (``mode.timeout`` < 0: forever); a task of
        this engine runs queued tasks itself meanwhile (helping.pxi). Returns 0
        for a ``mode.unique`` duplicate of a busy key, else 1."""
        cdef Gate gate
        cdef int got
        while True:
            if self._closed:
                raise RuntimeError(self.closed_message)
            if mode.unique and key_busy(shard.get(key)):
                return 0
            if self.max_queue == 0 or self.n_queued < self.max_queue:
                return 1
            if not mode.block:
                self.rejected += 1
                raise QueueFull(self._full_message())
            if help_while_full_locked(self):
                continue  # one of this engine's tasks ran one queued task
            gate = Gate()
            self.blocked.append(gate)
            self.unlock()
            try:
                if mode.timeout < 0.0:
                    got = acquire_timed(gate.lock, -1.0)
                else:
                    got = acquire_timed(gate.lock, max(0.0, deadline - now_s()))
            finally:
                self.lock()
            if not got:
                try:
                    self.blocked.remove(gate)
                except ValueError:  # woken just as we timed out: pass it on
                    self.wake_producer_locked()
                self.rejected += 1
                raise QueueFull(self._full_message())

    cdef bint add_keyed_locked(self, FutureBase fut, int priority, dict shard,
                               object key, Py_ssize_t width, double rate) except -1:
        """Queue ``fut`` as ``key``'s task: into a lane if the key has room
        (fewer than its width in flight, none waiting, and paced: none in a
        lane: returns 1), else behind the key's last task, out of the lanes
        (0). A new key's entry takes ``width`` and ``rate``."""
        cdef KeyChain chain = shard.get(key)
        if (chain is not None and chain.first is None and chain.active < chain.width
                and not chain.in_lane):
            fut.chain = chain
            if chain.interval > 0.0:
                chain.in_lane = True
                if chain.active == 0:  # its kept entry: busy again
                    self.active_keys += 1
            chain.active += 1
            self.enqueue_locked(fut, priority, False, True)
            return 1
        if chain is not None:
            # The key is busy: wait behind its tasks in flight, out of the lanes.
            fut.chain = chain
            if chain.last is None:
                chain.first = fut
            else:
                chain.last.next_in_key = fut
            chain.last = fut
            self.n_queued += 1
            if self.track_latency:
                fut.enqueued_ns = now_ns()
            return 0
        if self.idle_paced:
            forget_idle_paced_locked(self, now_s())
        chain = KeyChain(key, shard, width, rate, self.key_burst)
        shard[key] = chain
        fut.chain = chain
        self.active_keys += 1
        self.enqueue_locked(fut, priority, False, True)
        return 1

    def call_keyed(self, key, fn, /, *args, **kwargs):
        """``submit_keyed(key, fn, args, kwargs, context=copy_context())`` in
        one C call: ``KeyedExecutor.submit``'s fast path."""
        if not PyCallable_Check(fn):
            raise not_callable(fn)
        check_key(key)
        cdef FutureBase fut = new_future(fn, args, kwargs or None)
        adopt_here(fut)
        if not self.fresh_context:
            fut.ctx = copy_context_here()
        bind_loop(fut)
        self.push(fut, 0, key, KEYED_NO_WAIT)
        return fut

    def key_active(self, key):
        """Whether ``key`` has a task queued or running."""
        cdef dict shard = <dict>self.shards[hash(key) & KEY_SHARD_MASK]
        self.lock()
        try:
            return key_busy(shard.get(key))
        finally:
            self.unlock()

    cdef void advance_chain_locked(self, FutureBase fut):
        """``fut`` (one of a key's tasks in flight) ended or was skipped: the
        key's next waiting task takes its place at the tail of its lane, or
        the key has one fewer in flight (its entry is freed at none)."""
        cdef KeyChain chain = fut.chain
        if chain is None:
            return
        fut.chain = None
        if chain.first is not None and not chain.in_lane and not chain.held:
            release_head_locked(self, chain)
            return
        chain.active -= 1
        if chain.active == 0 and chain.first is None:
            self.active_keys -= 1
            if chain.interval > 0.0:
                keep_paced_key_locked(self, chain)
            else:
                del chain.shard[chain.key]

    # -- workers ------------------------------------------------------------------
    def add_workers(self, Py_ssize_t n):
        """Count ``n`` worker threads the caller is about to start."""
        self.lock()
        threads_starting_locked(self, n)
        fit_lock_to_pool_locked(self)
        self.unlock()

    def worker_started_failed(self):
        """Undo one :meth:`add_workers` (the thread could not start)."""
        self.lock()
        thread_start_failed_locked(self)
        self.unlock()

    def set_target_workers(self, Py_ssize_t n):
        if n < 0:
            raise ValueError(must_be_non_negative("target_workers"))
        self.lock()
        self.target = n
        fit_lock_to_pool_locked(self)
        self.unlock_and_wake_helper()

    def retire_worker(self, Worker worker):
        """Ask ``worker`` to leave once its current task is done."""
        self.lock()
        worker._retire = True
        if conexe_load_relaxed(&worker._parked):
            self.parked_workers.remove(worker)
            unpark_locked(self, worker)
            PyThread_release_lock(worker.park)
        elif worker is self.watcher and wake_watcher_locked(self) is not None:
            PyThread_release_lock(worker.park)
        self.unlock()

    def worker_loop(self, Worker worker):
        """Run tasks until closed and drained, retired, or (Runner) the
        worker's resource is found broken. Returns why: ``"shutdown"``,
        ``"retire"`` or ``"replace"``.

        Each turn: take the next task (parking while there is none), run
        it outside every lock, count how it ended, then complete its
        future before taking another, so what its waiters and callbacks
        do (cancel queued tasks, say) happens before the next one starts;
        the counters come first, so stats() never lags the future."""
        cdef TaskEnd end = TaskEnd()
        cdef FutureBase item
        cdef bint expired, locked = True
        cdef long long started = 0
        worker_here(worker)
        worker.engine = self
        self.lock()
        try:
            arrived_locked(self)  # this worker is in the loop now
            self.live_workers.append(worker)
            if self.spawn_watcher:
                self.spawn_watcher = False
                self.watcher = worker
                worker._watch = True
            while True:
                item = self.next_task_locked(worker, end.replace, &expired, True)
                if item is None:
                    locked = False
                    worker_gone()
                    worker.engine = None
                    return self.leave_locked(worker, end.replace)
                if not expired:
                    # Under the lock: close() reads it from other threads.
                    worker.current = item
                locked = False
                self.unlock_and_wake_helper()
                if expired:
                    item.fail_started(TimeoutError(START_DEADLINE_MESSAGE))
                    self.lock()
                    locked = True
                    continue
                if CONEXE_FREE_THREADED:
                    started = now_ns()
                    conexe_store_relaxed_ll(&worker.run_since, started)
                run_task(self, item, worker, end)  # with the GIL, outside every lock
                if CONEXE_FREE_THREADED:
                    conexe_store_relaxed_ll(&worker.run_since, 0)
                self.lock()
                locked = True
                worker.current = None
                task_ran(item)
                if CONEXE_FREE_THREADED:
                    note_run_time_locked(self, now_ns() - started)
                if self.end_task_locked(item, end):
                    # Counted as on its way back to the lanes while it
                    # completes the future: a submit made as soon as the
                    # waiter wakes needn't wake or start another worker.
                    set_off_locked(self)
                    locked = False
                    self.unlock_and_wake_helper()  # for a key's next task
                    try:
                        item.finish_quietly(end.outcome == COMPLETED, end.value)
                    finally:
                        end.value = None
                        self.lock()
                        locked = True
                        arrived_locked(self)
                item = None
        except BaseException:
            worker_gone()
            worker.engine = None
            if not locked:
                self.lock()
            if worker in self.live_workers:
                self.live_workers.remove(worker)
            if self.watcher is worker:
                self.watcher = None
            self.unlock()
            raise

    cdef FutureBase next_task_locked(self, Worker worker, bint replace, bint *expired,
                                     bint may_park):
        """The next task to run (claimed: RUNNING), parking while there is
        none; None when the worker is to leave: its resource is broken
        (``replace``), it was retired, or the engine is closed and drained
        (or, unless ``may_park``, when it would park or watch).
        Cancelled and expired tasks met on the way are counted and skipped;
        one whose start deadline passed just now is returned with
        ``*expired`` set, for the caller to fail outside the lock."""
        cdef FutureBase item
        cdef int claim
        cdef bint spun = False
        cdef double arm
        cdef bint paced
        expired[0] = False
        while True:
            if replace or worker._retire:
                return None
            if worker._watch:
                if not may_park:
                    return None
                watch_locked(self, worker)
                continue
            item = self.pop_locked()
            if item is None:
                if not may_park:
                    return None
                if self._closed and not self.held_keys:
                    return None
                if not spun and spin_for_work_locked(self):
                    spun = True  # once per idle spell: look again, then park
                    continue
                spun = False
                park_locked(self, worker)
                continue
            spun = False
            if item.helped:  # a worker waiting for it ran it (helping.pxi)
                self.n_queued += 1  # counted out then
                continue
            if self.blocked:
                self.wake_producer_locked()
            paced = item.chain is not None and (<KeyChain>item.chain).interval > 0.0
            if paced:
                arm = admit_paced_locked(self, item)
                if arm >= 0.0:  # too early: held for its time
                    if arm > 0.0:
                        self.unlock()
                        arm_pacing_timer(self, arm)
                        self.lock()
                    continue
            claim = item.claim(True)
            if claim == CLAIMED or claim == EXPIRED_NOW:
                if self.track_latency:
                    self.wait_hist[hist_index(now_ns() - item.enqueued_ns)] += 1
                if claim == EXPIRED_NOW:
                    self.failed += 1
                    self.advance_chain_locked(item)
                    expired[0] = True
                else:
                    self.running += 1
                    if paced:
                        paced_started_locked(self, <KeyChain>item.chain)
                return item
            if claim == SKIP_CANCELLED:
                self.cancelled += 1
            else:
                self.failed += 1
            self.advance_chain_locked(item)

    cdef bint end_task_locked(self, FutureBase fut, TaskEnd end) except -1:
        """Count how ``fut`` ended. A retry goes back to the front of its
        lane (returns 0: its future is not done); anything else frees its
        key for the key's next task (returns 1: complete its future)."""
        if end.run_ns >= 0:
            # Recorded under the lock taken here anyway: no extra lock
            # round-trip per task for the latency histogram.
            self.run_hist[hist_index(end.run_ns)] += 1
            end.run_ns = -1
        self.running -= 1
        if end.outcome == RETRIED:
            # Broken resource, tries left: back to the front of its lane
            # for a worker with a fresh resource.
            self.retried += 1
            self.enqueue_locked(fut, fut.priority, True, False)
            return 0
        if end.outcome == COMPLETED:
            self.completed += 1
        elif end.outcome == FAILED:
            self.failed += 1
        else:  # CANCELLED_UNSTARTED: it never ran (its future is done)
            self.cancelled += 1
        self.advance_chain_locked(fut)
        return 1

    cdef object leave_locked(self, Worker worker, bint replace):
        """The worker leaves: uncount it, release the engine lock, and say
        why (an ``EXIT_*`` reason)."""
        if replace:
            reason = EXIT_REPLACE
        elif worker._retire:
            reason = EXIT_RETIRE
        else:
            reason = EXIT_SHUTDOWN
        self.workers -= 1
        self.live_workers.remove(worker)
        if self.watcher is worker:  # woken to watch, then retired or replaced
            self.watcher = None
            worker._watch = False
        fit_lock_to_pool_locked(self)
        if reason is EXIT_SHUTDOWN and self.workers == 0:
            self.wake_all_producers_locked()
        # A task retried above went back into a lane without a helper being
        # picked, and this worker is leaving: wake a parked one for it (the
        # replacement may take a while to create its resource, or never
        # manage to).
        self.unlock_and_wake_helper()
        return reason

    # -- shutting down -------------------------------------------------------------
    def close(self, bint cancel=False, message=None):
        """Refuse new tasks; workers leave once the lanes are empty. With
        ``cancel`` the queued tasks are cancelled (their waiters wake) and
        their number is returned, and the running ones are asked to stop
        (``request_cancel``). See closing.pxi."""
        return close_engine(self, cancel, message)

    def release_held(self):
        """The process timer's call: see ``release_held_now`` (pacing.pxi)."""
        release_held_now(self)

    def fail_queued(self, exc):
        """Fail every queued task with ``exc``; returns how many."""
        return fail_queued_now(self, exc)

    def after_fork(self):
        """In a forked child: no worker threads exist there; refuse work."""
        # The parent's lock may have been held by a thread that is gone.
        conexe_mutex_init(&self.mutex)
        self._closed = True
        self.closed_message = AFTER_FORK_MESSAGE
        self.parked_workers = []
        self.blocked = deque()
        self.workers = 0
        self.waking = 0
        self.spinning = False
        self.running = 0
        self.live_workers = []
        self.watcher = None
        self.spawn_watcher = False
        self.stuck = 0
        self.held_keys = 0

    # -- reading ---------------------------------------------------------------------
    @property
    def closed(self):
        self.lock()  # written under the lock by close() and after_fork()
        try:
            return self._closed
        finally:
            self.unlock()

    @property
    def queued(self):
        self.lock()
        try:
            return self.n_queued
        finally:
            self.unlock()

    def stats(self):
        """A consistent snapshot of the counters (taken under the lock)."""
        self.lock()
        try:
            return {
                "workers": self.workers,
                "idle": len(self.parked_workers),
                "queued": self.n_queued,
                "priority_queued": self.lanes.above_zero,
                "active_keys": self.active_keys,
                "running": self.running,
                "submitted": self.submitted,
                "completed": self.completed,
                "failed": self.failed,
                "cancelled": self.cancelled,
                "rejected": self.rejected,
                "retried": self.retried,
                "wakeups": self.wakeups,
            }
        finally:
            self.unlock()

    def latency(self, which, percentiles):
        """Percentiles (seconds) of ``"wait"`` or ``"run"`` latencies."""
        cdef long long *src
        if which == "wait":
            src = self.wait_hist
        elif which == "run":
            src = self.run_hist
        else:
            raise ValueError(LATENCY_KIND_MESSAGE % (which,))
        self.lock()
        try:
            hist = [src[i] for i in range(HIST_BUCKETS)]
        finally:
            self.unlock()
        return hist_percentiles(hist, percentiles)


def executor_submit(self, fn, /, *args, **kwargs):
    """Schedule ``fn(*args, **kwargs)``; returns its Future.

    ``ConcurrentExecutor.submit`` itself: a function of this core placed
    in the executor class, so ``ex.submit`` is a true bound method (it
    holds the executor, as ThreadPoolExecutor's does) and a call runs no
    Python frame. While the executor's ``_plain_engine`` is an Engine of
    this core (no full-queue policy, not broken) the call is queued here;
    otherwise ``self._submit(fn, args, kwargs)`` decides.

    Raises RuntimeError after shutdown, TypeError if ``fn`` isn't
    callable, and (full queue, ``on_full="raise"``) QueueFull."""
    engine = self._plain_engine
    if type(engine) is Engine:
        return (<Engine>engine).queue_call(fn, args, kwargs)
    return self._submit(fn, args, kwargs)
