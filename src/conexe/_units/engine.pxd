# cython: language_level=3
# Declarations of engine.pxi (included by _core.pxd).

cdef struct PushMode:
    # How Engine.push queues a task.
    bint keyed                      # behind the other tasks of its key
    bint unique                     # keyed: queue nothing if the key is busy
    bint block                      # wait for room in a full queue
    double timeout                  # block: seconds to wait (< 0: forever)
    Py_ssize_t width                # keyed: the key's tasks in flight at most (0: the engine's)
    double rate                     # keyed: the key's starts per second (< 0: the engine's, 0: any)


cdef class Engine:
    cdef conexe_mutex mutex         # include/conexe/mutex.h
    cdef Lanes lanes                # lanes.pxi
    cdef Py_ssize_t n_queued        # in the lanes + waiting behind a key's head (see .queued)
    cdef Py_ssize_t max_queue
    cdef list parked_workers        # LIFO of parked Workers
    cdef Py_ssize_t waking          # woken or starting, not yet in the loop
    cdef bint spinning              # an idle worker is polling for work (GIL off)
    cdef int spin_signal            # set (atomically) when work arrives for it
    cdef Py_ssize_t workers
    cdef Py_ssize_t target
    cdef Py_ssize_t running
    cdef object blocked             # deque of Gates: producers waiting for room
    cdef bint _closed
    cdef object closed_message
    cdef object on_need_worker
    cdef bint pass_resource
    cdef object check_health
    cdef int max_retries
    cdef bint track_latency
    cdef bint fresh_context         # a task given no context runs in a new, empty one
    cdef list shards
    cdef Py_ssize_t key_width       # a key's tasks in flight at most, by default
    cdef Py_ssize_t active_keys
    cdef double key_rate            # a key's starts per second at most, by default (0.0: any)
    cdef Py_ssize_t key_burst       # how many of a paced key's starts may come back to back
    cdef list held_timers           # heap of (due, seq, KeyChain): paced keys waiting for it
    cdef list idle_paced            # heap of (forget_at, seq, KeyChain): idle paced keys kept
    cdef long long pacing_seq       # breaks ties in those heaps
    cdef double armed_at            # the earliest time the timer will call release_held (0.0: none)
    cdef Py_ssize_t held_keys       # paced keys holding a task for its time (workers stay for them)
    cdef object __weakref__         # the process timer holds the engine weakly
    cdef long long idle_timeout_us  # a worker parked this long leaves (0: never)
    cdef Py_ssize_t min_workers     # ... while more than this many remain
    cdef long long submitted
    cdef long long completed
    cdef long long failed
    cdef long long cancelled
    cdef long long rejected
    cdef long long retried
    cdef long long wakeups          # parked workers woken for work
    cdef bint short_tasks           # tasks run briefly and the GIL is off (capping_locked)
    cdef long long run_ewma_ns      # recent tasks' run time, averaged (free-threaded builds)
    cdef list live_workers          # every Worker in worker_loop
    cdef Worker watcher             # a worker watching for stuck ones, or None
    cdef bint spawn_watcher         # a thread is starting to be the watcher
    cdef Py_ssize_t stuck           # workers the watcher last saw in a long task
    cdef long long wait_hist[HIST_BUCKETS]
    cdef long long run_hist[HIST_BUCKETS]

    cdef int lock(self) except -1
    cdef void unlock(self) noexcept
    cdef int enqueue_locked(self, FutureBase fut, int priority, bint front, bint restamp) except -1
    cdef FutureBase pop_locked(self)
    cdef Worker pick_helper_locked(self, bint *spawn)
    cdef void unlock_and_wake_helper(self)
    cdef FutureBase queue_call(self, object fn, tuple args, object kwargs)
    cdef int push(self, FutureBase fut, int priority, object key, PushMode mode) except -1
    cdef bint wait_for_room_locked(self, dict shard, object key, PushMode mode,
                                   double deadline) except -1
    cdef bint add_keyed_locked(self, FutureBase fut, int priority, dict shard,
                               object key, Py_ssize_t width, double rate) except -1
    cdef void advance_chain_locked(self, FutureBase fut)
    cdef void spawn(self)
    cdef void wake_producer_locked(self)
    cdef void wake_all_producers_locked(self)
    cdef FutureBase next_task_locked(self, Worker worker, bint replace, bint *expired,
                                     bint may_park)
    cdef bint end_task_locked(self, FutureBase fut, TaskEnd end) except -1
    cdef object leave_locked(self, Worker worker, bint replace)
