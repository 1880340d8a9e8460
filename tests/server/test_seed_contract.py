"""The Go Pexecutor's HTTP contract, kept: POST /tasks answers the seed's
counts, a name pending or running is a duplicate, the listings are arrays
([] when empty, never null), pending in queue order."""

from __future__ import annotations

from collections.abc import Callable

from .conftest import ServerProcess, wait_until


def test_seed_scenario_five_workers_ten_tasks(serve: Callable[..., ServerProcess]) -> None:
    # The seed's own flags, single dash and all.
    server = serve("-pool-size", "5", "-queue-size", "1000")
    tasks = [{"name": f"Task {i}", "duration": 2000} for i in range(1, 11)]
    r = server.post(tasks)
    assert r.status_code == 200
    body = r.json()
    assert (body["RequestedTask"], body["SubmittedTasks"], body["DuplicateTasks"]) == (10, 10, 0)
    server.wait_counts(running=5, pending=5)
    assert sorted(server.names("running") + server.names("pending")) == sorted(
        t["name"] for t in tasks
    )
    # The five waiting are the last five submitted, in the order they were sent.
    assert server.names("pending") == [f"Task {i}" for i in range(6, 11)]
    server.wait_counts(running=0, pending=0)
    assert server.get("/tasks/running").json() == []
    assert server.get("/tasks/pending").json() == []


def test_listing_items_have_the_seed_shape(server: ServerProcess) -> None:
    server.post([{"name": "shape-1", "duration": 60_000}])
    wait_until(lambda: "shape-1" in server.names("running"), what="shape-1 running")
    item = next(t for t in server.get("/tasks/running").json() if t["name"] == "shape-1")
    assert item == {"name": "shape-1", "duration": 60_000}


def test_empty_listings_are_empty_arrays_not_null(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--pool-size", "1")
    for path in ("/tasks/running", "/tasks/pending"):
        r = server.get(path)
        assert r.status_code == 200
        assert r.text.strip() == "[]"


def test_pending_lists_tasks_in_queue_order(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--pool-size", "1", "--grace", "0")
    server.post([{"name": "blocker", "duration": 60_000}])
    wait_until(lambda: server.names("running") == ["blocker"], what="blocker running")
    names = [f"q{i:02d}" for i in range(20)][::-1]  # not alphabetical
    for start in range(0, 20, 5):
        r = server.post([{"name": n, "duration": 1} for n in names[start : start + 5]])
        assert r.json()["SubmittedTasks"] == 5
    assert server.names("pending") == names


def test_same_name_twice_in_one_request_is_a_duplicate(server: ServerProcess) -> None:
    # Instant tasks: the first may be over before the second item is read,
    # and the second is still a duplicate of the first.
    r = server.post(
        [
            {"name": "twin", "duration": 0},
            {"name": "twin", "duration": 0},
            {"name": "other", "duration": 0},
        ]
    )
    body = r.json()
    assert (body["RequestedTask"], body["SubmittedTasks"], body["DuplicateTasks"]) == (3, 2, 1)
    assert body["Accepted"] == ["twin", "other"]
    assert body["Duplicates"] == ["twin"]


def test_name_pending_or_running_is_a_duplicate(server: ServerProcess) -> None:
    server.post([{"name": "dup-running", "duration": 60_000}])
    wait_until(lambda: "dup-running" in server.names("running"), what="dup-running running")
    r = server.post([{"name": "dup-running", "duration": 5}, {"name": "dup-new", "duration": 5}])
    body = r.json()
    assert r.status_code == 200
    assert (body["SubmittedTasks"], body["DuplicateTasks"]) == (1, 1)
    assert body["Duplicates"] == ["dup-running"]


def test_name_is_free_again_once_its_task_finished(server: ServerProcess) -> None:
    first = server.post([{"name": "again", "duration": 10}]).json()
    assert first["SubmittedTasks"] == 1
    wait_until(lambda: server.get("/tasks/again").json()["state"] == "done", what="again done")
    second = server.post([{"name": "again", "duration": 10}]).json()
    assert (second["SubmittedTasks"], second["DuplicateTasks"]) == (1, 0)


def test_content_type_with_charset_is_accepted(server: ServerProcess) -> None:
    r = server.client.post(
        "/tasks",
        content=b'[{"name": "charset-ok", "duration": 1}]',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200
    assert r.json()["SubmittedTasks"] == 1


def test_unicode_names_round_trip(server: ServerProcess) -> None:
    name = "tâche/été 1"
    assert server.post([{"name": name, "duration": 0}]).json()["Accepted"] == [name]
    wait_until(
        lambda: server.get(f"/tasks/{name}").json().get("state") == "done",
        what="the unicode task done",
    )
