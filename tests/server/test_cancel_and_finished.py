"""``DELETE /tasks/{name}`` cancels a task that has not started and asks a
running one to stop (a demo sleep and a handler that checks
``conexe.current_task()`` both end as cancelled); ``GET /tasks/finished``
pages through the finished tasks in the order they ended."""

from __future__ import annotations

import time
from pathlib import Path

from .conftest import ServerProcess, wait_until


def state(server: ServerProcess, name: str) -> str:
    return str(server.get(f"/tasks/{name}").json()["state"])


def test_deleting_a_pending_task_cancels_it(server: ServerProcess) -> None:
    server.post([{"name": f"del-block-{i}", "duration": 600_000} for i in range(5)])
    server.post([{"name": "del-pending", "duration": 1}])
    wait_until(lambda: state(server, "del-pending") == "pending", what="queued")
    cancelled_before = server.get("/stats").json()["tasks"]["cancelled"]
    r = server.client.delete("/tasks/del-pending")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert state(server, "del-pending") == "cancelled"
    assert "del-pending" not in server.names("pending")
    assert server.get("/stats").json()["tasks"]["cancelled"] == cancelled_before + 1
    for i in range(5):  # free the workers for the other tests
        assert server.client.delete(f"/tasks/del-block-{i}").status_code == 202


def test_deleting_a_running_demo_task_asks_it_to_stop(server: ServerProcess) -> None:
    server.post([{"name": "del-sleeper", "duration": 600_000}])
    wait_until(lambda: state(server, "del-sleeper") == "running", what="running")
    started = time.monotonic()
    r = server.client.delete("/tasks/del-sleeper")
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "running" and r.json()["cancel_requested"] is True
    wait_until(lambda: state(server, "del-sleeper") == "cancelled", 30, "it stopped")
    assert time.monotonic() - started < 30


def test_deleting_a_running_handler_that_checks_stops_it(server: ServerProcess) -> None:
    server.post([{"name": "del-patient", "handler": "patient", "args": [600]}])
    wait_until(lambda: state(server, "del-patient") == "running", what="running")
    assert server.client.delete("/tasks/del-patient").status_code == 202
    wait_until(lambda: state(server, "del-patient") == "cancelled", 30, "it stopped")


def test_deleting_an_ended_task_is_a_conflict_and_an_unknown_one_is_not_found(
    server: ServerProcess,
) -> None:
    server.post([{"name": "del-done", "handler": "add", "args": [1, 2]}])
    wait_until(lambda: state(server, "del-done") == "done", what="done")
    r = server.client.delete("/tasks/del-done")
    assert r.status_code == 409 and r.json()["result"] == 3
    r = server.client.delete("/tasks/del-never-submitted")
    assert r.status_code == 404 and "del-never-submitted" in r.json()["error"]


def test_finished_tasks_page_in_the_order_they_ended(server: ServerProcess) -> None:
    names = [f"fin-{i}" for i in range(25)]
    for name in names:  # one at a time: the order they end is known
        server.post([{"name": name, "handler": "add", "args": [1, 1]}])
        wait_until(lambda name=name: state(server, name) == "done", what=name)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        query = {"limit": 10, **({"after": after} if after is not None else {})}
        page = server.get("/tasks/finished", params=query).json()
        pages += 1
        seen += [t["name"] for t in page["tasks"]]
        assert all(t["state"] in ("done", "failed", "cancelled") for t in page["tasks"])
        after = page["next"]
        if after is None:
            break
        assert len(page["tasks"]) == 10
    ours = [n for n in seen if n.startswith("fin-")]
    assert ours == names  # each once, in the order they ended
    assert pages == -(-len(seen) // 10)


def test_the_finished_listing_checks_its_query(server: ServerProcess) -> None:
    for query in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"limit": "x"}):
        r = server.get("/tasks/finished", params=query)
        assert r.status_code == 422, (query, r.text)


def test_finished_is_a_reserved_task_name(server: ServerProcess) -> None:
    r = server.post([{"name": "finished", "duration": 1}])
    assert r.status_code == 422 and "reserved" in r.json()["error"]


def test_a_journaled_task_deleted_is_not_run_again(tmp_path: Path) -> None:
    from conexe.server._schema import TaskSpec
    from conexe.server.journal import Journal
    from conexe.server.service import TaskService

    db = tmp_path / "state.db"
    svc = TaskService(1, 10, journal=Journal(db, keep_seconds=60))
    out = svc.submit_batch([TaskSpec("runs", 600_000), TaskSpec("queued", 1)])
    assert out.journaled is not None
    out.journaled.result(10)
    assert svc.cancel("queued")[0] == "cancelled"
    assert svc.cancel("runs")[0] == "asked"
    wait_until(lambda: svc.counts()["cancelled"] == 2, what="both cancelled")
    svc.close()
    again = Journal(db, keep_seconds=60)
    try:
        assert again.unfinished == []
        assert {r.name: r.state for r in again.finished} == {
            "runs": "cancelled",
            "queued": "cancelled",
        }
    finally:
        again.close()
