"""The twin of engine.pxi: :class:`Engine` (lanes, submitting, the worker
loop) and :func:`executor_submit`."""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._contract import (
    AFTER_FORK_MESSAGE,
    CLOSED_MESSAGE,
    CONTEXT_MESSAGE,
    CONTEXTS,
    EXIT_REPLACE,
    EXIT_RETIRE,
    EXIT_SHUTDOWN,
    HIST_BUCKETS,
    KEY_SHARDS,
    KEY_WIDTH_MESSAGE,
    LATENCY_KIND_MESSAGE,
    NO_WORKER_THREAD_MESSAGE,
    QUEUE_FULL_MESSAGE,
    START_DEADLINE_MESSAGE,
    hist_percentiles,
    must_be_non_negative,
)
from .._errors import QueueFull
from .._options import check_callable, check_key
from .._signals import acquire_interruptibly
from .asyncio_view import bind_loop
from .closing import close_engine, fail_queued_now
from .future import Future
from .helping import help_while_full_locked
from .keys import KEY_SHARD_MASK, KeyChain, key_busy
from .lanes import Lanes
from .pacing import (
    admit_paced_locked,
    arm_pacing_timer,
    forget_idle_paced_locked,
    keep_paced_key_locked,
    paced_started_locked,
    release_head_locked,
    release_held_now,
)
from .primitives import (
    CLAIMED,
    COMPLETED,
    EXPIRED_NOW,
    FAILED,
    RETRIED,
    SKIP_CANCELLED,
    hist_index,
    log,
)
from .running import (
    adopt_here,
    set_run_deadline,
    task_ran,
    worker_gone,
    worker_here,
)
from .workers import (
    TaskEnd,
    Worker,
    arrived_locked,
    park_locked,
    run_task,
    set_off_locked,
    thread_start_failed_locked,
    threads_starting_locked,
    unpark_locked,
)


class Engine:
    """Priority lanes, counters and the worker loop (see the module doc).

    ``max_queue_size`` bounds queued tasks (0 = unbounded).
    ``on_need_worker`` is called (outside any lock) when a task is queued,
    no worker is idle and fewer than ``target_workers`` exist: the caller
    starts a thread running :meth:`worker_loop`. ``pass_resource`` makes tasks
    ``fn(worker.resource)``; ``check_health(exc) -> bool`` and ``max_retries``
    give the Runner's retry-on-broken-resource rule.
    """

    def __init__(
        self,
        max_queue_size: int = 0,
        *,
        on_need_worker: Callable[[], None] | None = None,
        target_workers: int = 0,
        pass_resource: bool = False,
        check_health: Callable[[BaseException], bool] | None = None,
        max_retries: int = 0,
        track_latency: bool = False,
        context: str = "copy",
        key_width: int = 1,
        key_rate: float = 0.0,
        key_burst: int = 1,
        idle_timeout: float = 0.0,
        min_workers: int = 0,
    ) -> None:
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
        if not idle_timeout >= 0.0:  # NaN fails too
            raise ValueError(must_be_non_negative("idle_timeout"))
        if idle_timeout > threading.TIMEOUT_MAX:
            raise OverflowError(f"idle_timeout must be at most {threading.TIMEOUT_MAX}")
        if min_workers < 0:
            raise ValueError(must_be_non_negative("min_workers"))
        # A worker parked this long (0.0: forever) leaves, while more than
        # min_workers remain; the next task that needs one starts a thread.
        self._idle_timeout = idle_timeout
        self._min_workers = min_workers
        self._key_width = key_width
        if not key_rate >= 0.0 or key_burst < 1:  # a NaN rate fails the first
            raise ValueError(
                f"key_rate must be >= 0 and key_burst >= 1, got {key_rate}, {key_burst}"
            )
        self._key_rate = key_rate
        self._key_burst = key_burst
        # Paced keys (pacing.py): those waiting for their time, as a heap of
        # (due, seq, chain); idle ones kept, of (forget_at, seq, chain).
        self._held_timers: list[tuple[float, int, KeyChain]] = []
        self._idle_paced: list[tuple[float, int, KeyChain]] = []
        self._pacing_seq = 0
        self._armed_at = 0.0  # the earliest time the timer will call release_held
        self._held_keys = 0  # paced keys holding a task for its time
        # No task ever runs in a context another task wrote to: "copy", a
        # copy of the submitter's, made at submit (asyncio.to_thread's
        # rule); "fresh", a new, empty one, made when the task starts.
        self._fresh_context = context == "fresh"
        self._mutex = threading.Lock()
        self._lanes = Lanes()
        self._queued = 0  # in lanes + waiting behind a key's head
        self._max_queue = max_queue_size
        self._shards: list[dict[Any, KeyChain]] = [{} for _ in range(KEY_SHARDS)]
        self._active_keys = 0
        self._parked: list[Worker] = []  # LIFO: the warmest worker first
        self._live: list[Worker] = []  # every Worker in worker_loop
        self._waking = 0  # woken or starting, not yet back in the loop
        self._workers = 0
        self._target = target_workers
        self._running = 0
        self._blocked: deque[threading.Lock] = deque()  # producers waiting for room
        self._closed = False
        self._closed_message = CLOSED_MESSAGE
        self._on_need_worker = on_need_worker
        self._pass_resource = pass_resource
        self._check_health = check_health
        self._max_retries = max_retries
        self._track_latency = track_latency
        self._submitted = 0
        self._completed = 0
        self._failed = 0
        self._cancelled = 0
        self._rejected = 0
        self._retried = 0
        self._wakeups = 0  # parked workers woken for work
        self._wait_hist = [0] * HIST_BUCKETS
        self._run_hist = [0] * HIST_BUCKETS

    # -- submitting -------------------------------------------------------
    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
    ) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)`` at priority 0; never blocks.

        Raises QueueFull when the bound is reached and RuntimeError once
        closed."""
        check_callable(fn)
        fut: Future[Any] = Future()
        fut._fn = fn
        fut._args = args
        fut._kwargs = kwargs or None
        adopt_here(fut)
        if not self._fresh_context:
            fut._ctx = contextvars.copy_context()
        bind_loop(fut)
        self._push(fut, 0)
        return fut

    def submit_with(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        priority: int = 0,
        deadline: float = 0.0,
        context: Any = None,
        no_retry: bool = False,
        block: bool = False,
        timeout: float | None = None,
        run_deadline: float = 0.0,
    ) -> Future[Any]:
        """:meth:`submit` with per-task options: ``priority`` (higher runs
        first), ``deadline`` (a ``time.monotonic()`` value; still queued then
        means TimeoutError), ``context`` (a ``contextvars.Context`` to run in),
        ``no_retry``, ``block``/``timeout`` to wait for room in a full
        queue instead of raising QueueFull, and ``run_deadline`` (a
        ``time.monotonic()`` value the task sees through
        ``conexe.current_task()``; a task submitting it passes on its own if
        that comes first)."""
        check_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        fut: Future[Any] = Future()
        fut._fn = fn
        fut._args = args
        fut._kwargs = kwargs or None
        adopt_here(fut)
        set_run_deadline(fut, run_deadline)
        fut._priority = priority
        fut._deadline = deadline
        fut._ctx = context
        if context is None and not self._fresh_context:
            fut._ctx = contextvars.copy_context()
        fut._no_retry = no_retry
        bind_loop(fut)
        self._push(fut, priority, block=block, timeout=timeout)
        return fut

    def _push(
        self,
        fut: Future[Any],
        priority: int,
        *,
        key: Any = None,
        keyed: bool = False,
        unique: bool = False,
        block: bool = False,
        timeout: float | None = None,
        width: int = 1,
        rate: float = 0.0,
    ) -> bool:
        """Queue ``fut`` (with ``keyed``, behind the other tasks of ``key``),
        then wake or start a worker for it. Returns False (nothing queued)
        for a ``unique`` duplicate."""
        mutex = self._mutex
        deadline = None if timeout is None else time.monotonic() + timeout
        shard = self._shards[hash(key) & KEY_SHARD_MASK] if keyed else None
        mutex.acquire()
        try:
            if not self._wait_for_room_locked(shard, key, unique, block, deadline):
                mutex.release()
                return False
            self._submitted += 1
            fut._owner = self
            if shard is not None:
                in_lane = self._add_keyed_locked(fut, priority, shard, key, width, rate)
            else:
                self._enqueue_locked(fut, priority, False)
                in_lane = True
        except BaseException:
            mutex.release()
            raise
        if in_lane:
            self._unlock_and_wake_helper()
        else:
            mutex.release()
        return True

    def _wait_for_room_locked(
        self,
        shard: dict[Any, KeyChain] | None,
        key: Any,
        unique: bool,
        block: bool,
        deadline: float | None,
    ) -> bool:
        """Raise RuntimeError once closed and QueueFull for a full queue,
        unless ``block``: then wait (the engine lock released) for room
        until ``deadline`` (None: forever); a task of this engine runs
        queued tasks itself meanwhile (helping.py). Returns False for a
        ``unique`` duplicate of a busy key, else True."""
        mutex = self._mutex
        while True:
            if self._closed:
                raise RuntimeError(self._closed_message)
            if unique and key_busy(shard.get(key)):  # type: ignore[union-attr]
                return False
            if not self._max_queue or self._queued < self._max_queue:
                return True
            if not block:
                self._rejected += 1
                raise QueueFull(self._full_message())
            if help_while_full_locked(self):
                continue  # one of this engine's tasks ran one queued task
            gate = threading.Lock()
            gate.acquire()
            self._blocked.append(gate)
            mutex.release()
            try:
                got = acquire_interruptibly(
                    gate, None if deadline is None else max(0.0, deadline - time.monotonic())
                )
            finally:
                mutex.acquire()
            if not got:
                try:
                    self._blocked.remove(gate)
                except ValueError:  # woken just as we timed out: pass it on
                    self._wake_producer_locked()
                self._rejected += 1
                raise QueueFull(self._full_message())

    def _add_keyed_locked(
        self,
        fut: Future[Any],
        priority: int,
        shard: dict[Any, KeyChain],
        key: Any,
        width: int,
        rate: float,
    ) -> bool:
        """Queue ``fut`` as ``key``'s task: into a lane if the key has room
        (fewer than its width in flight, none waiting, and paced: none in a
        lane: returns True), else behind the key's last task, out of the
        lanes. A new key's entry takes ``width`` and ``rate``."""
        chain = shard.get(key)
        if (
            chain is not None
            and not chain.waiting
            and chain.active < chain.width
            and not chain.in_lane
        ):
            fut._chain = chain
            if chain.interval > 0.0:
                chain.in_lane = True
                if chain.active == 0:  # its kept entry: busy again
                    self._active_keys += 1
            chain.active += 1
            self._enqueue_locked(fut, priority, False)
            return True
        if chain is not None:
            # The key is busy: wait behind its tasks in flight, out of the lanes.
            fut._chain = chain
            chain.waiting.append(fut)
            self._queued += 1
            if self._track_latency:
                fut._enqueued_ns = time.monotonic_ns()
            return False
        if self._idle_paced:
            forget_idle_paced_locked(self, time.monotonic())
        fut._chain = shard[key] = KeyChain(key, shard, width, rate, self._key_burst)
        self._active_keys += 1
        self._enqueue_locked(fut, priority, False)
        return True

    def submit_keyed(
        self,
        key: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        *,
        priority: int = 0,
        deadline: float = 0.0,
        context: Any = None,
        unique: bool = False,
        block: bool = False,
        timeout: float | None = None,
        width: int = 0,
        rate: float = -1.0,
        run_deadline: float = 0.0,
    ) -> Future[Any] | None:
        """Queue ``fn(*args, **kwargs)`` behind every earlier task of ``key``:
        tasks of one key start in submission order, at most the key's width
        at once (the engine's ``key_width``, or ``width`` if the key has no
        task queued or running: its entry keeps it), different keys in
        parallel; a new entry also takes ``rate``, the key's starts per
        second at most (< 0: the engine's ``key_rate``, 0: no pace). With
        ``unique``, returns None (and queues nothing) if ``key`` already has
        a task queued or running. Other options as :meth:`submit_with`."""
        check_callable(fn)
        if timeout is not None and timeout < 0:
            raise ValueError(must_be_non_negative("timeout"))
        check_key(key)  # an unhashable key fails here, before anything is queued
        if width < 0:
            raise ValueError(KEY_WIDTH_MESSAGE % (width,))
        fut: Future[Any] = Future()
        fut._fn = fn
        fut._args = args
        fut._kwargs = kwargs or None
        adopt_here(fut)
        set_run_deadline(fut, run_deadline)
        fut._priority = priority
        fut._deadline = deadline
        fut._ctx = context
        if context is None and not self._fresh_context:
            fut._ctx = contextvars.copy_context()
        bind_loop(fut)
        if not self._push(
            fut,
            priority,
            key=key,
            keyed=True,
            unique=unique,
            block=block,
            timeout=timeout,
            width=width or self._key_width,
            rate=rate if rate >= 0.0 else self._key_rate,
        ):
            return None
        return fut

    def call_keyed(
        self, key: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        """``submit_keyed(key, fn, args, kwargs, context=copy_context())``:
        ``KeyedExecutor.submit``'s fast path (one C call in the C core)."""
        fut = self.submit_keyed(key, fn, args, kwargs)
        assert fut is not None
        return fut

    def key_active(self, key: Any) -> bool:
        """Whether ``key`` has a task queued or running."""
        shard = self._shards[hash(key) & KEY_SHARD_MASK]
        with self._mutex:
            return key_busy(shard.get(key))

    def _advance_chain_locked(self, fut: Future[Any]) -> None:
        """``fut`` (one of a key's tasks in flight) ended or was skipped: the
        key's next waiting task takes its place at the tail of its lane (so
        one busy key can't keep a worker), or the key has one fewer in
        flight (its entry is freed at none)."""
        chain = fut._chain
        fut._chain = None
        if chain is None:
            return
        if chain.waiting and not chain.in_lane and not chain.held:
            release_head_locked(self, chain)
            return
        chain.active -= 1
        if chain.active == 0 and not chain.waiting:
            self._active_keys -= 1
            if chain.interval > 0.0:
                keep_paced_key_locked(self, chain)
            else:
                del chain.shard[chain.key]

    def _full_message(self) -> str:
        return QUEUE_FULL_MESSAGE % (self._queued, self._max_queue)

    def _enqueue_locked(
        self, fut: Future[Any], priority: int, front: bool, restamp: bool = True
    ) -> None:
        if self._track_latency and restamp:
            fut._enqueued_ns = time.monotonic_ns()
        self._lanes.push(fut, priority, front)
        self._queued += 1

    def _pop_locked(self) -> Future[Any] | None:
        fut = self._lanes.pop()
        if fut is not None:
            self._queued -= 1
        return fut

    def _pick_helper_locked(self) -> tuple[Worker | None, bool]:
        """Who should take the queued work: a parked worker, a new thread,
        or nobody (the awake workers keep up)."""
        if self._lanes.size <= self._waking:
            return None, False
        if self._parked:
            w = self._parked.pop()
            unpark_locked(self, w)
            self._wakeups += 1
            return w, False
        if self._on_need_worker is not None and not self._closed and self._workers < self._target:
            threads_starting_locked(self, 1)
            return None, True
        return None, False

    def _spawn(self) -> None:
        try:
            self._on_need_worker()  # type: ignore[misc]
        except Exception as exc:
            # Never let a failed thread start lose accepted work: with no
            # worker left at all, the queued tasks fail with the reason.
            log.error(NO_WORKER_THREAD_MESSAGE, exc)
            with self._mutex:
                thread_start_failed_locked(self)
                none_left = self._workers == 0
            if none_left:
                self.fail_queued(exc)

    def _unlock_and_wake_helper(self) -> None:
        """Release the engine lock, then wake the parked worker or start the
        thread that _pick_helper_locked() chose for the queued work: the
        lock is held across neither."""
        wake, spawn = self._pick_helper_locked()
        self._mutex.release()
        if wake is not None:
            wake._park.release()
        elif spawn:
            self._spawn()

    def _wake_producer_locked(self) -> None:
        if self._blocked:
            self._blocked.popleft().release()

    # -- workers ------------------------------------------------------------
    def add_workers(self, n: int) -> None:
        """Count ``n`` worker threads the caller is about to start."""
        with self._mutex:
            threads_starting_locked(self, n)

    def worker_started_failed(self) -> None:
        """Undo one :meth:`add_workers` (the thread could not start)."""
        with self._mutex:
            thread_start_failed_locked(self)

    def set_target_workers(self, n: int) -> None:
        if n < 0:
            raise ValueError(must_be_non_negative("target_workers"))
        self._mutex.acquire()
        self._target = n
        self._unlock_and_wake_helper()

    def retire_worker(self, worker: Worker) -> None:
        """Ask ``worker`` to leave once its current task is done."""
        with self._mutex:
            worker.retire = True
            if worker.parked:
                self._parked.remove(worker)
                unpark_locked(self, worker)
                worker._park.release()

    def worker_loop(self, worker: Worker) -> str:
        """Run tasks until closed and drained, retired, or (Runner) the
        worker's resource is found broken. Returns why: ``"shutdown"``,
        ``"retire"`` or ``"replace"``.

        Each turn: take the next task (parking while there is none), run
        it outside every lock, count how it ended, then complete its
        future before taking another, so what its waiters and callbacks
        do (cancel queued tasks, say) happens before the next one starts;
        the counters come first, so stats() never lags the future."""
        mutex = self._mutex
        end = TaskEnd()
        worker_here(worker)
        worker._engine = self
        mutex.acquire()
        arrived_locked(self)  # this worker is in the loop now
        self._live.append(worker)
        while True:
            item, expired = self._next_task_locked(worker, end.replace)
            if item is None:
                worker_gone()
                worker._engine = None
                self._live.remove(worker)
                return self._leave_locked(worker, end.replace)
            if not expired:
                worker._current = item  # under the lock: close() reads it
            self._unlock_and_wake_helper()
            if expired:
                item._fail_started(TimeoutError(START_DEADLINE_MESSAGE))
                mutex.acquire()
                continue
            run_task(self, item, worker, end)  # outside every lock
            mutex.acquire()
            worker._current = None
            task_ran(item)
            if self._end_task_locked(item, end):
                # Counted as on its way back to the lanes while it completes
                # the future: a submit made as soon as the waiter wakes
                # needn't wake or start another worker.
                set_off_locked(self)
                self._unlock_and_wake_helper()  # for a key's next task
                try:
                    item._finish(end.outcome == COMPLETED, end.value)
                finally:
                    end.value = None
                    mutex.acquire()
                    arrived_locked(self)
            item = None

    def _next_task_locked(
        self, worker: Worker, replace: bool, may_park: bool = True
    ) -> tuple[Future[Any] | None, bool]:
        """The next task to run (claimed: RUNNING) and whether its start
        deadline passed just now (the caller fails it outside the lock),
        parking while there is none; ``(None, False)`` when the worker is
        to leave: its resource is broken (``replace``), it was retired, or
        the engine is closed and drained (or, unless ``may_park``, when it
        would park). Cancelled and expired tasks met on the way are
        counted and skipped."""
        while True:
            if replace or worker.retire:
                return None, False
            item = self._pop_locked()
            if item is None:
                if not may_park:
                    return None, False
                if self._closed and not self._held_keys:
                    return None, False
                park_locked(self, worker)
                continue
            if item._helped:  # a worker waiting for it ran it (helping.py)
                self._queued += 1  # counted out then
                continue
            if self._blocked:
                self._wake_producer_locked()
            paced = item._chain is not None and item._chain.interval > 0.0
            if paced:
                arm = admit_paced_locked(self, item)
                if arm >= 0.0:  # too early: held for its time
                    if arm > 0.0:
                        self._mutex.release()
                        arm_pacing_timer(self, arm)
                        self._mutex.acquire()
                    continue
            claim = item._claim(True)
            if claim == CLAIMED or claim == EXPIRED_NOW:
                if self._track_latency:
                    wait = time.monotonic_ns() - item._enqueued_ns
                    self._wait_hist[hist_index(wait)] += 1
                if claim == EXPIRED_NOW:
                    self._failed += 1
                    self._advance_chain_locked(item)
                    return item, True
                self._running += 1
                if paced:
                    paced_started_locked(self, item._chain)  # type: ignore[arg-type]
                return item, False
            if claim == SKIP_CANCELLED:
                self._cancelled += 1
            else:
                self._failed += 1
            self._advance_chain_locked(item)

    def _end_task_locked(self, fut: Future[Any], end: TaskEnd) -> bool:
        """Count how ``fut`` ended. A retry goes back to the front of its
        lane (returns False: its future is not done); anything else frees
        its key for the key's next task (returns True: complete its future)."""
        if end.run_ns >= 0:
            # Recorded under the lock taken here anyway: no extra lock
            # round-trip per task for the latency histogram.
            self._run_hist[hist_index(end.run_ns)] += 1
            end.run_ns = -1
        self._running -= 1
        outcome = end.outcome
        if outcome == RETRIED:
            # Broken resource, tries left: back to the front of its lane
            # for a worker with a fresh resource.
            self._retried += 1
            self._enqueue_locked(fut, fut._priority, True)
            return False
        if outcome == COMPLETED:
            self._completed += 1
        elif outcome == FAILED:
            self._failed += 1
        else:  # CANCELLED_UNSTARTED: it never ran (its future is done)
            self._cancelled += 1
        self._advance_chain_locked(fut)
        return True

    def _leave_locked(self, worker: Worker, replace: bool) -> str:
        """The worker leaves: uncount it, release the engine lock, and say
        why (an ``EXIT_*`` reason)."""
        if replace:
            reason = EXIT_REPLACE
        elif worker.retire:
            reason = EXIT_RETIRE
        else:
            reason = EXIT_SHUTDOWN
        self._workers -= 1
        if reason == EXIT_SHUTDOWN and self._workers == 0:
            self._wake_all_producers_locked()
        # A task retried above went back into a lane without a helper being
        # picked, and this worker is leaving: wake a parked one for it (the
        # replacement may take a while to create its resource, or never
        # manage to).
        self._unlock_and_wake_helper()
        return reason

    # -- shutting down --------------------------------------------------------
    def close(self, cancel: bool = False, message: str | None = None) -> int:
        """Refuse new tasks; workers leave once the lanes are empty. With
        ``cancel`` the queued tasks are cancelled (their waiters wake) and
        their number is returned, and the running ones are asked to stop
        (``request_cancel``). See closing.py."""
        return close_engine(self, cancel, message)

    def release_held(self) -> None:
        """The process timer's call: see :func:`.pacing.release_held_now`."""
        release_held_now(self)

    def fail_queued(self, exc: BaseException) -> int:
        """Fail every queued task with ``exc`` (the Runner uses this when no
        worker can be created); returns how many."""
        return fail_queued_now(self, exc)

    def _wake_all_producers_locked(self) -> None:
        while self._blocked:
            self._blocked.popleft().release()

    def after_fork(self) -> None:
        """In a forked child: no worker threads exist there; refuse work."""
        self._mutex = threading.Lock()
        self._closed = True
        self._closed_message = AFTER_FORK_MESSAGE
        self._parked = []
        self._blocked = deque()
        self._workers = 0
        self._waking = 0
        self._running = 0
        self._held_keys = 0

    # -- reading --------------------------------------------------------------
    @property
    def closed(self) -> bool:
        with self._mutex:  # written under the lock by close() and after_fork()
            return self._closed

    @property
    def queued(self) -> int:
        with self._mutex:
            return self._queued

    def stats(self) -> dict[str, int]:
        """A consistent snapshot of the counters (taken under the lock)."""
        with self._mutex:
            return {
                "workers": self._workers,
                "idle": len(self._parked),
                "queued": self._queued,
                "priority_queued": self._lanes.above_zero,
                "active_keys": self._active_keys,
                "running": self._running,
                "submitted": self._submitted,
                "completed": self._completed,
                "failed": self._failed,
                "cancelled": self._cancelled,
                "rejected": self._rejected,
                "retried": self._retried,
                "wakeups": self._wakeups,
            }

    def latency(self, which: str, percentiles: tuple[float, ...]) -> tuple[float, ...]:
        """Percentiles (seconds) of ``"wait"`` (queued -> started) or
        ``"run"`` (started -> ended) from the fixed-size histograms."""
        with self._mutex:
            if which == "wait":
                hist = list(self._wait_hist)
            elif which == "run":
                hist = list(self._run_hist)
            else:
                raise ValueError(LATENCY_KIND_MESSAGE % (which,))
        return hist_percentiles(hist, percentiles)


def executor_submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    """Schedule ``fn(*args, **kwargs)``; returns its Future.

    ``ConcurrentExecutor.submit`` itself: a function of the core placed in
    the executor class. The C core's queues on the executor's
    ``_plain_engine`` with no Python frame; this one hands the call to
    ``self._submit(fn, args, kwargs)``, which does the same in Python.

        >>> class Plain:
        ...     submit = executor_submit
        ...     def _submit(self, fn, args, kwargs):
        ...         return fn(*args)
        >>> Plain().submit(abs, -3)
        3

    Raises RuntimeError after shutdown, TypeError if ``fn`` isn't
    callable, and (full queue, ``on_full="raise"``) QueueFull."""
    return self._submit(fn, args, kwargs)  # type: ignore[no-any-return]
