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


def test_metrics_have_wait_and_run_histograms_per_handler(server: ServerProcess) -> None:
    server.post(
        [{"name": f"hist-{i}", "handler": "slow_echo", "args": [i, 0.02]} for i in range(3)]
    )
    server.post([{"name": "hist-demo", "duration": 1}])
    for name in ("hist-0", "hist-1", "hist-2", "hist-demo"):
        wait_until(lambda name=name: server.get(f"/tasks/{name}").json()["state"] == "done")
    lines = server.get("/metrics").text.splitlines()
    assert "# TYPE conexe_task_run_seconds histogram" in lines
    assert "# TYPE conexe_task_queue_wait_seconds histogram" in lines

    def series(metric: str, handler: str) -> dict[str, float]:
        prefix = f'{metric}_bucket{{handler="{handler}",le="'
        return {
            line[len(prefix) :].split('"')[0]: float(line.split()[-1])
            for line in lines
            if line.startswith(prefix)
        }

    for metric in ("conexe_task_run_seconds", "conexe_task_queue_wait_seconds"):
        for handler in ("slow_echo", "(demo)"):
            buckets = series(metric, handler)
            counts = list(buckets.values())
            assert counts == sorted(counts), (metric, handler)  # cumulative
            total = next(
                float(line.split()[-1])
                for line in lines
                if line.startswith(f'{metric}_count{{handler="{handler}"}}')
            )
            assert buckets["+Inf"] == total >= (3 if handler == "slow_echo" else 1)
    runs = series("conexe_task_run_seconds", "slow_echo")
    assert runs["0.01"] == 0 < runs["0.05"]  # each slept 20 ms


def test_stats_say_the_state_is_in_memory(server: ServerProcess) -> None:
    assert server.get("/stats").json()["journal"] is None


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
