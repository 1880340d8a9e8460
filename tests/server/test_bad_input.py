"""Every bad request gets the right status and a message naming what was
wrong, and a refused request queues nothing (not even its good items)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import ServerProcess


def post_raw(server: ServerProcess, body: bytes, content_type: str = "application/json") -> Any:
    return server.client.post("/tasks", content=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("body", [b"[{", b"", b"[1,]", b"{'name': 'x'}", b"nul"])
def test_malformed_json_is_400(server: ServerProcess, body: bytes) -> None:
    r = post_raw(server, body)
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["error"]


def test_body_that_is_not_utf8_is_400(server: ServerProcess) -> None:
    r = post_raw(server, b'[{"name": "\xff\xfe", "duration": 1}]')
    assert r.status_code == 400
    assert "UTF-8" in r.json()["error"]


@pytest.mark.parametrize(
    ("tasks", "field"),
    [
        ({"name": "x", "duration": 1}, "body"),
        ("tasks", "body"),
        ([["x", 1]], "[0]"),
        ([{"duration": 1}], "[0].name"),
        ([{"name": 7, "duration": 1}], "[0].name"),
        ([{"name": "", "duration": 1}], "[0].name"),
        ([{"name": "n" * 257, "duration": 1}], "[0].name"),
        ([{"name": "running", "duration": 1}], "[0].name"),
        ([{"name": "ok", "duration": 1}, {"name": "no-duration"}], "[1].duration"),
        ([{"name": "x", "duration": "1000"}], "[0].duration"),
        ([{"name": "x", "duration": 1.5}], "[0].duration"),
        ([{"name": "x", "duration": True}], "[0].duration"),
        ([{"name": "x", "duration": None}], "[0].duration"),
        ([{"name": "x", "duration": 10, "priority": 1}], "[0].priority"),
        ([{"name": "x", "duration": 10, "args": [1]}], "[0].args"),
        ([{"name": "x", "handler": "nope"}], "[0].handler"),
        ([{"name": "x", "handler": 3}], "[0].handler"),
        ([{"name": "x", "handler": "add", "args": [1]}], "[0].args"),
        ([{"name": "x", "handler": "add", "args": {"a": 1}}], "[0].args"),
        ([{"name": "x", "handler": "add", "args": [1, 2], "kwargs": [3]}], "[0].kwargs"),
        ([{"name": "x", "handler": "add", "args": [1, 2], "duration": 5}], "[0].duration"),
    ],
)
def test_wrong_shapes_and_types_are_422_naming_the_field(
    server: ServerProcess, tasks: Any, field: str
) -> None:
    r = server.post(tasks)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == field
    assert body["error"].startswith(field)


@pytest.mark.parametrize("duration", [-1, -5000, 600_001, 10**30])
def test_negative_or_absurd_durations_are_422(server: ServerProcess, duration: int) -> None:
    r = server.post([{"name": "bad-duration", "duration": duration}])
    assert r.status_code == 422
    assert r.json()["field"] == "[0].duration"


def test_a_refused_request_queues_none_of_its_items(server: ServerProcess) -> None:
    r = server.post([{"name": "good-but-refused", "duration": 1}, {"name": "bad", "duration": -1}])
    assert r.status_code == 422
    assert server.get("/tasks/good-but-refused").status_code == 404


def test_body_over_the_size_limit_is_413(server: ServerProcess) -> None:
    big = [{"name": f"big-{i}-" + "x" * 200, "duration": 1} for i in range(45)]  # > 8 KiB
    r = server.post(big)
    assert r.status_code == 413
    assert "--max-body" in r.json()["error"]


def test_chunked_body_over_the_size_limit_is_413(server: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts
        yield b"["
        for i in range(100):
            yield b'{"name": "chunk-%d", "duration": 1},' % i
        yield b'{"name": "last", "duration": 1}]'

    r = server.client.post("/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_too_many_items_is_413(server: ServerProcess) -> None:
    r = server.post([{"name": f"many-{i}", "duration": 0} for i in range(51)])
    assert r.status_code == 413
    assert "--max-items" in r.json()["error"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_other_content_types_are_415(server: ServerProcess, content_type: str) -> None:
    r = post_raw(server, b'[{"name": "ct", "duration": 1}]', content_type)
    assert r.status_code == 415


def test_missing_content_type_is_415(server: ServerProcess) -> None:
    r = server.client.post("/tasks", content=b'[{"name": "ct", "duration": 1}]')
    assert r.status_code == 415


def test_unknown_path_is_404_and_wrong_method_405(server: ServerProcess) -> None:
    assert server.get("/nope").status_code == 404
    assert server.client.delete("/tasks").status_code == 405
    assert server.client.put("/tasks/running").status_code == 405


def test_unknown_task_is_404(server: ServerProcess) -> None:
    r = server.get("/tasks/never-submitted")
    assert r.status_code == 404
    assert "never-submitted" in r.json()["error"]


def test_stats_history_must_be_a_number(server: ServerProcess) -> None:
    r = server.get("/stats", params={"history": "lots"})
    assert r.status_code == 422
    assert r.json()["field"] == "history"


@pytest.mark.parametrize("history", ["0", "-1", "601", "1.5"])
def test_stats_history_outside_the_documented_range_is_422(
    server: ServerProcess, history: str
) -> None:
    r = server.get("/stats", params={"history": history})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "history"


def test_stats_history_at_the_documented_maximum_is_answered(server: ServerProcess) -> None:
    r = server.get("/stats", params={"history": "600"})
    assert r.status_code == 200
    assert len(r.json()["throughput"]["ended"]) == 600


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        (
            {"name": "0", "duration": 0, "handler": "", "args": [None, None], "kwargs": {}},
            "[0].handler",
            "unknown handler ''",
        ),
        (
            {"name": "both", "duration": 0, "handler": "add", "args": [1, 2]},
            "[0].duration",
            "either a duration (a demo sleep) or a handler, not both",
        ),
    ],
)
def test_a_duration_with_a_handler_is_422(
    server: ServerProcess, item: dict[str, Any], field: str, message: str
) -> None:
    r = server.post([item])
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert message in r.json()["error"]
    assert server.get(f"/tasks/{item['name']}").status_code == 404


def test_an_integral_number_is_a_duration(server: ServerProcess) -> None:
    # JSON Schema's "integer" includes 5.0: the schema allows it, so the server does.
    r = server.post([{"name": "integral-float", "duration": 5.0}])
    assert r.status_code == 200, r.text
    assert r.json()["Accepted"] == ["integral-float"]


def test_a_lone_surrogate_escape_is_400(server: ServerProcess) -> None:
    # Not a character: no UTF-8 answer (or log line) could carry the name.
    r = post_raw(server, b'[{"name": "half-\\ud800", "duration": 1}]')
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["error"]
