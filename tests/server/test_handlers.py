"""``--handlers``: registered plain functions run by name with JSON
arguments; GET /tasks/{name} gives the state and, once finished, the result
or the error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import SRC, ServerProcess, wait_until


def finished(server: ServerProcess, name: str) -> dict[str, Any]:
    def state() -> dict[str, Any] | None:
        body: dict[str, Any] = server.get(f"/tasks/{name}").json()
        return body if body.get("state") in ("done", "failed", "cancelled") else None

    return wait_until(state, what=f"{name} finished")


def test_handler_result_is_kept(server: ServerProcess) -> None:
    r = server.post(
        [
            {"name": "sum", "handler": "add", "args": [2, 3]},
            {
                "name": "kw",
                "handler": "slow_echo",
                "args": [{"x": [1, 2]}],
                "kwargs": {"seconds": 0},
            },
        ]
    )
    assert r.json()["SubmittedTasks"] == 2
    assert finished(server, "sum")["result"] == 5
    kw = finished(server, "kw")
    assert kw["state"] == "done"
    assert kw["result"] == {"x": [1, 2]}
    assert kw["handler"] == "slow_echo"


def test_handler_error_is_reported(server: ServerProcess) -> None:
    server.post([{"name": "boom", "handler": "fail", "args": ["broken on purpose"]}])
    body = finished(server, "boom")
    assert body["state"] == "failed"
    assert body["error"] == {"type": "ValueError", "message": "broken on purpose"}


def test_running_handler_task_is_listed_with_its_handler(server: ServerProcess) -> None:
    server.post([{"name": "echo-slow", "handler": "slow_echo", "args": ["hi", 60]}])
    wait_until(lambda: "echo-slow" in server.names("running"), what="echo-slow running")
    item = next(t for t in server.get("/tasks/running").json() if t["name"] == "echo-slow")
    assert item == {"name": "echo-slow", "duration": None, "handler": "slow_echo"}
    assert server.get("/tasks/echo-slow").json()["state"] == "running"


def test_demo_task_state_goes_pending_running_done(server: ServerProcess) -> None:
    server.post([{"name": "life", "duration": 300}])
    seen = set()

    def done() -> bool:
        seen.add(server.get("/tasks/life").json()["state"])
        return "done" in seen

    wait_until(done, what="life done")
    assert seen <= {"pending", "running", "done"}
    body = server.get("/tasks/life").json()
    assert body["started_at"] <= body["ended_at"]
    assert body["result"] is None


def test_only_public_functions_of_the_module_are_handlers(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    (tmp_path / "my_tasks.py").write_text(
        "import os\n"
        "from os.path import join\n"
        "def double(x):\n    return 2 * x\n"
        "def _private(x):\n    return x\n"
    )
    server = serve("--handlers", "my_tasks", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{SRC}"})
    assert server.post([{"name": "d", "handler": "double", "args": [21]}]).status_code == 200
    assert finished(server, "d")["result"] == 42
    for name in ("_private", "join", "os", "eval", "print"):
        r = server.post([{"name": "x", "handler": name, "args": ["1"]}])
        assert r.status_code == 422, name
        assert "registered: double" in r.json()["error"]


def test_without_handlers_every_handler_is_unknown(serve: Callable[..., ServerProcess]) -> None:
    server = serve()
    r = server.post([{"name": "x", "handler": "add", "args": [1, 2]}])
    assert r.status_code == 422
    assert "--handlers" in r.json()["error"]
