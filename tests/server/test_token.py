"""An optional bearer token guards the mutating endpoint; reads stay open."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import ServerProcess

TASK = [{"name": "guarded", "duration": 1}]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_post_needs_the_token(serve: Callable[..., ServerProcess], how: str) -> None:
    if how == "env":
        server = serve(env={"CONEXE_TOKEN": "s3cret"})
    else:
        server = serve("--token", "s3cret")
    r = server.post(TASK)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert server.post(TASK, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert server.post(TASK, headers={"Authorization": "s3cret"}).status_code == 401
    ok = server.post(TASK, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.json()["SubmittedTasks"] == 1


def test_reads_need_no_token(serve: Callable[..., ServerProcess]) -> None:
    server = serve(env={"CONEXE_TOKEN": "s3cret"})
    for path in ("/tasks/running", "/tasks/pending", "/stats", "/healthz", "/metrics", "/"):
        assert server.get(path).status_code == 200, path


def test_bad_input_behind_a_token_is_401_first(serve: Callable[..., ServerProcess]) -> None:
    server = serve(env={"CONEXE_TOKEN": "s3cret"})
    r = server.client.post("/tasks", content=b"[{", headers={"Content-Type": "text/plain"})
    assert r.status_code == 401
