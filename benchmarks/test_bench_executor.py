"""pytest-benchmark suites: issue 2's scenarios at small sizes, on
``ThreadPoolExecutor`` ("TPE") and ``ConcurrentExecutor`` bound to each core.

Each scenario is one benchmark group, so the TPE/c/py rows of a group sit
together in pytest-benchmark's table and their ratio can be read off::

    PYTHONPATH=src python -m pytest benchmarks                         # timed
    PYTHONPATH=src python -m pytest benchmarks --benchmark-disable -q  # smoke

The full-size comparison with targets is ``python -m conexe bench``
(or ``benchmarks/compare.py``); the scenario code is shared with it
(:mod:`conexe.bench.cli`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conexe.bench.cli import Factory, executor_factories, memory_per_task, warm

IMPLS = executor_factories()
N = 2000  # no-op tasks per run: big enough to show the per-task cost


def _noop(*_: object) -> None:
    return None


@pytest.fixture(params=sorted(IMPLS))
def factory(request: pytest.FixtureRequest) -> Factory:
    return IMPLS[request.param]


@pytest.fixture
def executor(factory: Factory, request: pytest.FixtureRequest) -> Iterator[cf.Executor]:
    """A warm pool (every thread started) of ``workers`` threads (default 4)."""
    workers = getattr(request, "param", 4)
    with factory(workers) as ex:
        warm(ex, workers)
        yield ex


def _submit_all_then_wait(ex: cf.Executor, n: int) -> int:
    futs = [ex.submit(_noop) for _ in range(n)]
    return sum(1 for f in futs if f.result() is None)


@pytest.mark.parametrize("executor", [4, 32], indirect=True, ids=["4w", "32w"])
def test_noop_tasks_submit_all_then_wait(benchmark: Any, executor: cf.Executor) -> None:
    benchmark.group = f"(a/b) {N} no-ops, submit all then wait, {executor._max_workers} workers"
    assert benchmark(_submit_all_then_wait, executor, N) == N


def test_map_over_items(benchmark: Any, executor: cf.Executor) -> None:
    benchmark.group = f"(c) map over {N} items, 4 workers"
    out = benchmark(lambda: list(executor.map(abs, range(-N, 0))))
    assert out == list(range(N, 0, -1))


def test_submit_result_round_trip(benchmark: Any, executor: cf.Executor) -> None:
    benchmark.group = "(d) one submit().result() round trip, 4 idle workers"
    assert benchmark(lambda: executor.submit(abs, -7).result()) == 7


@pytest.mark.parametrize("executor", [64], indirect=True, ids=["64w"])
def test_sleeping_tasks_on_64_workers(benchmark: Any, executor: cf.Executor) -> None:
    n = 256  # 4 sleeps per worker: ideal 4 ms
    benchmark.group = f"(e) {n} x sleep(1 ms), 64 workers (ideal {n / 64:.0f} ms)"

    def run() -> int:
        futs = [executor.submit(time.sleep, 0.001) for _ in range(n)]
        return sum(1 for f in futs if f.result() is None)

    assert benchmark(run) == n


def test_run_in_executor(benchmark: Any, executor: cf.Executor) -> None:
    n = 500
    benchmark.group = f"(f) {n} x loop.run_in_executor(ex, noop)"

    async def flood() -> list[Any]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*[loop.run_in_executor(executor, _noop) for _ in range(n)])

    loop = asyncio.new_event_loop()
    try:
        out = benchmark(lambda: loop.run_until_complete(flood()))
    finally:
        loop.close()
    assert out == [None] * n


def test_memory_of_queued_tasks(benchmark: Any, factory: Factory) -> None:
    """Times the measurement (not meaningful); the figure that matters,
    bytes per queued task, is in ``extra_info`` (see ``--benchmark-json``)."""
    n = 5000
    benchmark.group = f"(g) {n} queued no-ops, futures held (bytes/task in extra_info)"
    per_task = benchmark.pedantic(memory_per_task, args=(factory, n), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_task"] = per_task
    # A queued task is at least its future object; anything less means the
    # measurement missed the tasks.
    assert per_task > 50
