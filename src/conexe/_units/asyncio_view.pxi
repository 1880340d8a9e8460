cimport cython
from cpython.contextvars cimport PyContext_Enter, PyContext_Exit

import sys
import weakref

from ._contract import ASYNCIO_SEES_ENDED_AT_ONCE


# -- asyncio ------------------------------------------------------------------
# A future submitted from inside a running event loop is bound to that loop
# (its ``inbox``); one submitted outside any loop is bound to the first loop
# in whose thread asyncio looks at it (``wrap_future``, ``gather``, ``await``
# in a coroutine). Until asyncio looks at it, it is a plain
# concurrent.futures.Future. Once asyncio does (``isfuture()`` reads
# ``_asyncio_future_blocking``: ``loop.run_in_executor``, ``wrap_future``,
# ``await``, ``gather``...), it is, inside that loop, the asyncio future
# ``wrap_future`` would have made: asyncio's callbacks run in the loop,
# ``cancel()`` cancels even a running task (which runs on, its outcome
# dropped), and a cancelled one raises asyncio.CancelledError there. Seen
# from any other thread it stays a concurrent.futures.Future throughout.
#
# That is what lets ``loop.run_in_executor(executor, fn)`` skip
# ``_chain_future``: no second future, no pair of chained callbacks, and,
# instead of one ``call_soon_threadsafe`` (and self-pipe write) per task,
# one per batch: completions queue in the loop's inbox and a single
# callback in the loop drains them.
#
# What the loop sees changes only in the loop's thread, as with the future
# ``wrap_future`` would have made: a coroutine between two awaits must not
# see the future become done (asgiref's cancellation path reads done() right
# after an await and relies on it). So inside its loop, once asyncio has it,
# the future answers done()/cancelled()/result()/exception() from its *loop
# view* (the AIO_LOOP_* flags), which only the loop's thread moves: when a
# drain reaches the future, or at once when the future ends in the loop's
# own thread. The concurrent state (``st``) moves as before, for every other
# thread.

cdef enum AioFlag:
    AIO_CLAIMED = 1         # asyncio has seen the future (isfuture() was True)
    AIO_LOOP_DONE = 2       # its loop has seen it end (the loop view is done)
    AIO_LOOP_CANCELLED = 4  # ... cancelled in the loop, whatever the task did

cdef object _running_loop_fn = None
cdef object _sys_modules = sys.modules


cdef object running_loop():
    """The event loop running in this thread, or None; asyncio is not
    imported for it (no loop can run before something imported it)."""
    global _running_loop_fn
    cdef object get = _running_loop_fn
    if get is None:
        get = getattr(_sys_modules.get("asyncio.events"), "_get_running_loop", None)
        if get is None:
            return None
        with cython.critical_section(_inboxes):
            _running_loop_fn = get
    return get()


cdef object asyncio_attr(str name):
    return getattr(_sys_modules["asyncio"], name)


cdef bint ENDED_SEEN_AT_ONCE = ASYNCIO_SEES_ENDED_AT_ONCE  # C-level copy

cdef object _inboxes = weakref.WeakValueDictionary()  # id(loop) -> LoopInbox
cdef object _last_inbox = None  # weak reference to the last inbox used


cdef LoopInbox inbox_for(object loop):
    """The loop's inbox (one per loop, alive while a future bound to the
    loop is). The inbox holds its loop, so while it lives id(loop) is the
    loop's alone."""
    global _last_inbox
    cdef LoopInbox inbox
    with cython.critical_section(_inboxes):  # the cache is shared by all threads
        if _last_inbox is not None:
            inbox = _last_inbox()
            if inbox is not None and inbox.loop is loop:
                return inbox
        inbox = _inboxes.get(id(loop))
        if inbox is None:
            inbox = LoopInbox(loop)
            _inboxes[id(loop)] = inbox
        _last_inbox = inbox.ref
        return inbox


cdef inline void bind_loop(FutureBase fut) except *:
    cdef object loop = running_loop()
    if loop is not None:
        fut.inbox = inbox_for(loop)


cdef class LoopInbox:
    """Loop-bound futures that ended in another thread, on their way to
    their loop. An ending thread appends and, only if no drain is pending,
    schedules one with ``call_soon_threadsafe``; the drain, in the loop,
    shows the loop every future that arrived meanwhile and schedules
    their asyncio callbacks for its next turn."""

    def __cinit__(self, loop):
        self.loop = loop
        self.items = []
        self.scheduled = False
        self.ref = weakref.ref(self)

    cdef int ended(self, FutureBase fut) except -1:
        """``fut``, which asyncio has, just ended: its loop sees it at once
        in the loop's own thread (as an asyncio future), or from the next
        drain (as ``_chain_future``'s state copy, one per batch here)."""
        cdef list due
        if running_loop() is self.loop:
            due = []
            fut.end_in_loop(False, due)
            schedule_callbacks(self.loop, due, 0)
        else:
            self.post(fut)
        return 0

    cdef void post(self, FutureBase fut):
        cdef bint wake
        gc_track(fut)  # fut -> inbox -> items -> fut, until drained
        with cython.critical_section(self):
            self.items.append(fut)
            wake = not self.scheduled
            self.scheduled = True
        if not wake:
            return
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop is closed: asyncio drops callbacks it can no longer
            # run (an asyncio future of a closed loop can't even complete).
            with cython.critical_section(self):
                self.items = []
                self.scheduled = False
        except BaseException:
            _log.exception("waking the event loop failed")

    def _drain(self):
        cdef list items, due = []
        cdef object fut
        with cython.critical_section(self):
            items = self.items
            self.items = []
            self.scheduled = False
        # The loop sees every future of the batch end now, and their
        # callbacks run on its next turn, in order: asyncio's state copy
        # (_set_state) schedules them with call_soon, so code that counts
        # turns sees what it sees with the stdlib; one handle runs them all.
        for fut in items:
            (<FutureBase>fut).end_in_loop(False, due)
        if due:
            self.loop.call_soon(self._run_due, due)

    def _run_due(self, list due):
        """The callbacks a drain found, on the loop's next turn."""
        run_callbacks(self.loop, due)


cdef int run_callbacks(object loop, list due) except -1:
    """Run asyncio callbacks ``due`` (flat future, fn, context, more),
    in the loop's thread, as its handles would: an exception goes to the
    loop's handler; SystemExit and KeyboardInterrupt leave the loop, as
    asyncio lets them, and what is left is scheduled for its next turn."""
    cdef Py_ssize_t i = 0, j, n = len(due)
    cdef object fut, fn, ctx
    cdef list more
    while i < n:
        fut = due[i]
        fn = due[i + 1]
        ctx = due[i + 2]
        more = <list>due[i + 3]
        i += 4
        j = 0  # the next of ``more`` to run after ``fn``
        while True:
            if fn is not None:
                try:
                    PyContext_Enter(ctx)
                    try:
                        fn(fut)
                    finally:
                        PyContext_Exit(ctx)
                except (SystemExit, KeyboardInterrupt):
                    while more is not None and j < len(more):
                        loop.call_soon(more[j], fut, context=more[j + 1])
                        j += 2
                    schedule_callbacks(loop, due, i)
                    raise
                except BaseException as exc:
                    loop.call_exception_handler({
                        "message": "Exception in callback %r" % (fn,),
                        "exception": exc,
                        "future": fut,
                    })
            if more is None or j >= len(more):
                break
            fn = more[j]
            ctx = more[j + 1]
            j += 2
    return 0


cdef int schedule_callbacks(object loop, list due, Py_ssize_t start) except -1:
    """``loop.call_soon`` each asyncio callback of ``due`` (flat future,
    fn, context, more) from entry index ``start`` on, in order."""
    cdef Py_ssize_t i, j
    cdef list more
    call_soon = loop.call_soon
    for i in range(start, len(due), 4):
        if due[i + 1] is not None:
            call_soon(due[i + 1], due[i], context=due[i + 2])
        more = <list>due[i + 3]
        if more is not None:
            for j in range(0, len(more), 2):
                call_soon(more[j], due[i], context=more[j + 1])
    return 0


cdef inline bint faces_agree(FutureBase fut) noexcept:
    """Whether the loop's view is the task's state, whichever thread asks:
    asyncio never had the future, or its loop has seen it end (and not
    cancelled it). Then done(), result()... need not ask which loop runs
    here, which costs more than the rest of a result() of a done future."""
    cdef int flags = conexe_load_acquire(&fut.aio)
    return not flags & AIO_CLAIMED or (
        flags & (AIO_LOOP_DONE | AIO_LOOP_CANCELLED)) == AIO_LOOP_DONE


cdef inline int loop_state(FutureBase fut) noexcept:
    """The future's state as its loop sees it (see "asyncio" above):
    PENDING until the loop has seen it end."""
    cdef int flags = conexe_load_acquire(&fut.aio)
    if not flags & AIO_LOOP_DONE:
        return PENDING
    if flags & AIO_LOOP_CANCELLED:
        return CANCELLED_AND_NOTIFIED
    return state(fut)


@cython.final
cdef class AwaitInOwnLoop:
    """What ``await future`` steps through in the future's own loop: it
    yields the future once to the Task (asyncio's protocol), then returns
    its result. One small object per await, where a generator would take
    a generator and its closure: a gathered batch of awaits in flight
    keeps the cyclic GC's full passes that much shorter.

        >>> import asyncio, conexe
        >>> async def main():
        ...     with conexe.ConcurrentExecutor(1) as ex:
        ...         return await ex.submit(pow, 2, 5)  # submitted in the loop: its own
        >>> asyncio.run(main())
        32
    """
    cdef FutureBase fut   # None once the await is over
    cdef bint yielded

    def __iter__(self):
        return self

    def __next__(self):
        cdef FutureBase fut = self.fut
        if fut is None:
            raise StopIteration
        if not self.yielded and loop_state(fut) < CANCELLED:
            self.yielded = True
            fut.aio_blocking = True
            return fut  # the Task waits for it, then steps us again
        self.fut = None
        if loop_state(fut) < CANCELLED:
            raise RuntimeError("await wasn't used with future")
        raise StopIteration(fut.result())

    def send(self, value):
        """As a generator's ``send``: the value is ignored."""
        return self.__next__()

    def close(self):
        self.fut = None
