"""Runner throughput: 200k no-op tasks on 4 workers, against the idiomatic
alternative and against conexe's own ConcurrentExecutor, in one run.

* ``Runner[core]``: ``runner.submit(task)``; the task gets its worker's
  resource as its argument (``fn(resource)``);
* ``ThreadPoolExecutor + thread-local``: the stdlib way to give each worker
  a resource: an ``initializer`` puts it in a ``threading.local``, the task
  reads it from there;
* ``ConcurrentExecutor[core]``: conexe's plain executor, no resources.

Every task returns None. (A task returning its resource, a GC-tracked
object, makes every variant much slower: the cyclic GC then has 200k
futures holding it to look at, and the benchmark would measure the GC.)

Each variant submits every task, then waits for every future's result;
pool start-up and a warm-up are outside the timing. Reports the median of
``--repeat`` runs and the ratios; ``--check`` exits 1 when the Runner on
the C core is below 10x ThreadPoolExecutor or 0.7x ConcurrentExecutor.

    python benchmarks/bench_runner.py              # 200k tasks, 5 runs
    python benchmarks/bench_runner.py --tasks 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from conexe import ConcurrentExecutor, Runner  # noqa: E402
from conexe._impl import cores  # noqa: E402
from conexe.bench.baselines import tpe_make_resource, tpe_use_resource, use_resource  # noqa: E402

TARGET_VS_TPE = 10.0
TARGET_VS_EXECUTOR = 0.7


class Resource:
    """What each worker owns (a connection, a model...)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0


def noop() -> None:
    return None


def _drain(futures: list[Any]) -> None:
    for f in futures:
        f.result()


def time_runner(core: Any, tasks: int, workers: int) -> Callable[[], float]:
    cls = type("Runner", (Runner,), {"_core": core})
    runner = cls(Resource, worker_count=workers)
    _drain([runner.submit(use_resource) for _ in range(1000)])  # warm up

    def run() -> float:
        submit = runner.submit
        t0 = time.perf_counter()
        _drain([submit(use_resource) for _ in range(tasks)])
        return time.perf_counter() - t0

    run.close = runner.stop  # type: ignore[attr-defined]
    return run


def time_executor(core: Any, tasks: int, workers: int) -> Callable[[], float]:
    cls = type("ConcurrentExecutor", (ConcurrentExecutor,), {"_core": core})
    ex = cls(workers)
    _drain([ex.submit(noop) for _ in range(1000)])

    def run() -> float:
        submit = ex.submit
        t0 = time.perf_counter()
        _drain([submit(noop) for _ in range(tasks)])
        return time.perf_counter() - t0

    run.close = ex.shutdown  # type: ignore[attr-defined]
    return run


def time_tpe(tasks: int, workers: int) -> Callable[[], float]:
    ex = ThreadPoolExecutor(workers, initializer=tpe_make_resource)
    _drain([ex.submit(tpe_use_resource) for _ in range(1000)])

    def run() -> float:
        submit = ex.submit
        t0 = time.perf_counter()
        _drain([submit(tpe_use_resource) for _ in range(tasks)])
        return time.perf_counter() - t0

    run.close = ex.shutdown  # type: ignore[attr-defined]
    return run


def bench(tasks: int, workers: int, repeat: int) -> dict[str, float]:
    """Median seconds per variant. The variants take turns (one run each
    per round), so a noisy moment on the machine hits all of them."""
    makers: dict[str, Callable[[], Callable[[], float]]] = {
        "ThreadPoolExecutor + thread-local": lambda: time_tpe(tasks, workers),
    }
    for name in sorted(cores):
        core = cores[name]
        makers[f"Runner[{name}]"] = lambda core=core: time_runner(core, tasks, workers)
        makers[f"ConcurrentExecutor[{name}]"] = lambda core=core: time_executor(
            core, tasks, workers
        )
    runs = {name: make() for name, make in makers.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    try:
        for _ in range(repeat):
            for name, run in runs.items():
                gc.collect()
                times[name].append(run())
    finally:
        for run in runs.values():
            run.close()  # type: ignore[attr-defined]
    return {name: statistics.median(t) for name, t in times.items()}


def report(results: dict[str, float], tasks: int) -> list[str]:
    tpe = results["ThreadPoolExecutor + thread-local"]
    lines = [f"{'variant':36s} {'median s':>9s} {'tasks/s':>11s}"]
    for name, secs in results.items():
        lines.append(f"{name:36s} {secs:9.3f} {tasks / secs:11,.0f}")
    for name in sorted(cores):
        runner, ex = results[f"Runner[{name}]"], results[f"ConcurrentExecutor[{name}]"]
        lines.append(
            f"Runner[{name}]: {tpe / runner:5.1f}x ThreadPoolExecutor "
            f"(target {TARGET_VS_TPE:g}x), {ex / runner:4.2f}x ConcurrentExecutor[{name}] "
            f"(target {TARGET_VS_EXECUTOR:g}x)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 if the C core misses a target")
    args = parser.parse_args(argv)
    results = bench(args.tasks, args.workers, args.repeat)
    print(f"{args.tasks:,} no-op tasks, {args.workers} workers, median of {args.repeat} runs")
    print("\n".join(report(results, args.tasks)))
    if args.check:
        if "c" not in cores:
            print("--check needs the C core (build it: python setup.py build_ext --inplace)")
            return 1
        tpe, runner = results["ThreadPoolExecutor + thread-local"], results["Runner[c]"]
        ex = results["ConcurrentExecutor[c]"]
        if tpe / runner < TARGET_VS_TPE or ex / runner < TARGET_VS_EXECUTOR:
            print("MISSED a target")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
