"""``GET /metrics``: the service's counters, and histograms of how long
tasks waited and ran per handler, in the Prometheus text format.

The values are read from the service when scraped (a custom collector), so
the task path pays nothing for metrics. Each app has its own registry, so
several services can live in one process (tests do).

    >>> from conexe.server.service import TaskService
    >>> svc = TaskService(1, 1)
    >>> b"conexe_tasks_pending 0.0" in render(registry_for(svc))
    True
    >>> svc.close()
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .service import TaskService

__all__ = ["CONTENT_TYPE", "registry_for", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _ServiceCollector(Collector):
    def __init__(self, service: TaskService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        counts = self.service.counts()
        ex = self.service.stats()["executor"]
        submitted = CounterMetricFamily(
            "conexe_tasks_submitted",
            "Task items of POST /tasks, by outcome",
            labels=["outcome"],
        )
        for outcome in ("accepted", "duplicate", "refused"):
            submitted.add_metric([outcome], counts[outcome])
        yield submitted
        ended = CounterMetricFamily(
            "conexe_tasks_ended", "Accepted tasks that ended, by final state", labels=["state"]
        )
        for state in ("done", "failed", "cancelled"):
            ended.add_metric([state], counts[state])
        yield ended
        yield GaugeMetricFamily(
            "conexe_tasks_running", "Tasks running now", value=counts["running"]
        )
        yield GaugeMetricFamily("conexe_tasks_pending", "Tasks queued now", value=counts["pending"])
        yield GaugeMetricFamily(
            "conexe_workers", "Worker threads alive", value=ex.get("workers", 0)
        )
        yield GaugeMetricFamily(
            "conexe_pool_size", "Configured workers (--pool-size)", value=self.service.pool_size
        )
        yield GaugeMetricFamily(
            "conexe_queue_size",
            "Configured queue bound (--queue-size)",
            value=self.service.queue_size,
        )
        yield GaugeMetricFamily(
            "conexe_stopping",
            "1 while the server shuts down",
            value=int(self.service.state != "serving"),
        )
        yield from self._histograms()

    def _histograms(self) -> Iterator[Metric]:
        timings = self.service.timings()
        wait = HistogramMetricFamily(
            "conexe_task_queue_wait_seconds",
            "From accepted to started, per handler ((demo): demo sleeps)",
            labels=["handler"],
        )
        run = HistogramMetricFamily(
            "conexe_task_run_seconds",
            "From started to ended, per handler ((demo): demo sleeps)",
            labels=["handler"],
        )
        for handler, t in sorted(timings.items()):
            wait.add_metric([handler], _buckets(t.wait.buckets), t.wait.sum)
            run.add_metric([handler], _buckets(t.run.buckets), t.run.sum)
        yield wait
        yield run


def _buckets(pairs: list[tuple[float, int]]) -> list[tuple[str, float]]:
    return [("+Inf" if bound == float("inf") else repr(bound), n) for bound, n in pairs]


def registry_for(service: TaskService) -> CollectorRegistry:
    """A fresh registry exporting ``service``'s metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_ServiceCollector(service))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
