"""pytest-benchmark suite for KeyedExecutor (the quick form of
``bench_keyed.py``): KeyedExecutor on each core, the stdlib's
ThreadPoolExecutor with per-key chained futures, and ConcurrentExecutor,
on the same no-op tasks; plus the slow-key and memory measurements.

    pytest benchmarks/test_bench_keyed.py                     # measure
    pytest benchmarks/test_bench_keyed.py --benchmark-disable # smoke test
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_keyed import (  # noqa: E402
    CHAINED,
    ChainedKeyedPool,
    noop,
    queued_task_bytes,
    time_fast_tasks,
)
from conexe import ConcurrentExecutor, KeyedExecutor  # noqa: E402
from conexe._impl import cores  # noqa: E402

TASKS = 2_000
KEYS = 100
WORKERS = 4


def run_all(submit: Callable[..., Any]) -> list[Any]:
    return [f.result() for f in [submit(i % KEYS, noop) for i in range(TASKS)]]


@pytest.fixture(params=sorted(cores))
def core(request: pytest.FixtureRequest) -> Any:
    return cores[request.param]


@pytest.fixture
def keyed(core: Any) -> Iterator[KeyedExecutor]:
    cls = type("KeyedExecutor", (KeyedExecutor,), {"_core": core})
    ex = cls(WORKERS)
    yield ex
    ex.shutdown()


def test_keyed_executor_no_op_tasks(benchmark: Any, keyed: KeyedExecutor) -> None:
    out = benchmark(run_all, keyed.submit)
    assert out == [None] * TASKS
    assert keyed.stats().active_keys == 0


def test_chained_thread_pool_no_op_tasks(benchmark: Any) -> None:
    pool = ChainedKeyedPool(WORKERS)
    try:
        out = benchmark(run_all, pool.submit)
    finally:
        pool.shutdown()
    assert out == [None] * TASKS
    assert pool.tails == {}


def test_concurrent_executor_no_op_tasks(benchmark: Any, core: Any) -> None:
    cls = type("ConcurrentExecutor", (ConcurrentExecutor,), {"_core": core})
    with cls(WORKERS) as ex:
        out = benchmark(lambda: [f.result() for f in [ex.submit(noop) for _ in range(TASKS)]])
    assert out == [None] * TASKS


@pytest.mark.parametrize("slow_tasks", [0, 3])
def test_fast_tasks_beside_a_slow_key(benchmark: Any, core: Any, slow_tasks: int) -> None:
    variant = f"KeyedExecutor[{core.IMPLEMENTATION}]"
    secs = benchmark.pedantic(
        time_fast_tasks, args=(variant, TASKS, KEYS, WORKERS, slow_tasks), rounds=1
    )
    assert secs > 0


def test_memory_per_queued_task_is_below_the_chained_alternative(core: Any) -> None:
    ours = queued_task_bytes(f"KeyedExecutor[{core.IMPLEMENTATION}]", TASKS, KEYS, WORKERS)
    theirs = queued_task_bytes(CHAINED, TASKS, KEYS, WORKERS)
    assert 0 < ours < theirs
