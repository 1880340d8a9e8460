"""``ConcurrentExecutor``: a drop-in ``concurrent.futures.Executor``.

Same API and semantics as ``ThreadPoolExecutor`` (it passes CPython's own
tests for it), many times faster, plus a bounded queue with a choice of
back-pressure, priorities and start deadlines (through :class:`Task`), task
groups, ``resize`` and ``stats``, and a batch API (stage tasks with ids,
start them together, wait for all).

It is a ``concurrent.futures.ThreadPoolExecutor`` subclass, so it fits every
slot that checks for one (``loop.set_default_executor``), though it uses
none of that class's machinery. :class:`ThreadPoolExecutor` is the same
executor with the stdlib class's exact constructor signature.

    >>> import conexe
    >>> with conexe.ConcurrentExecutor(max_workers=4) as ex:
    ...     ex.submit(pow, 2, 8).result(), list(ex.map(abs, [-1, -2]))
    (256, [1, 2])
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from . import _deadlines
from ._errors import BrokenExecutor, QueueFull
from ._group import TaskGroup, cancel_not_started
from ._impl import Core, CoreEngine, CoreFuture, CoreWorker
from ._impl import core as _default_core
from ._options import (
    check_buffersize,
    check_callable,
    check_context,
    check_idle_reaping,
    check_max_workers,
    check_on_full,
    check_size,
)
from ._signals import wait_interruptibly
from ._task import Task, TaskResponse, check_timeout
from ._threads import EXIT_MESSAGE, WorkerThreads, interpreter_shutting_down, join_within

__all__ = ["ConcurrentExecutor", "ExecutorStats", "ThreadPoolExecutor"]

_log = logging.getLogger("conexe")
# ThreadPoolExecutor reports a failed initializer on this logger; code that
# watches for it (CPython's own tests included) keeps working.
_cf_log = logging.getLogger("concurrent.futures")

P = ParamSpec("P")
T = TypeVar("T")
FullPolicy = Literal["raise", "block", "caller_runs"]
TaskContext = Literal["copy", "fresh"]
_POLICIES = ("raise", "block", "caller_runs")


@dataclass(frozen=True)
class ExecutorStats:
    """A consistent snapshot of an executor's counters.

    At any quiet moment ``submitted == completed + failed + cancelled +
    queued + running``; ``rejected`` counts tasks the full queue refused
    (including those then run in the caller's thread).
    """

    workers: int
    idle: int
    queued: int
    running: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int


class ConcurrentExecutor(cf.ThreadPoolExecutor):
    """A thread pool with a C core; ``ThreadPoolExecutor``'s drop-in.

    ``max_queue_size`` bounds the queued tasks (0 = unbounded). When it is
    full, ``on_full`` decides: ``"raise"`` QueueFull (default), ``"block"``
    the caller (for at most ``block_timeout`` seconds, then QueueFull), or
    ``"caller_runs"`` the task in the caller's thread.

    ``context`` is what each task runs in: ``"fresh"`` (default), a new,
    empty ``contextvars`` context, as a ThreadPoolExecutor task in a new
    thread sees; ``"copy"``, a copy of the submitter's context made at
    submit, as ``asyncio.to_thread`` does. Either way no task sees what
    another task set, and no worker keeps the context of the thread that
    started it.

    ``exit_timeout`` is how long interpreter exit waits for the work it
    accepted: ``None`` (default), until it is done, as ThreadPoolExecutor
    waits; a number of seconds, at most that long, after which the queued
    tasks are cancelled, the running ones abandoned (its workers are daemon
    threads), and both logged to the ``conexe`` logger.

    ``idle_timeout``: a worker idle that many seconds exits, down to
    ``min_workers`` (default 0: an idle pool holds no threads); the next
    task that needs a worker starts one again. ``None`` (default): workers
    stay until shutdown, as ThreadPoolExecutor's do.

        >>> ex = ConcurrentExecutor(2, max_queue_size=100, on_full="block")
        >>> ex.submit(sum, [1, 2, 3]).result()
        6
        >>> ex.shutdown()

    It subclasses ``concurrent.futures.ThreadPoolExecutor`` only to be
    accepted where one is required (asyncio's default executor): the stdlib
    class's ``__init__`` never runs and none of its code is reached. The
    private names code reads off a ThreadPoolExecutor are here with the same
    meaning: ``_max_workers``, ``_threads`` (the live worker threads),
    ``_shutdown``, ``_broken``, ``_shutdown_lock``, ``_thread_name_prefix``,
    ``_initializer``, ``_initargs``, and ``_work_queue`` (``qsize()`` and
    ``empty()`` only: work enters through ``submit``).

        >>> import asyncio
        >>> async def main():
        ...     asyncio.get_running_loop().set_default_executor(ConcurrentExecutor(4))
        ...     return await asyncio.to_thread(pow, 2, 10)
        >>> asyncio.run(main())
        1024
    """

    _core: Core = _default_core
    BROKEN = BrokenExecutor  # the class Python 3.14's ThreadPoolExecutor names

    def __init__(
        self,
        max_workers: int | None = None,
        max_queue_size: int = 0,
        *,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        on_full: FullPolicy = "raise",
        block_timeout: float | None = None,
        context: TaskContext = "fresh",
        exit_timeout: float | None = None,
        idle_timeout: float | None = None,
        min_workers: int = 0,
    ) -> None:
        max_workers = check_max_workers(max_workers)
        idle = check_idle_reaping(idle_timeout, min_workers, max_workers)
        if exit_timeout is not None:
            check_timeout(exit_timeout, "exit_timeout")
        check_size(max_queue_size, "max_queue_size")
        check_context(context)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        check_on_full(on_full, _POLICIES)
        if block_timeout is not None:
            check_timeout(block_timeout, "block_timeout")
        if not isinstance(thread_name_prefix, str):
            raise TypeError("thread_name_prefix must be a str")

        self._max_workers = max_workers
        self._max_queue_size = max_queue_size
        self._on_full = on_full
        self._block_timeout = block_timeout
        self._initializer = initializer  # type: ignore[assignment]
        self._initargs = tuple(initargs)
        self._broken: str | bool = False  # type: ignore[assignment]  # False, or why
        self._shutdown_lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self._staged: list[tuple[Task[Any], Any]] | None = []  # None once started
        self._batch: dict[str, Any] = {}
        # Neither the engine nor the worker threads hold the executor
        # strongly: as with ThreadPoolExecutor, an executor dropped without
        # shutdown() finishes the work it accepted and its threads leave.
        threads: WorkerThreads

        def need_worker() -> None:
            threads.spawn_one()

        engine = self._engine = self._core.Engine(
            max_queue_size,
            on_need_worker=need_worker,
            target_workers=max_workers,
            context=context,
            idle_timeout=idle,
            min_workers=min_workers,
        )
        threads = self._threads = WorkerThreads(  # type: ignore[assignment]
            engine,
            thread_name_prefix,
            run=functools.partial(
                _worker_main, engine, initializer, self._initargs, weakref.ref(self)
            ),
            new_worker=self._core.Worker,
            exit_timeout=exit_timeout,
        )
        self._thread_name_prefix = threads.name_prefix
        weakref.finalize(self, engine.close).atexit = False
        if interpreter_shutting_down():
            self._engine.close(message=EXIT_MESSAGE)
        # submit() queues straight on this engine while no full-queue policy
        # applies and the executor isn't broken (see _submit for the rest).
        self._plain_engine: CoreEngine | None = engine if on_full == "raise" else None

    # -- threads -----------------------------------------------------------
    _threads: WorkerThreads  # type: ignore[assignment]  # iterates like TPE's set

    @property
    def _shutdown(self) -> bool:  # type: ignore[override]
        """True once ``shutdown()`` ran (ThreadPoolExecutor's flag)."""
        return bool(self._engine.closed)

    @property
    def _work_queue(self) -> _QueueView:  # type: ignore[override]
        """The queue's size, read the way ThreadPoolExecutor's is read."""
        return _QueueView(self._engine)

    def _adjust_thread_count(self) -> None:
        """Nothing to do: the engine starts a worker whenever queued work
        finds none idle, up to ``max_workers``."""

    def _initializer_failed(self) -> None:
        with self._shutdown_lock:
            self._broken = _BROKEN_MESSAGE
            self._plain_engine = None  # submit() now goes through _submit, which raises
            _break(self._engine)

    # -- submitting --------------------------------------------------------
    if TYPE_CHECKING:

        def submit(
            self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
        ) -> CoreFuture[T]: ...

    else:
        # The core's function, so ``ex.submit`` is a bound method like any
        # other (it keeps the executor alive) and a call runs no Python
        # frame: the frame that repacked ``*args`` only to hand them on was
        # a sixth of a tiny task's cost. A subclass may override it.
        submit = _default_core.executor_submit

    def _submit(self, fn: Any, args: tuple[Any, ...], kwargs: Any) -> CoreFuture[Any]:
        """What submit() does when the class's core can't queue the call
        itself: the engine is another core's, the executor is broken, or
        another on_full policy applies."""
        if self._plain_engine is not None:
            return self._plain_engine.submit(fn, args, kwargs)
        return self._submit_policy(fn, args, kwargs, 0, 0.0)

    def _submit_policy(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: Any,
        priority: int,
        deadline: float,
        run_deadline: float = 0.0,
    ) -> CoreFuture[Any]:
        if self._broken:
            raise BrokenExecutor(self._broken)
        engine = self._engine
        if self._on_full == "block":
            return engine.submit_with(
                fn,
                args,
                kwargs,
                priority=priority,
                deadline=deadline,
                block=True,
                timeout=self._block_timeout,
                run_deadline=run_deadline,
            )
        try:
            return engine.submit_with(
                fn, args, kwargs, priority=priority, deadline=deadline, run_deadline=run_deadline
            )
        except QueueFull:
            if self._on_full == "raise":
                raise
        return self._run_in_caller(fn, args, kwargs)

    def _run_in_caller(self, fn: Any, args: tuple[Any, ...], kwargs: Any) -> CoreFuture[Any]:
        fut = self._core.Future()
        fut.set_running_or_notify_cancel()
        try:
            result = fn(*args, **(kwargs or {}))
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
        # The task's frame, kept by its exception's traceback, links back
        # (f_back) to this one, whose locals outlive it: leaving ``fut``
        # there would make future -> exception -> frame -> future a cycle.
        try:
            return fut
        finally:
            del fut

    def submit_task(self, task: Task[T]) -> CoreFuture[T]:
        """Submit a :class:`Task` with its options (priority, start deadline).

        >>> with ConcurrentExecutor(1) as ex:
        ...     ex.submit_task(Task("t", max, (3, 9), priority=2)).result()
        9
        """
        if not isinstance(task, Task):
            raise TypeError(f"submit_task() takes a conexe.Task, not {type(task).__name__}")
        deadline = task.deadline()
        kwargs = dict(task.kwargs) if task.kwargs else None
        fut = self._submit_policy(
            task.fn, tuple(task.args), kwargs, task.priority, deadline, task.run_deadline()
        )
        if deadline:
            _deadlines.watch(fut, deadline)
        return fut

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """``Executor.map``: results in order, lazily and in chunks.

        Unlike ``ThreadPoolExecutor`` it reads its input only a window
        ahead of the consumer (an endless iterable is fine) and sends items
        to workers in chunks (``chunksize``, default: sized to keep every
        worker busy). Every item still runs, and an item's exception is
        raised when the iteration reaches it, exactly as there.

        ``buffersize`` (Python 3.14's, on every Python) bounds the read-ahead
        exactly: ``buffersize`` items are read and submitted at the call,
        then one more each time a result is taken; the iterator holds the
        executor only weakly and submits nothing once it is gone. With
        ``chunksize`` too, items are read ``chunksize`` at a time as soon as
        that many fit in the buffer, never more than ``buffersize`` ahead.

            >>> with ConcurrentExecutor(2) as ex:
            ...     squares = ex.map(pow, itertools.count(), itertools.repeat(2), buffersize=4)
            ...     [next(squares) for _ in range(5)]
            [0, 1, 4, 9, 16]
        """
        buffersize = check_buffersize(buffersize)
        check_callable(fn)
        if chunksize is not None:
            if isinstance(chunksize, bool) or not isinstance(chunksize, int):
                raise TypeError("chunksize must be an int")
            if chunksize < 1:
                raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        items = zip(*iterables, strict=False)
        if buffersize is not None:
            return _BufferedMap(self, fn, items, end_time, chunksize or 1, buffersize).results()
        return _ChunkedMap(self, fn, items, end_time, chunksize).results()

    def map_unordered(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """``map`` with the results in the order the calls end, as
        ``multiprocessing.Pool.imap_unordered`` gives them: a slow item
        holds back nothing behind it.

        At most ``buffersize`` items (default: twice ``max_workers``) are
        read ahead of the consumer: running, or ended and not yet taken;
        one more is read each time a result is taken, so an endless input
        is fine. An item's exception is raised when the iteration reaches
        it, in completion order, and ends the iteration (the items still in
        flight are cancelled, as when the iterator is closed); ``timeout``
        counts from the call, as in ``map``.

            >>> import time
            >>> with ConcurrentExecutor(2) as ex:
            ...     list(ex.map_unordered(lambda s: time.sleep(s) or s, [0.2, 0.01]))
            [0.01, 0.2]
        """
        buffersize = check_buffersize(buffersize)
        check_callable(fn)
        if buffersize is None:
            buffersize = 2 * self._max_workers
        end_time = None if timeout is None else timeout + time.monotonic()
        items = zip(*iterables, strict=False)
        return _UnorderedMap(self, fn, items, end_time, buffersize)

    # -- groups, resize, stats -----------------------------------------------
    def group(
        self, *, fail_fast: bool = False, first: int | None = None, timeout: float | None = None
    ) -> TaskGroup:
        """A :class:`TaskGroup` submitting to this executor, ended by its
        policy: every task (default), the first failure (``fail_fast``),
        ``first`` successes, or ``timeout`` seconds from now.

        >>> with ConcurrentExecutor(2) as ex:
        ...     with ex.group(first=1) as g:   # the first answer wins
        ...         for n in (3, 4):
        ...             _ = g.submit(pow, n, 2)
        ...     g.successes()[0] in (9, 16)
        True
        """
        return TaskGroup(self.submit, fail_fast=fail_fast, first=first, timeout=timeout)

    def resize(self, max_workers: int) -> None:
        """Change the number of workers. Growing starts threads as work
        needs them; shrinking lets running tasks finish, idle workers first."""
        if max_workers is None:
            raise TypeError("max_workers must be an int, not NoneType")
        max_workers = check_max_workers(max_workers)
        with self._shutdown_lock:
            if self._engine.closed:
                raise RuntimeError("cannot resize an executor after shutdown")
            self._max_workers = max_workers
            self._engine.set_target_workers(max_workers)
            workers = [w for w in self._threads.workers() if not w.retire]
            extra = len(workers) - max_workers
            if extra > 0:
                workers.sort(key=lambda w: not w.parked)  # idle ones first
                for w in workers[:extra]:
                    self._engine.retire_worker(w)

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def stats(self) -> ExecutorStats:
        """A snapshot of the counters (see :class:`ExecutorStats`)."""
        s = self._engine.stats()
        return ExecutorStats(
            workers=s["workers"],
            idle=s["idle"],
            queued=s["queued"],
            running=s["running"],
            submitted=s["submitted"],
            completed=s["completed"],
            failed=s["failed"],
            cancelled=s["cancelled"],
            rejected=s["rejected"],
        )

    # -- shutting down ---------------------------------------------------------
    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> None:
        """Refuse new work; with ``cancel_futures`` cancel the queued tasks
        (their waiters wake, unlike ThreadPoolExecutor's); with ``wait``
        join the workers after they finish what was accepted.

        With ``timeout``, wait at most that many seconds, then raise
        TimeoutError saying how many tasks are still running and queued.
        They are not dropped: a later ``shutdown()`` waits for them.

        >>> import time
        >>> ex = ConcurrentExecutor(1)
        >>> _ = ex.submit(time.sleep, 0.5)
        >>> try:
        ...     ex.shutdown(timeout=0.01)
        ... except TimeoutError as e:
        ...     print(str(e).split(":")[0])
        shutdown timed out after 0.01 s
        >>> ex.shutdown()  # waits for it
        """
        if timeout is not None:
            check_timeout(timeout, "timeout")
        with self._shutdown_lock:
            self._engine.close(cancel=cancel_futures)
            self._cancel_staged()
        if wait:
            join_within(self._threads, timeout)

    # -- the batch API: staged tasks with ids -------------------------------------------------
    def enqueue_task(self, task: Task[Any]) -> None:
        """Add ``task`` to the current batch; never blocks.

        Raises QueueFull when the queue is full, RuntimeError after close,
        ValueError if the batch already has a task with that id. Before
        :meth:`start_execution` the task waits; after, it is queued at once.
        """
        if not isinstance(task, Task):
            raise TypeError(f"enqueue_task() takes a conexe.Task, not {type(task).__name__}")
        with self._batch_lock:
            if task.id in self._batch:
                raise ValueError(f"task id {task.id!r} is already in this batch")
            if self._engine.closed:
                raise RuntimeError("cannot enqueue tasks after close()")
            if self._staged is None:
                fut = self._enqueue_now(task)
            else:
                if self._max_queue_size and (
                    len(self._staged) + self._engine.queued >= self._max_queue_size
                ):
                    raise QueueFull(
                        f"the queue is full ({len(self._staged)} tasks waiting to "
                        f"start, max_queue_size={self._max_queue_size})"
                    )
                fut = self._core.Future()
                self._staged.append((task, fut))
            self._batch[task.id] = fut

    def _enqueue_now(self, task: Task[Any]) -> Any:
        deadline = task.deadline()
        kwargs = dict(task.kwargs) if task.kwargs else None
        fut = self._engine.submit_with(
            task.fn,
            tuple(task.args),
            kwargs,
            priority=task.priority,
            deadline=deadline,
            run_deadline=task.run_deadline(),
        )
        if deadline:
            _deadlines.watch(fut, deadline)
        return fut

    def start_execution(self) -> None:
        """Start running the batch's waiting tasks (and any enqueued later)."""
        with self._batch_lock:
            if self._staged is None:
                return
            staged, self._staged = self._staged, None
            for task, placeholder in staged:
                _chain(self._enqueue_now(task), placeholder)

    def wait_for_completion(self, timeout: float | None = None) -> dict[str, TaskResponse]:
        """Wait for every task enqueued since the last call and return
        ``{task_id: TaskResponse}``; a task that was cancelled or never ran
        is there with its CancelledError."""
        with self._batch_lock:
            if self._staged:
                raise RuntimeError(
                    f"{len(self._staged)} enqueued tasks are waiting for "
                    "start_execution(); call it before wait_for_completion()"
                )
            batch, self._batch = self._batch, {}
        _, not_done = cf.wait(list(batch.values()), timeout=timeout)
        if not_done:
            with self._batch_lock:
                batch.update(self._batch)
                self._batch = batch
            raise TimeoutError(f"{len(not_done)} tasks of the batch are not done yet")
        out = {}
        for task_id, fut in batch.items():
            if fut.cancelled():
                out[task_id] = TaskResponse(task_id, error=cf.CancelledError())
            elif fut.exception() is not None:
                out[task_id] = TaskResponse(task_id, error=fut.exception())
            else:
                out[task_id] = TaskResponse(task_id, value=fut.result())
        return out

    def close(self) -> None:
        """End the batch API's use: ``shutdown(wait=True)``. Tasks that were
        enqueued but never started are cancelled (and reported so by
        :meth:`wait_for_completion`)."""
        self.shutdown(wait=True)

    def _cancel_staged(self) -> None:
        with self._batch_lock:
            staged, self._staged = (self._staged or []), None
        for _, placeholder in staged:
            placeholder.cancel()

    def __repr__(self) -> str:
        s = self._engine.stats()
        state = "shut down" if self._engine.closed else "running"
        return (
            f"<{type(self).__name__} {state} max_workers={self._max_workers} "
            f"workers={s['workers']} queued={s['queued']} running={s['running']}>"
        )


_BROKEN_MESSAGE = "A thread initializer failed, the thread pool is not usable anymore"


def _worker_main(
    engine: CoreEngine,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    executor_ref: weakref.ref[ConcurrentExecutor],
    worker: CoreWorker,
) -> None:
    """One worker thread's life: the initializer, then the engine's loop.

    It reaches the executor only through ``executor_ref`` (see __init__)."""
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            # ThreadPoolExecutor's logger and message: code watching for it
            # (CPython's own tests included) keeps working.
            _cf_log.critical("Exception in initializer:", exc_info=True)
            executor = executor_ref()
            if executor is not None:
                executor._initializer_failed()
            else:
                _break(engine)
            del executor
            engine.worker_started_failed()
            return
    engine.worker_loop(worker)


def _break(engine: CoreEngine) -> None:
    """Refuse new work and fail the queued tasks: the pool is broken."""
    engine.close()
    engine.fail_queued(BrokenExecutor(_BROKEN_MESSAGE))


def _chain(source: cf.Future[Any], target: Any) -> None:
    """Complete ``target`` like ``source`` (staged batch placeholders)."""

    def copy(src: cf.Future[Any]) -> None:
        if src.cancelled():
            target.cancel()
            return
        if not target.set_running_or_notify_cancel():
            return
        exc = src.exception()
        if exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(src.result())

    source.add_done_callback(copy)


class _ChunkedMap:
    """The machinery behind :meth:`ConcurrentExecutor.map`.

    Reads at most ``window`` items ahead of the consumer; sends them to
    workers in chunks run by ``core.run_chunk`` (one queue entry, one future
    per chunk), sized so every worker has several chunks to take. It holds
    the executor only until the input is exhausted, so a result iterator
    kept alive does not keep a dropped executor's threads alive.
    """

    def __init__(
        self,
        ex: ConcurrentExecutor,
        fn: Callable[..., Any],
        items: Iterator[tuple[Any, ...]],
        end_time: float | None,
        chunksize: int | None,
    ) -> None:
        self.submit: Callable[..., cf.Future[Any]] | None = ex.submit
        self.run_chunk = ex._core.run_chunk
        self.failed = ex._core.ChunkItemError
        self.fn = fn
        self.items = items
        self.end_time = end_time
        self.chunksize = chunksize
        workers = ex._max_workers
        self.window = max(1024, 64 * workers)
        self.spread = 4 * workers  # chunks per read-ahead window
        self.tail = 2 * workers  # the input's last items that go one to a chunk
        # A bounded queue bounds map's own chunks too, so that map never
        # overflows the queue by itself (nor waits on it, nor runs chunks in
        # the caller): only other producers can make it full.
        self.max_chunks = ex._max_queue_size or self.window
        if chunksize is not None:
            self.window = min(self.window, chunksize * self.max_chunks)
        self.in_flight: deque[tuple[cf.Future[Any], int]] = deque()
        self.queued_items = 0
        self.size = 0
        try:
            self._fill()  # like ThreadPoolExecutor, work starts before iteration
        except BaseException:
            for fut, _ in self.in_flight:
                fut.cancel()
            raise

    def _fill(self) -> None:
        submit = self.submit
        if submit is None:  # input exhausted
            return
        if self.size == 0:
            # First fill: read a whole window, then size the chunks so the
            # workers get ``spread`` of them (short inputs: one item each).
            items = list(itertools.islice(self.items, self.window))
            self.size = self.chunksize or max(
                1, min(256, len(items) // self.spread), -(-len(items) // self.max_chunks)
            )
            wanted = self.window
        else:
            # Top the window up, whole chunks at a time.
            room = self.window - self.queued_items
            chunks = min(-(-room // self.size), self.max_chunks - len(self.in_flight))
            if chunks <= 0:
                return
            wanted = chunks * self.size
            items = list(itertools.islice(self.items, wanted))
        ended = len(items) < wanted
        if ended:
            self.submit = None
        self._submit_chunks(submit, items, ended)

    def _submit_chunks(
        self, submit: Callable[..., cf.Future[Any]], items: list[tuple[Any, ...]], ended: bool
    ) -> None:
        """Submit ``items`` ``size`` to a chunk; once the input has ``ended``
        (and no ``chunksize`` was asked for), its last items go in shrinking
        chunks instead, down to one item each for the last ``tail`` items.

        With equal chunks to the end, the last round of chunks leaves most
        workers idle while a few run whole chunks: 4,000 sleeps in chunks of
        15 on 64 workers make 4.2 rounds, run as 5. Shrinking the chunks as
        the input runs out (guided self-scheduling) bounds that tail by one
        item's run time. A bounded queue still gets no more chunks than fit.
        """
        run_chunk, fn, size = self.run_chunk, self.fn, self.size
        guided = ended and self.chunksize is None
        start, total = 0, len(items)
        while start < total:
            step = size
            if guided:
                left = total - start
                budget = self.max_chunks - len(self.in_flight)  # >= 1 while items are left
                step = max(min(size, -(-left // self.tail)), -(-left // budget))
            chunk = items[start : start + step]
            self.in_flight.append((submit(run_chunk, fn, chunk), len(chunk)))
            start += step
        self.queued_items += total

    def results(self) -> Iterator[Any]:
        in_flight = self.in_flight
        failed = self.failed
        try:
            while in_flight:
                fut, n = in_flight[0]
                if self.end_time is None:
                    out = fut.result()
                else:
                    out = fut.result(self.end_time - time.monotonic())
                in_flight.popleft()
                del fut
                self.queued_items -= n
                self._fill()
                # Hand each result over without keeping a reference to it
                # (the consumer may be waiting for it to be freed).
                out.reverse()
                while out:
                    if type(out[-1]) is failed:
                        raise out.pop().error
                    yield out.pop()
        finally:
            for fut, _ in in_flight:
                fut.cancel()


class _BufferedMap:
    """:meth:`ConcurrentExecutor.map` with a ``buffersize``.

    ``buffersize`` items are read (and submitted, ``size`` to a chunk) at
    the call; then, at the start of every ``next()``, before it waits, as
    many items are read as keep ``buffersize`` of them ahead of the
    consumer, a chunk at a time (with ``size`` 1: exactly one). The executor
    is held only through a weak reference, so a dropped executor is not kept
    alive by its map: once it is gone nothing more is read or submitted,
    and the results already submitted are still delivered.

    On a bounded queue the map keeps at most ``max_queue_size`` of its own
    chunks in flight (the first read is chunked to fit), so that it never
    fills the queue by itself; reading then waits for a chunk to be used up.
    """

    def __init__(
        self,
        ex: ConcurrentExecutor,
        fn: Callable[..., Any],
        items: Iterator[tuple[Any, ...]],
        end_time: float | None,
        size: int,
        buffersize: int,
    ) -> None:
        self.executor = weakref.ref(ex)
        self.run_chunk = ex._core.run_chunk
        self.failed = ex._core.ChunkItemError
        self.fn = fn
        self.items: Iterator[tuple[Any, ...]] | None = items  # None once exhausted
        self.end_time = end_time
        self.size = min(size, buffersize)
        self.buffersize = buffersize
        # Unbounded: buffersize + 1 (the one just read, before its result is waited for).
        self.max_chunks = ex._max_queue_size or buffersize + 1
        self.read = 0  # items taken from the input
        self.taken = 0  # results handed to the consumer
        self.in_flight: deque[cf.Future[Any]] = deque()
        try:
            self._read(ex, buffersize, max(self.size, -(-buffersize // self.max_chunks)))
        except BaseException:
            self._cancel_in_flight()
            raise

    def _read(self, ex: ConcurrentExecutor, count: int, size: int) -> None:
        """Read up to ``count`` items; submit them in chunks of ``size``."""
        assert self.items is not None
        chunk = list(itertools.islice(self.items, count))
        self.read += len(chunk)
        if len(chunk) < count:
            self.items = None
        for i in range(0, len(chunk), size):
            self.in_flight.append(ex.submit(self.run_chunk, self.fn, chunk[i : i + size]))

    def _top_up(self) -> None:
        """At the start of a ``next()``: read what the buffer has room for,
        a chunk at a time."""
        ex = None
        while (
            self.items is not None
            and self.taken + self.buffersize + 1 - self.read >= self.size
            and len(self.in_flight) < self.max_chunks
        ):
            ex = ex or self.executor()
            if ex is None:
                return
            self._read(ex, self.size, self.size)
        del ex  # not held while the consumer has the iterator

    def _cancel_in_flight(self) -> None:
        for fut in self.in_flight:
            fut.cancel()

    def results(self) -> Iterator[Any]:
        in_flight, failed = self.in_flight, self.failed
        out: list[Any] = []
        try:
            while True:
                self._top_up()
                if not out:
                    if not in_flight:
                        return
                    if self.end_time is None:
                        out = in_flight[0].result()
                    else:
                        out = in_flight[0].result(self.end_time - time.monotonic())
                    in_flight.popleft()
                    out.reverse()
                self.taken += 1
                # Handed over without a reference kept (the consumer may be
                # waiting for the result to be freed).
                if type(out[-1]) is failed:
                    raise out.pop().error
                yield out.pop()
        finally:
            self._cancel_in_flight()


class _UnorderedMap:
    """:meth:`ConcurrentExecutor.map_unordered`: one task per item, at most
    ``buffersize`` of them submitted and not yet taken; each ended one is
    queued for the consumer by its done-callback. The executor is held only
    weakly, as :class:`_BufferedMap` holds it."""

    def __init__(
        self,
        ex: ConcurrentExecutor,
        fn: Callable[..., Any],
        items: Iterator[tuple[Any, ...]],
        end_time: float | None,
        buffersize: int,
    ) -> None:
        self.executor = weakref.ref(ex)
        self.fn = fn
        self.items: Iterator[tuple[Any, ...]] | None = items  # None once exhausted
        self.end_time = end_time
        self.in_flight: set[cf.Future[Any]] = set()
        self.ended: deque[cf.Future[Any]] = deque()  # in the order they ended
        self.changed = threading.Condition(threading.Lock())
        self.closed = False
        try:
            self._read(ex, buffersize)
        except BaseException:
            self._cancel_in_flight()
            raise

    def _read(self, ex: ConcurrentExecutor, count: int) -> None:
        """Read up to ``count`` items and submit each."""
        for _ in range(count):
            if self.items is None:
                return
            args = next(self.items, None)
            if args is None:
                self.items = None
                return
            fut = ex.submit(self.fn, *args)
            with self.changed:
                self.in_flight.add(fut)
            fut.add_done_callback(self._on_done)

    def _on_done(self, fut: cf.Future[Any]) -> None:
        with self.changed:
            if fut in self.in_flight:  # not when the map is being closed
                self.in_flight.discard(fut)
                self.ended.append(fut)
                self.changed.notify()

    def _next_ended(self) -> cf.Future[Any] | None:
        """The next ended future, waiting for one; None when all are taken."""
        with self.changed:
            while not self.ended:
                if not self.in_flight:
                    return None
                if self.end_time is None:
                    wait_interruptibly(self.changed)
                    continue
                left = self.end_time - time.monotonic()
                if left <= 0 or not wait_interruptibly(self.changed, left):
                    if not self.ended:
                        raise TimeoutError()
            return self.ended.popleft()

    def _cancel_in_flight(self) -> None:
        with self.changed:
            pending, self.in_flight = list(self.in_flight), set()
        for fut in pending:
            cancel_not_started(fut)

    # An iterator object, not a generator: closing it (or dropping it)
    # before the first next() must still cancel what it submitted.
    def __iter__(self) -> _UnorderedMap:
        return self

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        try:
            fut = self._next_ended()
            if fut is None:
                raise StopIteration
            if fut.cancelled() or fut.exception() is not None:
                return fut.result()  # raises: the map ends here (below)
            ex = self.executor()
            if ex is not None:
                self._read(ex, 1)  # the one taken makes room for one more
            del ex  # not held while the consumer has the iterator
            return fut.result()
        except BaseException:
            self.close()  # an error ends the map, as a generator's would
            raise

    def close(self) -> None:
        """Stop: cancel the items submitted and not started; read no more;
        hand out nothing more (what already ended included)."""
        self.closed = True
        self.items = None
        with self.changed:
            self.ended.clear()
        self._cancel_in_flight()

    def __del__(self) -> None:
        self.close()


class _QueueView:
    """``executor._work_queue`` as code that monitors a ThreadPoolExecutor
    reads it: ``qsize()`` and ``empty()`` of the tasks waiting to start.

        >>> with ConcurrentExecutor(1) as ex:
        ...     ex._work_queue.qsize()
        0
    """

    def __init__(self, engine: CoreEngine) -> None:
        self._engine = engine

    def qsize(self) -> int:
        return int(self._engine.queued)

    def empty(self) -> bool:
        return self.qsize() == 0

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "a conexe executor's queue is not a queue.SimpleQueue of work items: "
            "submit() work to the executor instead"
        )

    put = put_nowait = get = get_nowait = _refuse


# Numbers the default thread names of ThreadPoolExecutor, as the stdlib's counter does.
_pools_made = itertools.count()


class ThreadPoolExecutor(ConcurrentExecutor):
    """:class:`ConcurrentExecutor` under the stdlib's name, with its exact
    signature: ``ThreadPoolExecutor(max_workers=None, thread_name_prefix='',
    initializer=None, initargs=())``, positionally too. conexe's own options
    (``max_queue_size``, ``on_full``, ``block_timeout``, ``context``) are
    keyword-only. Its threads are named as the stdlib's are
    (``ThreadPoolExecutor-N_i`` unless given a prefix).

    Swapping ``from concurrent.futures import ThreadPoolExecutor`` for
    ``from conexe import ThreadPoolExecutor`` is the whole migration::

        >>> with ThreadPoolExecutor(4, "io") as ex:
        ...     ex.submit(sum, [1, 2]).result()
        3
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str | None = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_queue_size: int = 0,
        on_full: FullPolicy = "raise",
        block_timeout: float | None = None,
        context: TaskContext = "fresh",
        exit_timeout: float | None = None,
        idle_timeout: float | None = None,
        min_workers: int = 0,
    ) -> None:
        if thread_name_prefix is None or thread_name_prefix == "":
            # The stdlib's default names, which tools and CPython's own tests
            # look for: ThreadPoolExecutor-N_i. Other non-str values are
            # refused by ConcurrentExecutor.
            thread_name_prefix = f"ThreadPoolExecutor-{next(_pools_made)}"
        super().__init__(
            max_workers,
            max_queue_size,
            thread_name_prefix=thread_name_prefix,
            initializer=initializer,
            initargs=initargs,
            on_full=on_full,
            block_timeout=block_timeout,
            context=context,
            exit_timeout=exit_timeout,
            idle_timeout=idle_timeout,
            min_workers=min_workers,
        )
