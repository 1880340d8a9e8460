"""An optional bearer token guards every endpoint but ``/healthz``, the
dashboard's page and (unless ``--token-metrics``) ``/metrics``; the OpenAPI
document says which; binding beyond loopback without a token warns."""

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


GUARDED = (
    "/tasks/running",
    "/tasks/pending",
    "/tasks/finished",
    "/tasks/guarded",
    "/stats",
    "/openapi.json",
)
OPEN = ("/healthz", "/")


def test_reads_need_the_token_too(serve: Callable[..., ServerProcess]) -> None:
    server = serve(env={"CONEXE_TOKEN": "s3cret"})
    server.post(TASK, headers={"Authorization": "Bearer s3cret"})
    for path in GUARDED:
        r = server.get(path)
        assert r.status_code == 401, path
        assert "error" in r.json() and "result" not in r.text
        assert server.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    for path in (*OPEN, "/metrics"):
        assert server.get(path).status_code == 200, path
    assert server.client.delete("/tasks/guarded").status_code == 401
    assert server.get("/tasks/guarded", headers={"Authorization": "Bearer s3cret"}).json()[
        "state"
    ] in ("pending", "running", "done")


def test_token_metrics_guards_the_metrics_too(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--token-metrics", env={"CONEXE_TOKEN": "s3cret"})
    assert server.get("/metrics").status_code == 401
    ok = server.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "conexe_tasks" in ok.text
    for path in OPEN:
        assert server.get(path).status_code == 200, path


@pytest.mark.parametrize("token_metrics", [False, True])
def test_the_openapi_document_says_which_endpoints_need_the_token(token_metrics: bool) -> None:
    from conexe.server._schema import Limits, RequestSchema
    from conexe.server.openapi import openapi_document

    schema = RequestSchema(Limits(), {})
    doc = openapi_document("0", schema, token=True, token_metrics=token_metrics)
    guarded = {
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security") == [{"bearer": []}] and "401" in op["responses"]
    }
    expected = {
        ("/tasks", "post"),
        ("/tasks/running", "get"),
        ("/tasks/pending", "get"),
        ("/tasks/finished", "get"),
        ("/tasks/{name}", "get"),
        ("/tasks/{name}", "delete"),
        ("/stats", "get"),
        ("/openapi.json", "get"),
    }
    assert guarded == expected | ({("/metrics", "get")} if token_metrics else set())
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    unguarded = openapi_document("0", RequestSchema(Limits(), {}))
    assert not any("security" in op for ops in unguarded["paths"].values() for op in ops.values())


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_binding_beyond_loopback_without_a_token_warns(
    serve: Callable[..., ServerProcess], token: str | None
) -> None:
    server = serve("--host", "0.0.0.0", env={"CONEXE_TOKEN": token} if token else {})
    warned = "without a token: anyone who reaches this port" in server.log()
    assert warned is (token is None)


def test_loopback_without_a_token_does_not_warn(serve: Callable[..., ServerProcess]) -> None:
    assert "without a token" not in serve().log()


def test_bad_input_behind_a_token_is_401_first(serve: Callable[..., ServerProcess]) -> None:
    server = serve(env={"CONEXE_TOKEN": "s3cret"})
    r = server.client.post("/tasks", content=b"[{", headers={"Content-Type": "text/plain"})
    assert r.status_code == 401
