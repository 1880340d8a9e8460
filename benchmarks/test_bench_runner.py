"""pytest-benchmark suite for the Runner (the quick form of
``bench_runner.py``): the Runner on each core, ThreadPoolExecutor with a
thread-local resource, and ConcurrentExecutor, on the same no-op tasks.

    pytest benchmarks/test_bench_runner.py                     # measure
    pytest benchmarks/test_bench_runner.py --benchmark-disable # smoke test
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runner import Resource, noop  # noqa: E402
from conexe import ConcurrentExecutor, Runner  # noqa: E402
from conexe._impl import cores  # noqa: E402
from conexe.bench.baselines import tpe_make_resource, tpe_use_resource, use_resource  # noqa: E402

TASKS = 2_000
WORKERS = 4


def run_all(submit: Callable[[Any], Any], fn: Callable[..., Any]) -> list[Any]:
    return [f.result() for f in [submit(fn) for _ in range(TASKS)]]


@pytest.fixture(params=sorted(cores))
def core(request: pytest.FixtureRequest) -> Any:
    return cores[request.param]


@pytest.fixture
def runner(core: Any) -> Iterator[Runner[Resource]]:
    cls = type("Runner", (Runner,), {"_core": core})
    r = cls(Resource, worker_count=WORKERS)
    deadline = time.monotonic() + 30
    while r.stats().active_workers < WORKERS:  # time tasks, not start-up
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.001)
    yield r
    r.stop()


def test_runner_no_op_tasks(benchmark: Any, runner: Runner[Resource]) -> None:
    out = benchmark(run_all, runner.submit, use_resource)
    assert out == [None] * TASKS
    assert runner.stats().active_workers == WORKERS


def test_concurrent_executor_no_op_tasks(benchmark: Any, core: Any) -> None:
    cls = type("ConcurrentExecutor", (ConcurrentExecutor,), {"_core": core})
    with cls(WORKERS) as ex:
        out = benchmark(run_all, ex.submit, noop)
    assert out == [None] * TASKS


def test_thread_pool_executor_thread_local_no_op_tasks(benchmark: Any) -> None:
    with ThreadPoolExecutor(WORKERS, initializer=tpe_make_resource) as ex:
        out = benchmark(run_all, ex.submit, tpe_use_resource)
    assert out == [None] * TASKS
