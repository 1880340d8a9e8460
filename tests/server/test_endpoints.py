"""The read-only endpoints: /stats, /healthz, /metrics (Prometheus text),
/openapi.json (matching the app's routes) and the self-contained dashboard."""

from __future__ import annotations

from starlette.routing import Route

from conexe.server import TaskService, create_app
from conexe.server._schema import Limits, RequestSchema
from conexe.server.openapi import openapi_document

from .conftest import ServerProcess, wait_until


def test_stats_has_the_executor_and_service_counters(server: ServerProcess) -> None:
    server.post([{"name": "stats-1", "duration": 0}, {"name": "stats-1", "duration": 0}])
    wait_until(lambda: server.get("/tasks/stats-1").json()["state"] == "done", what="stats-1 done")
    body = server.get("/stats", params={"history": 60}).json()
    assert body["state"] == "serving"
    assert (body["pool_size"], body["queue_size"]) == (5, 1000)
    assert body["tasks"]["accepted"] >= 1
    assert body["tasks"]["duplicate"] >= 1
    assert body["executor"]["submitted"] >= body["tasks"]["accepted"] - body["tasks"]["pending"]
    assert body["executor"]["completed"] >= 1
    ended = body["throughput"]["ended"]
    assert len(ended) == 60
    assert sum(ended) >= 1


def test_healthz_is_ok_while_serving(server: ServerProcess) -> None:
    r = server.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_metrics_are_prometheus_text(server: ServerProcess) -> None:
    server.post([{"name": "metric-1", "duration": 0}])
    wait_until(
        lambda: server.get("/tasks/metric-1").json()["state"] == "done", what="metric-1 done"
    )
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert "# TYPE conexe_tasks_submitted_total counter" in lines
    accepted = next(
        line
        for line in lines
        if line.startswith('conexe_tasks_submitted_total{outcome="accepted"}')
    )
    assert float(accepted.split()[-1]) >= 1
    assert "conexe_pool_size 5.0" in lines


def test_openapi_document_is_served(server: ServerProcess) -> None:
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/tasks" in doc["paths"]


def test_openapi_describes_exactly_the_apps_routes() -> None:
    service = TaskService(1, 1)
    try:
        app = create_app(service)
        routes = {
            (r.path.replace("{name:path}", "{name}"), m.lower())
            for r in app.routes
            if isinstance(r, Route)
            for m in (r.methods or ())
            if m != "HEAD"
        }
    finally:
        service.close()
    documented = {
        (path, method)
        for path, ops in openapi_document("0", RequestSchema(Limits(), {})).items()
        if path == "paths"
        for path, methods in ops.items()
        for method in methods
    }
    assert documented == routes


def test_dashboard_is_self_contained_html(server: ServerProcess) -> None:
    r = server.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "://" not in r.text  # no external script, style, font or image
    assert "<canvas" in r.text
