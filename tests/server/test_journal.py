"""``conexe serve --state PATH``: nothing accepted is lost across a crash.

Real server processes on one journal: one is killed (``kill -9``) under
load, and the next, started on the same file, runs again every accepted task
that had not ended, and none that had (each run is logged by the handler,
with its attempt). SIGTERM with a journal leaves the queue there; a name the
journal still holds stays a duplicate; a journal that is not one, is
corrupt, or is newer is refused at start and left untouched.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import SRC, ServerProcess, httpx, wait_until

HANDLERS = '''
import os, time
from conexe.server import current_attempt

def work(name):
    """Log this run (name, attempt, which server), then take a little time."""
    line = f"{name} {current_attempt()} {os.environ['JOURNAL_TEST_PHASE']}\\n"
    fd = os.open(os.environ["JOURNAL_TEST_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    time.sleep(0.005)
    return name

def block(name, release):
    """Run until the file ``release`` exists; return the attempt."""
    for _ in range(6000):
        if os.path.exists(release):
            return current_attempt()
        time.sleep(0.01)
    raise TimeoutError("never released")
'''


@pytest.fixture
def journal_env(tmp_path: Path) -> Callable[[int], dict[str, str]]:
    (tmp_path / "journal_tasks.py").write_text(HANDLERS)

    def env(phase: int) -> dict[str, str]:
        return {
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{SRC}",
            "JOURNAL_TEST_PHASE": str(phase),
            "JOURNAL_TEST_RUNS": str(tmp_path / "runs.txt"),
        }

    return env


def rows(db: Path) -> dict[str, tuple[str, int, bool]]:
    """The journal's rows: name -> (state, attempt, started)."""
    conn = sqlite3.connect(db)
    try:
        found = conn.execute("SELECT name, state, attempt, started_at FROM tasks").fetchall()
    finally:
        conn.close()
    return {name: (state, attempt, started is not None) for name, state, attempt, started in found}


def runs(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        name, attempt, phase = line.split()
        out.append((name, int(attempt), int(phase)))
    return out


def test_a_server_killed_under_load_runs_every_accepted_task_on_restart(
    serve: Callable[..., ServerProcess], journal_env: Any, tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    args = ("--state", str(db), "--handlers", "journal_tasks", "--pool-size", "4")
    first = serve(*args, "--queue-size", "300", env=journal_env(1))
    accepted: list[str] = []
    stop = threading.Event()

    def post_until_killed() -> None:
        client = httpx.Client(base_url=first.url, timeout=10.0)
        batch = 0
        try:
            while not stop.is_set():
                names = [f"b{batch}-{i}" for i in range(25)]
                batch += 1
                body = [{"name": n, "handler": "work", "args": [n]} for n in names]
                try:
                    r = client.post("/tasks", json=body)
                except httpx.TransportError:
                    return  # killed: this batch's answer never came
                if r.status_code == 200:
                    accepted.extend(r.json()["Accepted"])
                else:
                    assert r.status_code == 429, r.text
        finally:
            client.close()

    poster = threading.Thread(target=post_until_killed)
    poster.start()
    try:
        wait_until(lambda: len(runs(tmp_path / "runs.txt")) >= 150, 60, "150 runs")
        first.proc.kill()  # kill -9, mid-load
        first.proc.wait(30)
    finally:
        stop.set()
        poster.join(30)
    before = rows(db)
    ended_before = {n for n, (state, _, _) in before.items() if state != "pending"}
    unfinished = {n for n, (state, _, _) in before.items() if state == "pending"}
    started_before = {n for n in unfinished if before[n][2]}
    assert set(accepted) <= set(before)  # every 200 was in the journal first
    assert ended_before and unfinished, (len(ended_before), len(unfinished))

    second = serve(*args, "--queue-size", "50", env=journal_env(2))  # fewer than unfinished
    wait_until(
        lambda: all(state == "done" for state, _, _ in rows(db).values()), 120, "every task done"
    )
    after = rows(db)
    assert set(after) == set(before)
    stats = second.get("/stats").json()
    assert stats["tasks"]["recovered"] == len(unfinished) == stats["tasks"]["done"]
    assert stats["journal"] == {"path": str(db), "recovered": len(unfinished)}

    second_runs = [(n, attempt) for n, attempt, phase in runs(tmp_path / "runs.txt") if phase == 2]
    ran_again = Counter(n for n, _ in second_runs)
    # Accepted = ended before the kill + ended after the restart, none twice.
    assert set(ran_again) == unfinished
    assert set(accepted) <= ended_before | set(ran_again)
    assert not ended_before & set(ran_again)
    assert set(ran_again.values()) == {1}
    # A run the kill cut short comes back as the task's second attempt.
    assert {n for n, attempt in second_runs if attempt == 2} == started_before
    assert {n for n, attempt in second_runs if attempt == 1} == unfinished - started_before
    # Outcomes of tasks that ended before the kill are still served.
    name = sorted(ended_before)[0]
    got = second.get(f"/tasks/{name}").json()
    assert (got["state"], got["result"], got["attempt"]) == ("done", name, 1)


def test_sigterm_with_a_journal_leaves_the_queue_for_the_next_start(
    serve: Callable[..., ServerProcess], journal_env: Any, tmp_path: Path
) -> None:
    db, release = tmp_path / "state.db", tmp_path / "release"
    args = ("--state", str(db), "--handlers", "journal_tasks", "--pool-size", "1")
    first = serve(*args, "--grace", "0.2", env=journal_env(1))
    body = [{"name": n, "handler": "block", "args": [n, str(release)]} for n in "ABC"]
    assert first.post(body).json()["Accepted"] == ["A", "B", "C"]
    first.wait_counts(running=1, pending=2)
    first.signal()
    assert first.wait_exit() == 1  # A's handler can't be interrupted: it exits without it
    assert "3 left in the journal" in first.log(), first.log()
    assert rows(db) == {"A": ("pending", 1, True), "B": ("pending", 1, False),
                        "C": ("pending", 1, False)}  # fmt: skip

    second = serve(*args, env=journal_env(2))
    second.wait_counts(running=1, pending=2)
    again = second.post([{"name": "B", "handler": "block", "args": ["B", str(release)]}])
    assert again.json()["Duplicates"] == ["B"]  # still in the journal's queue
    assert second.get("/tasks/A").json()["attempt"] == 2
    release.touch()
    wait_until(lambda: second.get("/tasks/C").json()["state"] == "done", 60, "C done")
    assert [second.get(f"/tasks/{n}").json()["result"] for n in "ABC"] == [2, 1, 1]
    assert {state for state, _, _ in rows(db).values()} == {"done"}


def test_a_task_whose_handler_is_gone_after_a_restart_fails_with_the_reason(
    serve: Callable[..., ServerProcess], journal_env: Any, tmp_path: Path
) -> None:
    db, release = tmp_path / "state.db", tmp_path / "release"
    first = serve("--state", str(db), "--handlers", "journal_tasks", "--pool-size", "1",
                  env=journal_env(1))  # fmt: skip
    first.post([{"name": n, "handler": "block", "args": [n, str(release)]} for n in "AB"])
    first.wait_counts(running=1, pending=1)
    first.proc.kill()
    first.proc.wait(30)
    second = serve("--state", str(db), env=journal_env(2))  # no --handlers now
    got = second.get("/tasks/B").json()
    assert got["state"] == "failed" and got["error"]["type"] == "HandlerError"
    assert "'block' is not registered" in got["error"]["message"]
    assert rows(db)["B"][0] == "failed"


@pytest.mark.parametrize("kind", ["garbage", "other-sqlite", "newer"])
def test_a_file_that_is_no_journal_of_ours_is_refused_and_left_as_it_is(
    tmp_path: Path, kind: str
) -> None:
    import subprocess
    import sys

    db = tmp_path / "state.db"
    if kind == "garbage":
        db.write_bytes(b"not a database at all\n" * 100)
    elif kind == "other-sqlite":
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    else:
        from conexe.server.journal import Journal

        Journal(db, keep_seconds=1).close()
        conn = sqlite3.connect(db)
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
        conn.commit()
        conn.close()
    before = db.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "conexe", "serve", "--state", str(db), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert proc.returncode == 2, proc.stderr
    expected = {"garbage": "not a readable conexe journal", "other-sqlite": "not a conexe journal",
                "newer": "format 99, written by a newer conexe"}[kind]  # fmt: skip
    assert expected in proc.stderr
    assert db.read_bytes() == before
