"""A full queue refuses what doesn't fit and never blocks: 429 with
Retry-After when nothing fits, the response names each item's fate, and
every GET keeps answering while the workers are busy and the queue full
(the seed's service deadlocked here)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import ServerProcess, wait_until

LONG = 600_000  # ms: these tasks outlive the test; the server interrupts them


@pytest.fixture
def full(serve: Callable[..., ServerProcess]) -> ServerProcess:
    """One worker busy, one task pending, one free slot (queue of 2)."""
    server = serve(
        "--pool-size", "1", "--queue-size", "2", "--grace", "0", "--max-duration", str(LONG)
    )
    server.post([{"name": "busy", "duration": LONG}, {"name": "waiting", "duration": LONG}])
    server.wait_counts(running=1, pending=1)
    return server


def test_items_that_dont_fit_are_refused_and_named(full: ServerProcess) -> None:
    r = full.post([{"name": n, "duration": 1} for n in ("fits", "no-room-1", "no-room-2")])
    assert r.status_code == 200
    body = r.json()
    assert body["Accepted"] == ["fits"]
    assert body["Refused"] == ["no-room-1", "no-room-2"]
    assert (body["RequestedTask"], body["SubmittedTasks"], body["RefusedTasks"]) == (3, 1, 2)
    assert full.names("pending") == ["waiting", "fits"]


def test_429_with_retry_after_when_nothing_fits(full: ServerProcess) -> None:
    full.post([{"name": "last-slot", "duration": LONG}])
    full.wait_counts(running=1, pending=2)
    r = full.post([{"name": "busy", "duration": 1}, {"name": "overflow", "duration": 1}])
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    assert body["Duplicates"] == ["busy"]
    assert body["Refused"] == ["overflow"]
    assert body["SubmittedTasks"] == 0
    assert full.get("/stats").json()["tasks"]["refused"] == 1


def test_only_duplicates_is_200_not_429(full: ServerProcess) -> None:
    r = full.post([{"name": "busy", "duration": 1}, {"name": "waiting", "duration": 1}])
    assert r.status_code == 200
    assert r.json()["DuplicateTasks"] == 2


def test_every_get_answers_with_a_full_queue_and_busy_workers(full: ServerProcess) -> None:
    full.post([{"name": "fill", "duration": LONG}])
    full.wait_counts(running=1, pending=2)
    for _ in range(3):  # the client's timeout turns a hang into a failure
        assert full.post([{"name": "more", "duration": 1}]).status_code == 429
        assert full.names("running") == ["busy"]
        assert full.names("pending") == ["waiting", "fill"]
        for path in ("/stats", "/healthz", "/metrics", "/tasks/busy", "/", "/openapi.json"):
            assert full.get(path).status_code == 200, path


def test_a_refused_name_can_be_submitted_once_there_is_room(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve("--pool-size", "1", "--queue-size", "1", "--grace", "0")
    # One at a time: posted together, "second" finds "first" still queued
    # (the one slot) unless the worker has already taken it, which with the
    # GIL off it often hasn't.
    server.post([{"name": "first", "duration": 3000}])
    server.wait_counts(running=1, pending=0)
    server.post([{"name": "second", "duration": 1}])
    server.wait_counts(running=1, pending=1)
    assert server.post([{"name": "third", "duration": 1}]).status_code == 429
    wait_until(
        lambda: server.post([{"name": "third", "duration": 1}]).status_code == 200,
        what="room for 'third' once 'first' finished",
    )
