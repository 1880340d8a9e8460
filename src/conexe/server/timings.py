"""How long tasks wait in the queue and run, per handler: the histograms
``GET /metrics`` exports (``conexe_task_queue_wait_seconds`` and
``conexe_task_run_seconds``, label ``handler``; a demo sleep task's is
``(demo)``).

The service records a task's two durations when it ends, under the lock it
holds then anyway; the metrics collector copies the counts when scraped.

    >>> t = Timings()
    >>> t.observe("add", wait=0.002, run=0.0004)
    >>> snap = t.snapshot()["add"]
    >>> snap.run.count, snap.run.buckets[0]    # (upper bound, cumulative count)
    (1, (0.001, 1))
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["BUCKETS", "DEMO", "Histogram", "Timings"]

# Upper bounds in seconds: sub-millisecond calls to hour-long demo sleeps.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, float("inf"))
DEMO = "(demo)"  # the handler label of a demo sleep task


@dataclass
class Histogram:
    """Counts per bucket (not cumulative here), their sum and total."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1

    @property
    def buckets(self) -> list[tuple[float, int]]:
        """``(upper bound, cumulative count)`` pairs, as Prometheus has them."""
        out, total = [], 0
        for bound, n in zip(BUCKETS, self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


@dataclass
class HandlerTimings:
    wait: Histogram = field(default_factory=Histogram)
    run: Histogram = field(default_factory=Histogram)


class Timings:
    """Queue-wait and run-time histograms per handler. Not locked: its
    owner calls it under a lock of its own."""

    def __init__(self) -> None:
        self._by_handler: dict[str, HandlerTimings] = {}

    def observe(self, handler: str | None, *, wait: float, run: float) -> None:
        """A task of ``handler`` (None: a demo sleep) waited ``wait``
        seconds for a worker, then ran ``run`` seconds."""
        name = DEMO if handler is None else handler
        timings = self._by_handler.get(name)
        if timings is None:
            timings = self._by_handler[name] = HandlerTimings()
        timings.wait.observe(max(0.0, wait))
        timings.run.observe(max(0.0, run))

    def snapshot(self) -> dict[str, HandlerTimings]:
        """A copy, to read outside the owner's lock."""
        return {
            name: HandlerTimings(
                Histogram(list(t.wait.counts), t.wait.sum, t.wait.count),
                Histogram(list(t.run.counts), t.run.sum, t.run.count),
            )
            for name, t in self._by_handler.items()
        }
