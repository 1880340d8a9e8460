# cython: language_level=3
# Declarations of the Cython core's classes (see _core.pyx), so that other
# Cython modules can cimport them and reach their fields directly.

from cpython.pythread cimport PyThread_type_lock
from cpython.ref cimport PyObject

from conexe._contract cimport HIST_BUCKETS


cdef extern from "conexe/ring.h":
    ctypedef struct conexe_ring:
        Py_ssize_t size
    void conexe_ring_init(conexe_ring *r)
    int conexe_ring_push(conexe_ring *r, object item) except -1
    int conexe_ring_push_front(conexe_ring *r, object item) except -1
    PyObject *conexe_ring_pop(conexe_ring *r)
    void conexe_ring_free(conexe_ring *r)
    object conexe_new_instance(object type)


cdef extern from "conexe/mutex.h":
    ctypedef struct conexe_mutex:
        pass
    int conexe_mutex_init(conexe_mutex *mx)
    void conexe_mutex_free(conexe_mutex *mx)
    void conexe_mutex_lock(conexe_mutex *mx)
    void conexe_mutex_unlock(conexe_mutex *mx)
    void conexe_mutex_sleep_at_once(conexe_mutex *mx, int sleeps)
    bint CONEXE_FREE_THREADED
    void conexe_cpu_relax() nogil


cdef struct Lane:
    int priority          # higher is served first
    conexe_ring ring      # FIFO of owned Future pointers


cdef class LoopInbox


cdef class FutureCondition:
    # A future's _condition: a reentrant lock, plus a threading.Condition
    # over it made only if someone waits on or notifies it.
    # With the GIL off, `lock` is the lock itself. On a GIL build the GIL
    # makes "free? then mine" one step, so `owner` is the lock, and `lock`
    # (made at the first contended acquire) only puts those who found it
    # held to sleep until a release.
    cdef PyThread_type_lock lock
    cdef unsigned long owner        # thread holding it, 0: free (atomic: owned_by)
    cdef Py_ssize_t depth           # the owner's nested acquires
    cdef Py_ssize_t sleepers        # GIL build: threads asleep on `lock`
    cdef bint wake_sent             # GIL build: `lock` is released, a sleeper's to take
    cdef list waiting               # locks of the threads in wait(), made lazily

    cdef int take(self, double timeout) except -1
    cdef int take_contended(self, unsigned long me, double timeout) except -1
    cdef bint owned_by(self, unsigned long me) noexcept
    cdef void set_owner(self, unsigned long ident) noexcept
    cdef int drop(self) except -1
    cdef Py_ssize_t let_go(self) except -1
    cdef int notify_waiting(self) except -1


cdef class FutureBase:
    # Public state, mirrored by the _state/_result/_exception properties
    # that concurrent.futures.wait()/as_completed() read.
    cdef int st                     # PENDING .. FINISHED (see _core.pyx)
    cdef int untracked              # 1: made untracked by the GC, not yet re-tracked
    cdef object res                 # the result
    cdef object exc                 # the exception, or None
    cdef object callback            # the first done callback (no list for one)
    cdef list callbacks             # the done callbacks after it, None when none
    cdef object waiter              # the first concurrent.futures waiter
    cdef list waiters               # any more of them, made lazily
    cdef FutureCondition cond       # _condition, made lazily
    cdef PyThread_type_lock done_lock  # made only when someone blocks
    # The task, released as soon as it starts (or is cancelled).
    cdef object fn
    cdef object args
    cdef object kwargs
    cdef object ctx                 # contextvars.Context or None
    cdef KeyChain chain             # the key's entry, for keyed tasks
    cdef FutureBase next_in_key     # the next task waiting behind the same key
    cdef int priority
    cdef int tries                  # retries used (Runner)
    cdef bint no_retry
    cdef double deadline            # time.monotonic() start deadline, 0: none
    cdef long long enqueued_ns
    # asyncio (see "asyncio" in _core.pyx): the inbox of the event loop
    # the task was submitted from (None: submitted outside any loop), the
    # callbacks asyncio added, the cancel message, and the AIO_* flags.
    cdef LoopInbox inbox
    cdef object aio_fn              # the first of them (no list for one)
    cdef object aio_ctx             # and its context
    cdef list aio_callbacks         # any after it: flat [fn, context, fn, context, ...]
    cdef object cancel_msg
    cdef int aio                    # AIO_* flags: written in the loop's thread, under the lock
    cdef bint aio_blocking          # _asyncio_future_blocking (the loop's thread only)

    cdef void release_task(self)
    cdef tuple take_task(self)
    cdef int claim(self, bint check_deadline)
    cdef int complete(self, int new_state, object res, object exc) except -1
    cdef void finish_quietly(self, bint ok, object value)
    cdef void fail_started(self, object exc)
    cdef void cancel_claimed(self)
    cdef bint cancel_from(self, int expected) except -1
    cdef bint store_callback(self, object fn, list fresh) except -1
    cdef bint store_aio_callback(self, object fn, object context, list fresh) except -1
    cdef bint settle(self, int new_state, object res, object exc, int expected) except -1
    cdef int wait_done(self, double timeout) except -1
    cdef bint in_own_loop(self) except -1
    cdef bint own_loop_here(self, bint adopt) except -1
    cdef bint asyncio_has_it(self) except -1
    cdef bint cancel_in_loop(self, object msg) except -1
    cdef object loop_outcome(self, bint want_result)
    cdef int note_claimed(self) except -1
    cdef bint end_in_loop(self, bint cancelled, list due) except -1


cdef class LoopInbox:
    cdef readonly object loop
    cdef list items                 # the futures to show the loop
    cdef bint scheduled             # a drain is on its way to the loop
    cdef object ref                 # a weak reference to this inbox
    cdef object __weakref__

    cdef int ended(self, FutureBase fut) except -1
    cdef void post(self, FutureBase fut)


cdef class KeyChain:
    cdef object key
    cdef FutureBase first           # tasks waiting behind the key's head (FIFO)
    cdef FutureBase last
    cdef dict shard


cdef class Worker:
    cdef PyThread_type_lock park
    cdef int _parked               # atomic: resize() reads it without the lock
    cdef bint _retire
    cdef public object resource
    cdef public long long tasks_done
    cdef long long run_since        # atomic: its task's start (ns), 0 between tasks
    cdef bint _watch                # woken to watch the lanes (Engine.watch_locked)
    cdef bint _watch_woken          # watching, and its park lock was released


cdef class TaskEnd:
    cdef int outcome                # an Outcome (_contract.pxd)
    cdef object value               # the result or exception for its future
    cdef bint replace               # the worker's resource is broken: leave
    cdef long long run_ns           # its run time, not yet recorded (-1: none)

    cdef int set(self, int outcome, object value, bint replace) except -1


cdef struct PushMode:
    # How Engine.push queues a task.
    bint keyed                      # behind the other tasks of its key
    bint unique                     # keyed: queue nothing if the key is busy
    bint block                      # wait for room in a full queue
    double timeout                  # block: seconds to wait (< 0: forever)


cdef class Gate:
    cdef PyThread_type_lock lock


cdef class Engine:
    cdef conexe_mutex mutex         # include/conexe/mutex.h
    cdef Lane *lanes                # sorted by priority, highest first
    cdef int nlanes
    cdef int cap_lanes
    cdef Py_ssize_t n_queued        # in lanes + waiting behind a key's head (see .queued)
    cdef Py_ssize_t in_lanes
    cdef Py_ssize_t priority_queued
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
    cdef Py_ssize_t active_keys
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
    cdef void fit_lock_to_pool_locked(self) noexcept
    cdef int enqueue_locked(self, FutureBase fut, int priority, bint front, bint restamp) except -1
    cdef FutureBase pop_locked(self)
    cdef Worker pick_helper_locked(self, bint *spawn)
    cdef bint capping_locked(self) noexcept
    cdef bint capped_locked(self) except -1
    cdef Worker call_watcher_locked(self, bint *spawn)
    cdef Worker wake_watcher_locked(self)
    cdef int watch_locked(self, Worker worker) except -1
    cdef Py_ssize_t count_stuck_locked(self) except -1
    cdef int note_run_time_locked(self, long long ns) except -1
    cdef void unlock_and_wake_helper(self)
    cdef FutureBase queue_call(self, object fn, tuple args, object kwargs)
    cdef int push(self, FutureBase fut, int priority, object key, PushMode mode) except -1
    cdef bint wait_for_room_locked(self, dict shard, object key, PushMode mode,
                                   double deadline) except -1
    cdef bint add_keyed_locked(self, FutureBase fut, int priority, dict shard,
                               object key) except -1
    cdef void advance_chain_locked(self, FutureBase fut)
    cdef list drain_locked(self)
    cdef bint spin_for_work_locked(self) except -1
    cdef void spawn(self)
    cdef void wake_producer_locked(self)
    cdef void wake_all_producers_locked(self)
    cdef FutureBase next_task_locked(self, Worker worker, bint replace, bint *expired)
    cdef int park_locked(self, Worker worker) except -1
    cdef bint end_task_locked(self, FutureBase fut, TaskEnd end) except -1
    cdef object leave_locked(self, Worker worker, bint replace)
    cdef int run(self, FutureBase fut, Worker worker, TaskEnd end) except -1
    cdef int on_failure(self, FutureBase fut, object exc, object fn, object ctx,
                        TaskEnd end) except -1
