"""``conexe serve --state PATH``: the journal that makes accepted tasks
outlive the process.

Every accepted task is a row of a SQLite database (the stdlib's ``sqlite3``,
WAL, one writer thread) before ``POST /tasks`` answers 200 for it; its start
and its end (done, failed, cancelled) are recorded as they happen. Opened
again after a crash (``kill -9`` included), the journal gives back the tasks
that had not ended, to be run again (at least once: a task that ended just
before the crash, its end not yet written, runs twice), and the finished
ones still within their retention, so their outcomes stay readable. A task
that had started is run again as its next attempt.

Writes go to a queue that the writer thread commits in one transaction per
batch it finds there (group commit), so many requests at once cost one
commit, and the event loop never waits on the disk: it awaits the future
:meth:`Journal.accepted` returns.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "state.db")
    >>> j = Journal(path, keep_seconds=60)
    >>> j.accepted([(j.last_seq + 1, "a", 5, None, (), None, 0.0, 1)]).result(timeout=10)
    >>> j.close()
    >>> again = Journal(path, keep_seconds=60)
    >>> [(r.name, r.attempt) for r in again.unfinished]
    [('a', 1)]
    >>> again.close()

Durable across a crash of the process (the rows are in the operating
system's hands at each commit); a power loss may lose the last commits
(``synchronous=NORMAL``, SQLite's recommended setting for WAL).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FORMAT", "AcceptedRow", "Journal", "JournalError", "JournalRow"]

log = logging.getLogger("conexe.server")

FORMAT = 1  # the journal's format: a newer conexe that changes it says so here
APPLICATION_ID = 0x636F6E78  # "conx": PRAGMA application_id of a conexe journal
SWEEP_EVERY_S = 10.0  # how often finished rows past their retention are deleted

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY,      -- acceptance order
    name TEXT NOT NULL,
    duration INTEGER,             -- a demo task's ms, or NULL
    handler TEXT,                 -- a handler task's function, or NULL
    args TEXT NOT NULL,           -- JSON
    kwargs TEXT NOT NULL,         -- JSON
    submitted_at REAL NOT NULL,   -- Unix time
    attempt INTEGER NOT NULL,     -- 1, then one more for each start a crash cut short
    started_at REAL,              -- this attempt's start, NULL until it starts
    state TEXT NOT NULL,          -- 'pending' until it ends: 'done', 'failed', 'cancelled'
    ended_at REAL,
    result TEXT,                  -- JSON
    result_repr TEXT,
    error TEXT                    -- JSON {"type", "message"}
);
CREATE INDEX tasks_unfinished ON tasks (state, seq);
CREATE INDEX tasks_ended ON tasks (ended_at);
"""


class JournalError(Exception):
    """A ``--state`` file that can't be used as a journal (the message says
    why); the file is left exactly as it was."""


@dataclass(slots=True)
class JournalRow:
    """One accepted task, as the journal keeps it."""

    seq: int
    name: str
    duration: int | None
    handler: str | None
    args: Sequence[Any]
    kwargs: dict[str, Any]
    submitted_at: float
    attempt: int = 1
    started_at: float | None = None
    state: str = "pending"
    ended_at: float | None = None
    result: Any = None
    result_repr: str | None = None
    error: dict[str, str] | None = None


# A task as accepted() takes it: seq, name, duration, handler, args, kwargs
# (or None), submitted_at, attempt.
AcceptedRow = tuple[int, str, "int | None", "str | None", Sequence[Any], Any, float, int]


@dataclass
class _Batch:
    rows: list[AcceptedRow]
    done: cf.Future[None] = field(default_factory=cf.Future)


class Journal:
    """The journal at ``path`` (created if missing): what it held is in
    :attr:`unfinished` (to run again, in acceptance order) and
    :attr:`finished` (ended within ``keep_seconds``, oldest end first).
    Raises :class:`JournalError` for a file that is not a conexe journal, is
    corrupt, or was written by a newer format."""

    def __init__(self, path: str | os.PathLike[str], *, keep_seconds: float) -> None:
        self.path = os.fspath(path)
        self.keep_seconds = keep_seconds
        self._conn = _open(self.path)
        self.unfinished, self.finished = self._recover()
        last = self._conn.execute("SELECT max(seq) FROM tasks").fetchone()[0]
        self.last_seq = int(last or 0)  # the numbers after it are free
        self._ops: list[tuple[Any, ...]] = []
        self._wake = threading.Condition(threading.Lock())
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="conexe-journal", daemon=True)
        self._writer.start()

    # -- what the service tells it -----------------------------------------------------
    def accepted(self, rows: list[AcceptedRow]) -> cf.Future[None]:
        """Record newly accepted tasks, each numbered (``seq``) after
        :attr:`last_seq`, in acceptance order; the future is done once they
        are committed (its exception says why they could not be)."""
        batch = _Batch(rows)
        if not self._put(("accepted", batch)):
            batch.done.set_exception(JournalError("the journal is closed"))
        return batch.done

    def started(self, seq: int, at: float) -> None:
        """Record that task ``seq`` started (its attempt is running)."""
        self._put(("started", seq, at))

    def ended(
        self,
        seq: int,
        state: str,
        at: float,
        result: Any = None,
        result_repr: str | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        """Record how task ``seq`` ended: ``state`` (done, failed,
        cancelled) at Unix time ``at``, with its result or error."""
        self._put(("ended", seq, state, at, result, result_repr, error))

    def close(self) -> None:
        """Commit what is queued and stop the writer; later records are
        dropped (a task ending after this runs again at the next start)."""
        with self._wake:
            if self._closing:
                return
            self._closing = True
            self._wake.notify()
        self._writer.join()
        self._conn.close()

    # -- the writer thread -----------------------------------------------------------
    def _put(self, op: tuple[Any, ...]) -> bool:
        with self._wake:
            if self._closing:
                return False
            self._ops.append(op)
            if len(self._ops) == 1:
                self._wake.notify()
        return True

    def _write_loop(self) -> None:
        next_sweep = time.monotonic() + SWEEP_EVERY_S
        while True:
            with self._wake:
                while not self._ops and not self._closing:
                    left = next_sweep - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                ops, self._ops = self._ops, []
                closing = self._closing
            if ops:
                self._commit(ops)
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + SWEEP_EVERY_S
            if closing:
                with self._wake:
                    ops, self._ops = self._ops, []
                if ops:
                    self._commit(ops)
                return

    def _commit(self, ops: list[tuple[Any, ...]]) -> None:
        """Write ``ops`` in one transaction, grouped by kind (rows first, so a
        task accepted and ended in the same batch is inserted, then ended);
        a start is skipped when the task's end is in the batch too."""
        batches = [op[1] for op in ops if op[0] == "accepted"]
        ends = [op[1:] for op in ops if op[0] == "ended"]
        ended = {end[0] for end in ends}
        starts = [(op[2], op[1]) for op in ops if op[0] == "started" and op[1] not in ended]
        try:
            with self._conn:  # one transaction for all of them
                self._conn.executemany(
                    "INSERT INTO tasks (seq, name, duration, handler, args, kwargs,"
                    " submitted_at, attempt, state) VALUES (?,?,?,?,?,?,?,?,'pending')",
                    [
                        (
                            seq,
                            name,
                            duration,
                            handler,
                            _json(list(args)) if args else "[]",
                            _json(kwargs) if kwargs else "{}",
                            submitted_at,
                            attempt,
                        )
                        for batch in batches
                        for seq, name, duration, handler, args, kwargs, submitted_at, attempt in (
                            batch.rows
                        )
                    ],
                )
                self._conn.executemany("UPDATE tasks SET started_at = ? WHERE seq = ?", starts)
                self._conn.executemany(
                    "UPDATE tasks SET state = ?, ended_at = ?, result = ?,"
                    " result_repr = ?, error = ? WHERE seq = ?",
                    [
                        (
                            state,
                            at,
                            None if result is None else _json(result),
                            result_repr,
                            None if error is None else _json(error),
                            seq,
                        )
                        for seq, state, at, result, result_repr, error in ends
                    ],
                )
        except (sqlite3.Error, TypeError, ValueError) as exc:
            log.error("journal %s: could not write %d records: %s", self.path, len(ops), exc)
            for batch in batches:
                batch.done.set_exception(JournalError(f"the journal could not record it: {exc}"))
            return
        for batch in batches:
            batch.done.set_result(None)

    def _sweep(self) -> None:
        try:
            with self._conn:
                self._conn.execute(
                    "DELETE FROM tasks WHERE state != 'pending' AND ended_at < ?",
                    (time.time() - self.keep_seconds,),
                )
        except sqlite3.Error as exc:
            log.warning("journal %s: could not forget old tasks: %s", self.path, exc)

    # -- opening -----------------------------------------------------------------------
    def _recover(self) -> tuple[list[JournalRow], list[JournalRow]]:
        conn = self._conn
        with conn:
            # A start the crash cut short: the next run is its next attempt.
            conn.execute(
                "UPDATE tasks SET attempt = attempt + 1, started_at = NULL"
                " WHERE state = 'pending' AND started_at IS NOT NULL"
            )
            conn.execute(
                "DELETE FROM tasks WHERE state != 'pending' AND ended_at < ?",
                (time.time() - self.keep_seconds,),
            )
        columns = (
            "seq, name, duration, handler, args, kwargs, submitted_at, attempt, started_at,"
            " state, ended_at, result, result_repr, error"
        )
        unfinished = [
            _row(r)
            for r in conn.execute(
                f"SELECT {columns} FROM tasks WHERE state = 'pending' ORDER BY seq"
            )
        ]
        finished = [
            _row(r)
            for r in conn.execute(
                f"SELECT {columns} FROM tasks WHERE state != 'pending' ORDER BY ended_at, seq"
            )
        ]
        return unfinished, finished


_json = json.JSONEncoder(separators=(",", ":")).encode


def _row(r: tuple[Any, ...]) -> JournalRow:
    return JournalRow(
        seq=r[0],
        name=r[1],
        duration=r[2],
        handler=r[3],
        args=tuple(json.loads(r[4])),
        kwargs=json.loads(r[5]),
        submitted_at=r[6],
        attempt=r[7],
        started_at=r[8],
        state=r[9],
        ended_at=r[10],
        result=None if r[11] is None else json.loads(r[11]),
        result_repr=r[12],
        error=None if r[13] is None else json.loads(r[13]),
    )


def _open(path: str) -> sqlite3.Connection:
    """Open (or create) the journal at ``path``, checking before the first
    write that an existing file is a sound conexe journal of a format this
    version reads."""
    fresh = not os.path.exists(path) or os.path.getsize(path) == 0
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise JournalError(f"--state {path}: cannot open it: {exc}") from None
    try:
        if fresh:
            _create(conn)
        else:
            _check(conn, path)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.isolation_level = "DEFERRED"  # ``with conn``: one transaction
    except BaseException:
        conn.close()
        raise
    return conn


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.executescript(f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('format', '{FORMAT}'); COMMIT;")


def _check(conn: sqlite3.Connection, path: str) -> None:
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise JournalError(
                f"--state {path}: this file is not a conexe journal (an SQLite database "
                "of something else); give a new path or the journal of an earlier run"
            )
        found = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        fmt = int(found[0])
        ok = conn.execute("PRAGMA quick_check").fetchone()[0]
    except (sqlite3.DatabaseError, TypeError, ValueError) as exc:
        raise JournalError(
            f"--state {path}: this file is not a readable conexe journal ({exc}); "
            "it was left as it is"
        ) from None
    if ok != "ok":
        raise JournalError(f"--state {path}: the journal is corrupt ({ok}); it was left as it is")
    if fmt > FORMAT:
        raise JournalError(
            f"--state {path}: the journal has format {fmt}, written by a newer conexe; "
            f"this one reads format {FORMAT} at most: upgrade conexe, or give a new path"
        )
    conn.execute("PRAGMA journal_mode = WAL")
