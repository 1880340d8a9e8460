"""The task service behind the HTTP API, usable without any web framework.

A :class:`TaskService` accepts batches of named tasks, refuses a name that is
pending or running (the pool's dedup, see :mod:`._pool`), never blocks on a
full queue, remembers each finished task's result or error for a while, and
keeps per-second throughput for the dashboard.

    >>> from conexe.server._schema import TaskSpec
    >>> svc = TaskService(pool_size=2, queue_size=10)
    >>> out = svc.submit_batch([TaskSpec("a", duration=0), TaskSpec("a", duration=0)])
    >>> out.accepted, out.duplicate
    (['a'], ['a'])
    >>> svc.close()
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import functools
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import KeyedExecutor, TaskCancelled, current_task
from ._pool import QueueFull, TaskPool
from ._schema import (
    FinishedPage,
    ServiceStateName,
    Stats,
    SubmitResult,
    TaskError,
    TaskListing,
    TaskSpec,
    TaskState,
    TaskStateName,
)
from .journal import AcceptedRow, Journal, JournalRow
from .timings import HandlerTimings, Timings

__all__ = [
    "BatchOutcome",
    "ServiceStopping",
    "StopReport",
    "TaskRecord",
    "TaskService",
    "current_attempt",
]

log = logging.getLogger("conexe.server")

HISTORY_SECONDS = 600  # throughput kept for the dashboard: the last 10 minutes
CANCEL_POLL_S = 0.05  # how often a demo task looks for a request to stop


_ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("conexe_serve_attempt")


def current_attempt() -> int:
    """Which run of the calling task this is: 1, or more for a task a crash
    interrupted that the server runs again from its journal (``--state``).
    Raises LookupError outside a task of ``conexe serve``.

        >>> current_attempt()
        Traceback (most recent call last):
        ...
        LookupError: current_attempt() is for the tasks of conexe serve
    """
    try:
        return _ATTEMPT.get()
    except LookupError:
        raise LookupError("current_attempt() is for the tasks of conexe serve") from None


class ServiceStopping(RuntimeError):
    """The service is shutting down and accepts no new tasks."""


class Interrupted(Exception):
    """A demo sleep cut short because the server's grace period ran out."""


@dataclass(eq=False, slots=True)  # slots: one object per kept task for the GC to scan
class TaskRecord:
    """One accepted task and what became of it. ``state`` is one of
    ``pending``, ``running``, ``done``, ``failed``, ``cancelled``."""

    name: str
    duration: int | None
    handler: str | None
    submitted_at: float
    state: TaskStateName = "pending"
    started_at: float | None = None
    ended_at: float | None = None
    result: Any = None
    result_repr: str | None = None
    error: TaskError | None = None
    expires: float = 0.0  # monotonic time after which a finished record is forgotten
    seq: int = 0  # its row in the journal (0: no journal)
    attempt: int = 1
    args: tuple[Any, ...] = ()  # a handler task's (kept for the journal)
    kwargs: Mapping[str, Any] | None = None
    future: Any = None  # its conexe future once queued (DELETE cancels through it)
    cancel_requested: bool = False  # DELETE asked it to stop while it ran
    end_no: int = 0  # the order it ended in: GET /tasks/finished pages by it

    def listing(self) -> TaskListing:
        """The seed's ``{"name", "duration"}`` (plus ``handler`` when set)."""
        if self.handler is None:
            return {"name": self.name, "duration": self.duration}
        return {"name": self.name, "duration": None, "handler": self.handler}

    def to_json(self) -> TaskState:
        out: TaskState = {
            "name": self.name,
            "duration": self.duration,
            "state": self.state,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "attempt": self.attempt,
        }
        if self.handler is not None:
            out["duration"] = None
            out["handler"] = self.handler
        if self.state == "done":
            out["result"] = self.result
            if self.result_repr is not None:
                out["result_repr"] = self.result_repr
        elif self.error is not None:
            out["error"] = self.error
        if self.cancel_requested:
            out["cancel_requested"] = True
        return out


@dataclass
class BatchOutcome:
    """What became of each item of one ``POST /tasks``, names in request order."""

    requested: int
    accepted: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # the queue was full
    # With a journal: done once the accepted tasks are in it (answer after).
    journaled: cf.Future[None] | None = None

    def to_json(self) -> SubmitResult:
        return {
            "RequestedTask": self.requested,
            "SubmittedTasks": len(self.accepted),
            "DuplicateTasks": len(self.duplicate),
            "RefusedTasks": len(self.refused),
            "Accepted": self.accepted,
            "Duplicates": self.duplicate,
            "Refused": self.refused,
        }


@dataclass
class StopReport:
    """What a graceful stop did: how many tasks finished during it, and the
    names of those it cancelled, interrupted or had to leave running."""

    finished: int
    cancelled_pending: list[str]
    interrupted: list[str]
    still_running: list[str]
    # With a journal: the tasks left in it for the next start (not cancelled).
    kept_for_next_start: list[str] = field(default_factory=list)


class TaskService:
    """Named tasks on a pool of ``pool_size`` threads with at most
    ``queue_size`` waiting. ``handlers`` maps the names a request may use to
    plain functions; a task without one sleeps ``duration`` ms (the seed's
    demo work). Finished tasks stay visible for ``keep_seconds`` (and at most
    ``keep_max`` of them). ``executor_class`` (default ``conexe.KeyedExecutor``)
    lets tests bind a core. With a ``journal`` (``--state``), accepted tasks
    are recorded in it, and the tasks it holds unfinished run again now."""

    def __init__(
        self,
        pool_size: int,
        queue_size: int,
        *,
        handlers: Mapping[str, Callable[..., Any]] | None = None,
        keep_seconds: float = 300.0,
        keep_max: int = 10_000,
        executor_class: type[KeyedExecutor] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.pool_size = pool_size
        self.queue_size = queue_size
        self.handlers = dict(handlers or {})
        self.keep_seconds = keep_seconds
        self.keep_max = keep_max
        self.started_at = time.time()
        self._pool = TaskPool(pool_size, queue_size, executor_class=executor_class)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a task ended (while stopping)
        self._pending: dict[str, TaskRecord] = {}  # insertion order = queue order
        self._running: dict[str, TaskRecord] = {}
        self._finished: OrderedDict[str, TaskRecord] = OrderedDict()
        self._counts = {
            "accepted": 0,
            "duplicate": 0,
            "refused": 0,
            "done": 0,
            "failed": 0,
            "cancelled": 0,
            "recovered": 0,  # from the journal, at the start
        }
        self._history = [0] * HISTORY_SECONDS  # tasks ended per second, a ring
        self._history_at = int(time.monotonic())  # the second of the newest slot
        self._abort = threading.Event()  # set when the grace period runs out
        self.state: ServiceStateName = "serving"  # then "stopping", then "stopped"
        self._journal = journal
        self._seq = 0 if journal is None else journal.last_seq  # the journal's task numbers
        self._ends = 0  # tasks ended so far (and restored finished ones): end_no
        self._timings = Timings()  # queue wait and run time per handler (/metrics)
        # Journaled tasks to run again that the queue had no room for: they
        # go in first as room frees (new tasks are refused meanwhile).
        self._backlog: deque[tuple[TaskRecord, Callable[[], Any]]] = deque()
        self._leaving = False  # stopping with a journal: what doesn't end now runs next start
        if journal is not None:
            self._restore(journal)

    @property
    def journaled(self) -> bool:
        """Whether accepted tasks are kept in a journal (``--state``)."""
        return self._journal is not None

    # -- submitting ---------------------------------------------------------------
    def submit_batch(self, specs: Sequence[TaskSpec]) -> BatchOutcome:
        """Queue each task whose name is free; never blocks.

        A name already pending or running, or seen earlier in this batch, is
        a duplicate (the executor checks that before the queue's room, so a
        duplicate is reported as one even when the queue is full); an item
        the full queue has no room for is refused. Raises ServiceStopping
        while the server shuts down.
        """
        if self.state != "serving":
            raise ServiceStopping("the server is shutting down and accepts no new tasks")
        out = BatchOutcome(len(specs))
        seen: set[str] = set()
        submitted: list[tuple[TaskRecord, cf.Future[Any]]] = []
        submit, run, lock, pending = self._pool.submit_unique, self._run, self._lock, self._pending
        journal, rows = self._journal, []  # rows: as Journal.accepted() takes them
        now = time.time()
        # One lock for the whole batch: a worker can't start a task before it
        # is listed as pending (the worker takes this lock to move it), and
        # the workers wait on the lock (not on the GIL) while a batch goes in.
        with lock:
            for spec in specs:
                name = spec.name
                if name in seen:
                    out.duplicate.append(name)
                    continue
                seen.add(name)
                if self._backlog:  # the journal's tasks go first
                    (out.duplicate if name in pending else out.refused).append(name)
                    continue
                rec = TaskRecord(name, spec.duration, spec.handler, now)
                call = self._sleeper(spec.duration) if spec.handler is None else self._caller(spec)
                if journal is not None:
                    self._seq += 1
                    rec.seq, rec.args, rec.kwargs = self._seq, spec.args, spec.kwargs
                try:
                    fut = submit(name, run, rec, call)
                except QueueFull:
                    out.refused.append(name)
                    continue
                except RuntimeError:  # the pool closed under us: stopping
                    raise ServiceStopping(
                        "the server is shutting down and accepts no new tasks"
                    ) from None
                if fut is None:
                    out.duplicate.append(name)
                    continue
                rec.future = fut
                pending[name] = rec
                out.accepted.append(name)
                submitted.append((rec, fut))
                if journal is not None:
                    rows.append(_accepted_row(rec))
            if rows:  # queued before any of them can start or end: the journal's order
                out.journaled = journal.accepted(rows)  # type: ignore[union-attr]
            counts = self._counts
            counts["accepted"] += len(out.accepted)
            counts["duplicate"] += len(out.duplicate)
            counts["refused"] += len(out.refused)
        # Outside the lock: a task already over runs its callback right here.
        self._watch(submitted)
        return out

    def _watch(self, submitted: list[tuple[TaskRecord, cf.Future[Any]]]) -> None:
        """Record each task's end once its future is done (outside the lock:
        a task already over runs its callback right here)."""
        for rec, fut in submitted:
            fut.add_done_callback(functools.partial(self._finished_cb, rec))

    def _sleeper(self, duration: int | None) -> Callable[[], None]:
        seconds = (duration or 0) / 1000
        abort = self._abort

        def sleep() -> None:
            # In slices, to see a DELETE's request to stop (conexe.current_task()).
            task, end = current_task(), time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                if abort.wait(min(left, CANCEL_POLL_S)):
                    raise Interrupted("the server stopped before the task finished")
                if task is not None:
                    task.check()  # raises TaskCancelled once asked to stop

        return sleep

    def _caller(self, spec: TaskSpec) -> Callable[[], Any]:
        fn, args, kwargs = self.handlers[spec.handler or ""], spec.args, spec.kwargs
        return lambda: fn(*args, **kwargs)

    # -- the journal's tasks, at the start ------------------------------------------------
    def _restore(self, journal: Journal) -> None:
        """Serve the journal's finished tasks' outcomes for the rest of their
        retention, and run its unfinished ones again, in acceptance order."""
        now, mono = time.time(), time.monotonic()
        for row in journal.finished:
            rec = _record(row)
            self._ends += 1
            rec.end_no = self._ends
            rec.expires = mono + (row.ended_at or now) + self.keep_seconds - now
            self._finished[rec.name] = rec
            self._finished.move_to_end(rec.name)
        self._counts["recovered"] = len(journal.unfinished)
        submitted: list[tuple[TaskRecord, cf.Future[Any]]] = []
        with self._lock:
            for row in journal.unfinished:
                rec = _record(row)
                if rec.handler is not None and rec.handler not in self.handlers:
                    missing: TaskError = {
                        "type": "HandlerError",
                        "message": f"handler {rec.handler!r} is not registered on this server "
                        "(start it with the --handlers module that defines it)",
                    }
                    self._end_locked(rec, "failed", time.time(), error=missing)
                    continue
                self._pending[rec.name] = rec
                spec = TaskSpec(rec.name, rec.duration, rec.handler, rec.args, rec.kwargs or {})
                call = self._sleeper(rec.duration) if rec.handler is None else self._caller(spec)
                self._backlog.append((rec, call))
            self._feed_locked(submitted)
        self._watch(submitted)

    def _feed_locked(self, submitted: list[tuple[TaskRecord, cf.Future[Any]]]) -> None:
        """Queue the backlog's tasks while there is room."""
        backlog = self._backlog
        while backlog:
            rec, call = backlog[0]
            try:
                fut = self._pool.submit_unique(rec.name, self._run, rec, call)
            except (QueueFull, RuntimeError):  # full, or closed: stopping
                return
            backlog.popleft()
            if fut is not None:  # never None: its name is reserved while backlogged
                rec.future = fut
                submitted.append((rec, fut))

    def _feed_backlog(self) -> None:
        submitted: list[tuple[TaskRecord, cf.Future[Any]]] = []
        with self._lock:
            self._feed_locked(submitted)
        self._watch(submitted)

    # -- a task's life, on a worker thread -------------------------------------------
    def _run(self, rec: TaskRecord, call: Callable[[], Any]) -> Any:
        with self._lock:
            if self._pending.get(rec.name) is rec:
                del self._pending[rec.name]
            self._running[rec.name] = rec
            rec.state = "running"
            rec.started_at = time.time()
        if self._journal is not None:  # after its row: the batch that queued it held the lock
            self._journal.started(rec.seq, rec.started_at)
        token = _ATTEMPT.set(rec.attempt)
        try:
            return call()
        finally:
            _ATTEMPT.reset(token)

    def _finished_cb(self, rec: TaskRecord, fut: cf.Future[Any]) -> None:
        # The pool has already freed the name: a new task of the same name may
        # be pending now, hence the identity checks below.
        state: TaskStateName
        interrupted = False
        if fut.cancelled() or isinstance(fut.exception(), TaskCancelled):
            state = "cancelled"
        elif (exc := fut.exception()) is not None:
            state = "failed"
            rec.error = {"type": type(exc).__name__, "message": str(exc)}
            interrupted = isinstance(exc, Interrupted)
            if not interrupted:
                log.warning("task %r failed: %s: %s", rec.name, type(exc).__name__, exc)
        else:
            state = "done"
            result = fut.result()
            if result is not None:
                try:
                    json.dumps(result, allow_nan=False)  # NaN is not JSON
                except (TypeError, ValueError):
                    rec.result_repr = repr(result)[:1000]
                    result = None
            rec.result = result
        with self._lock:
            # Stopping with a journal: a task cancelled or interrupted by the
            # stop stays unfinished there, and runs at the next start.
            kept = self._leaving and (state == "cancelled" or interrupted)
            self._end_locked(rec, state, time.time(), journal=not kept)
        if self._backlog:
            self._feed_backlog()

    def _end_locked(
        self,
        rec: TaskRecord,
        state: TaskStateName,
        at: float,
        *,
        error: TaskError | None = None,
        journal: bool = True,
    ) -> None:
        """Record that ``rec`` ended: listed as finished (kept for a while),
        counted, and written to the journal unless not ``journal``."""
        now = time.monotonic()
        name = rec.name
        if self._pending.get(name) is rec:
            del self._pending[name]
        if self._running.get(name) is rec:
            del self._running[name]
        rec.state = state
        rec.ended_at = at
        if error is not None:
            rec.error = error
        if rec.started_at is not None:  # it ran
            self._timings.observe(
                rec.handler, wait=rec.started_at - rec.submitted_at, run=at - rec.started_at
            )
        if journal and self._journal is not None:
            err = None if rec.error is None else {k: str(v) for k, v in rec.error.items()}
            self._journal.ended(rec.seq, state, at, rec.result, rec.result_repr, err)
        rec.expires = now + self.keep_seconds
        self._ends += 1
        rec.end_no = self._ends
        finished = self._finished
        finished[name] = rec
        finished.move_to_end(name)
        self._counts[state] += 1
        self._tick_locked(now)
        self._history[self._history_at % HISTORY_SECONDS] += 1
        while finished and (
            len(finished) > self.keep_max or next(iter(finished.values())).expires < now
        ):
            finished.popitem(last=False)
        if self.state != "serving":  # only stop() waits on it: spare the hot path
            self._changed.notify_all()

    def _tick_locked(self, now: float) -> None:
        """Advance the throughput ring to the current second, zeroing the
        seconds nobody finished a task in."""
        second = int(now)
        gap = second - self._history_at
        if gap <= 0:
            return
        for s in range(self._history_at + 1, self._history_at + 1 + min(gap, HISTORY_SECONDS)):
            self._history[s % HISTORY_SECONDS] = 0
        self._history_at = second

    # -- reading ----------------------------------------------------------------------
    # The two listings copy the dict without taking the lock: the copy is one
    # atomic dict operation (under the GIL, and with the dict's own lock on a
    # free-threaded build), and a GET must never wait for a worker that was
    # preempted while holding the lock (a GIL convoy of several switch
    # intervals under load).
    def running(self) -> list[TaskListing]:
        """The running tasks, as the seed listed them (``[]`` when none)."""
        return [r.listing() for r in list(self._running.values())]

    def pending(self) -> list[TaskListing]:
        """The queued tasks, in queue order."""
        return [r.listing() for r in list(self._pending.values())]

    def get(self, name: str) -> TaskState | None:
        """A task's state, and its result or error while it is kept."""
        with self._lock:
            rec = self._pending.get(name) or self._running.get(name)
            if rec is None:
                rec = self._finished.get(name)
                if rec is not None and rec.expires < time.monotonic():
                    rec = None
            return None if rec is None else rec.to_json()

    def finished(self, limit: int, after: int | None) -> FinishedPage:
        """``GET /tasks/finished``: up to ``limit`` finished tasks still
        kept, in the order they ended, after the one numbered ``after``."""
        now = time.monotonic()
        with self._lock:
            records = [
                r for r in self._finished.values() if r.end_no > (after or 0) and r.expires >= now
            ]
        page = records[:limit]
        more = len(records) > limit
        return {"tasks": [r.to_json() for r in page], "next": page[-1].end_no if more else None}

    def cancel(self, name: str) -> tuple[str, TaskState | None]:
        """``DELETE /tasks/{name}``: cancel the task if it has not started,
        ask it to stop if it runs (it sees that through
        ``conexe.current_task()``; demo tasks stop within 50 ms). Returns
        what happened (``"cancelled"``, ``"asked"``, ``"ended"`` before
        this call, or ``"unknown"``) and the task's state after it."""
        with self._lock:
            rec = self._pending.get(name) or self._running.get(name)
            if rec is None:
                found = self._finished.get(name)
                if found is None or found.expires < time.monotonic():
                    return "unknown", None
                return "ended", found.to_json()
            if rec.future is None:  # the journal's, still in the backlog
                self._backlog = deque(item for item in self._backlog if item[0] is not rec)
                self._end_locked(rec, "cancelled", time.time())
                return "cancelled", rec.to_json()
            fut = rec.future
        # Outside the lock: a cancelled future's callback (which takes it) runs here.
        asked = fut.request_cancel()
        if fut.cancelled():
            return "cancelled", self.get(name) or rec.to_json()
        if not asked:
            return "ended", self.get(name) or rec.to_json()
        with self._lock:
            if rec.state == "running":
                rec.cancel_requested = True
            return "asked", rec.to_json()

    def timings(self) -> dict[str, HandlerTimings]:
        """Queue-wait and run-time histograms per handler (``/metrics``)."""
        with self._lock:
            return self._timings.snapshot()

    def counts(self) -> dict[str, int]:
        """The service's counters plus how many tasks are running and pending."""
        with self._lock:
            out = dict(self._counts)
            out["running"] = len(self._running)
            out["pending"] = len(self._pending)
        return out

    def history(self, seconds: int = 300) -> list[int]:
        """Tasks ended in each of the last ``seconds`` seconds, oldest first
        (the current, unfinished second last)."""
        seconds = max(1, min(seconds, HISTORY_SECONDS))
        with self._lock:
            self._tick_locked(time.monotonic())
            end = self._history_at
            ring = self._history
            return [ring[s % HISTORY_SECONDS] for s in range(end - seconds + 1, end + 1)]

    def stats(self) -> Stats:
        """``GET /stats``: the executor's counters and the service's."""
        return {
            "state": self.state,
            "core": "c" if self._pool.core == "c" else "py",
            "pool_size": self.pool_size,
            "queue_size": self.queue_size,
            "uptime_s": round(time.time() - self.started_at, 3),
            "tasks": self.counts(),
            "executor": self._pool.stats(),
            "journal": None
            if self._journal is None
            else {"path": self._journal.path, "recovered": self._counts["recovered"]},
        }

    # -- stopping ---------------------------------------------------------------------
    def begin_stop(self) -> None:
        """Refuse new tasks from now on (the API answers 503)."""
        if self.state == "serving":
            self.state = "stopping"

    def stop(self, grace: float, *, drain: bool = False) -> StopReport:
        """Stop gracefully: cancel the queued tasks (``drain``: run them),
        let running tasks finish for up to ``grace`` seconds, then cut the
        demo sleeps short. Logs and returns what was left behind. With a
        journal nothing is cancelled there: the queued tasks (and those cut
        short) stay in it, unfinished, for the next start."""
        self.begin_stop()
        left = self._leave_backlog()
        deadline = time.monotonic() + grace
        ended_before = self._ended()
        cancelled: list[str] = []
        if not drain:
            cancelled = self._cancel_pending()
        else:
            counts = self.counts()
            log.info("draining: %d tasks pending, %d running", counts["pending"], counts["running"])
            self._pool.shutdown(wait=False)
        with self._lock:
            self._changed.wait_for(
                lambda: not self._running and not self._pending,
                timeout=max(0.0, deadline - time.monotonic()),
            )
        finished = self._ended() - ended_before
        if drain:
            cancelled = self._cancel_pending()  # whatever the grace period didn't reach
        with self._lock:
            interrupted = [r.name for r in self._running.values() if r.handler is None]
        if interrupted:
            log.warning(
                "grace period of %gs over: interrupting %d demo tasks: %s",
                grace,
                len(interrupted),
                _names(interrupted),
            )
        self._abort.set()
        with self._lock:
            self._changed.wait_for(
                lambda: all(r.handler is not None for r in self._running.values()),
                timeout=5.0,
            )
            still = [r.name for r in self._running.values()]
        if still:
            log.warning(
                "%d tasks still running after the grace period: %s", len(still), _names(still)
            )
        self.state = "stopped"
        if self._journal is None:
            log.info(
                "graceful stop: %d tasks finished, %d pending cancelled, %d interrupted, "
                "%d still running",
                finished,
                len(cancelled),
                len(interrupted),
                len(still),
            )
            return StopReport(finished, cancelled, interrupted, still)
        with self._lock:
            kept = sorted({*left, *cancelled, *interrupted, *still})
        self._journal.close()
        log.info(
            "graceful stop: %d tasks finished; %d left in the journal %s for the next start",
            finished,
            len(kept),
            self._journal.path,
        )
        return StopReport(finished, [], interrupted, still, kept)

    def _leave_backlog(self) -> list[str]:
        """Stopping with a journal: what doesn't end from now on stays
        unfinished there, and so do the tasks still waiting in the backlog
        (returned), no longer listed as pending."""
        self._leaving = self._journal is not None
        with self._lock:
            left = [rec.name for rec, _ in self._backlog]
            for name in left:
                del self._pending[name]
            self._backlog.clear()
        return left

    def _ended(self) -> int:
        with self._lock:
            return self._counts["done"] + self._counts["failed"]

    def _cancel_pending(self) -> list[str]:
        with self._lock:
            queued = list(self._pending.values())
        # One by one (cancel_futures would also ask the running tasks to stop,
        # and they have the grace period). Cancelling runs the done callbacks
        # here, so the states are final on return; a task that started
        # meanwhile runs on, and is not counted.
        for rec in queued:
            if rec.future is not None:
                rec.future.cancel()
        self._pool.shutdown(wait=False)
        names = [r.name for r in queued if r.state == "cancelled"]
        if names and self._journal is None:
            log.warning("cancelled %d pending tasks: %s", len(names), _names(names))
        return names

    def close(self) -> None:
        """Stop at once: cancel the queue, interrupt demo sleeps, join the
        workers (tests and embedding; the server uses :meth:`stop`)."""
        self.begin_stop()
        self._leave_backlog()
        self._abort.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.state = "stopped"
        if self._journal is not None:
            self._journal.close()


def _accepted_row(rec: TaskRecord) -> AcceptedRow:
    return (
        rec.seq,
        rec.name,
        rec.duration,
        rec.handler,
        rec.args,
        rec.kwargs or None,
        rec.submitted_at,
        rec.attempt,
    )


def _record(row: JournalRow) -> TaskRecord:
    rec = TaskRecord(
        row.name,
        row.duration,
        row.handler,
        row.submitted_at,
        seq=row.seq,
        attempt=row.attempt,
        args=tuple(row.args),
        kwargs=row.kwargs,
    )
    if row.state != "pending":
        rec.state = row.state  # type: ignore[assignment]
        rec.started_at, rec.ended_at = row.started_at, row.ended_at
        rec.result, rec.result_repr = row.result, row.result_repr
        rec.error = row.error  # type: ignore[assignment]
    return rec


def _names(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
