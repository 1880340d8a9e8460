# cython: language_level=3
# Declarations of future.pxi (included by _core.pxd).

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
    # Seen by the running task (running.pxi, conexe.current_task()).
    cdef int stop_asked             # request_cancel() asked it to stop (atomic)
    cdef double run_deadline        # time.monotonic() deadline it sees, 0: none
    cdef list children              # the tasks it submitted while running, or None
    # Helping waits (helping.pxi).
    cdef void *owner                # the engine it was queued on (compared, never followed)
    cdef bint helped                # run by a worker waiting for it: its lane entry is stale
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
