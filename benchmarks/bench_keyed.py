"""KeyedExecutor: throughput, head-of-line freedom and memory, against the
idiomatic Python alternative and conexe's own ConcurrentExecutor, in one run.

* ``KeyedExecutor[core]``: ``ex.submit(key, fn)``;
* ``ThreadPoolExecutor + chained futures``: the idiomatic way to get
  per-key order from the stdlib (:class:`conexe.bench.baselines.ChainedKeyedPool`): each
  key's next task is submitted to the pool from the done-callback of the
  key's previous task;
* ``ConcurrentExecutor[core]``: the same tasks without keys (no ordering).

Three measurements:

1. throughput: ``--tasks`` no-op tasks over ``--keys`` keys on
   ``--workers`` workers; each variant submits every task, then waits for
   every future's result (pool start-up and a warm-up outside the timing);
2. head-of-line freedom: the time of ``--fast`` no-op tasks on ordinary keys
   while one key has a queue of 1 s tasks, over their time without it
   (target: at most 2x). The slow tasks wait up to 1 s on an Event that is
   set once the fast tasks are measured, so the run doesn't sit out the
   slow key's queue;
3. memory per queued task (tracemalloc) while every worker is busy, over
   the chained alternative's (target: at most 1/3).

Medians of ``--repeat`` runs, variants taking turns so a noisy moment hits
all of them. ``--check`` exits 1 when the C core misses a target.

    python benchmarks/bench_keyed.py                # 200k tasks, 5 runs
    python benchmarks/bench_keyed.py --quick        # a smaller, faster run
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from conexe import ConcurrentExecutor, KeyedExecutor  # noqa: E402
from conexe._impl import cores  # noqa: E402
from conexe.bench.baselines import ChainedKeyedPool  # noqa: E402

TARGET_VS_CHAINED = 10.0
TARGET_VS_EXECUTOR = 0.7
TARGET_SLOW_KEY = 2.0
TARGET_MEMORY = 1 / 3
CHAINED = "ThreadPoolExecutor + chained futures"
SLOW_TASK_S = 1.0


def noop() -> None:
    return None


def _bind(cls: type, core: Any) -> Any:
    return type(cls.__name__, (cls,), {"_core": core})


def _drain(futures: list[Any]) -> None:
    for f in futures:
        f.result()


def _keyed_pool(variant: str, workers: int) -> tuple[Callable[..., Any], Callable[[], None]]:
    """(submit(key, fn, *args), close) for a keyed variant."""
    if variant == CHAINED:
        chained = ChainedKeyedPool(workers)
        return chained.submit, chained.shutdown
    core = cores[variant[variant.index("[") + 1 : -1]]
    ex = _bind(KeyedExecutor, core)(workers)
    return ex.submit, ex.shutdown


def _keyed_variants() -> list[str]:
    return [CHAINED] + [f"KeyedExecutor[{name}]" for name in sorted(cores)]


# -- 1. throughput --------------------------------------------------------------------


def time_keyed(variant: str, tasks: int, keys: int, workers: int) -> Callable[[], float]:
    submit, close = _keyed_pool(variant, workers)
    _drain([submit(i % keys, noop) for i in range(1000)])  # warm up
    key_of = [i % keys for i in range(tasks)]

    def run() -> float:
        t0 = time.perf_counter()
        _drain([submit(k, noop) for k in key_of])
        return time.perf_counter() - t0

    run.close = close  # type: ignore[attr-defined]
    return run


def time_executor(core: Any, tasks: int, workers: int) -> Callable[[], float]:
    ex = _bind(ConcurrentExecutor, core)(workers)
    _drain([ex.submit(noop) for _ in range(1000)])

    def run() -> float:
        submit = ex.submit
        t0 = time.perf_counter()
        _drain([submit(noop) for _ in range(tasks)])
        return time.perf_counter() - t0

    run.close = ex.shutdown  # type: ignore[attr-defined]
    return run


def bench_throughput(tasks: int, keys: int, workers: int, repeat: int) -> dict[str, float]:
    """Median seconds per variant for ``tasks`` no-op tasks."""
    makers: dict[str, Callable[[], Callable[[], float]]] = {}
    for variant in _keyed_variants():
        makers[variant] = lambda v=variant: time_keyed(v, tasks, keys, workers)
    for name in sorted(cores):
        makers[f"ConcurrentExecutor[{name}]"] = lambda c=cores[name]: time_executor(
            c, tasks, workers
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


# -- 2. a slow key -----------------------------------------------------------------------


def time_fast_tasks(variant: str, fast: int, keys: int, workers: int, slow_tasks: int) -> float:
    """Seconds for ``fast`` no-op tasks over ``keys`` keys while the key
    "slow" has ``slow_tasks`` tasks of up to 1 s each queued (0: none)."""
    submit, close = _keyed_pool(variant, workers)
    release = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(SLOW_TASK_S)

    slow_futures: list[Any] = []
    try:
        _drain([submit(i % keys, noop) for i in range(1000)])
        key_of = [i % keys for i in range(fast)]
        if slow_tasks:
            slow_futures = [submit("slow", slow) for _ in range(slow_tasks)]
            started.wait(10)
        gc.collect()
        t0 = time.perf_counter()
        _drain([submit(k, noop) for k in key_of])
        return time.perf_counter() - t0
    finally:
        release.set()
        _drain(slow_futures)  # the chained pool submits them from callbacks
        close()


def bench_slow_key(
    fast: int, keys: int, workers: int, repeat: int
) -> dict[str, tuple[float, float]]:
    """Per variant: median seconds of the fast tasks (without, with) the
    slow key."""
    out: dict[str, tuple[list[float], list[float]]] = {v: ([], []) for v in _keyed_variants()}
    for _ in range(repeat):
        for variant, (without, with_slow) in out.items():
            without.append(time_fast_tasks(variant, fast, keys, workers, 0))
            with_slow.append(time_fast_tasks(variant, fast, keys, workers, 5))
    return {v: (statistics.median(a), statistics.median(b)) for v, (a, b) in out.items()}


# -- 3. memory -----------------------------------------------------------------------------


def queued_task_bytes(variant: str, tasks: int, keys: int, workers: int) -> float:
    """Bytes traced by tracemalloc per task queued while every worker is
    busy (the futures kept in a list, as a caller would)."""
    submit, close = _keyed_pool(variant, workers)
    release = threading.Event()
    busy = threading.Semaphore(0)

    def hold() -> None:
        busy.release()
        release.wait(60)

    try:
        for i in range(workers):
            submit(("busy", i), hold)
        for _ in range(workers):
            busy.acquire(timeout=10)
        key_of = [i % keys for i in range(tasks)]
        futures: list[Any] = []
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            futures = [submit(k, noop) for k in key_of]
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        release.set()
        _drain(futures)
        return (after - before) / tasks
    finally:
        release.set()
        close()


def bench_memory(tasks: int, keys: int, workers: int, repeat: int) -> dict[str, float]:
    return {
        v: statistics.median(queued_task_bytes(v, tasks, keys, workers) for _ in range(repeat))
        for v in _keyed_variants()
    }


# -- all of it -------------------------------------------------------------------------------


def run(
    tasks: int = 200_000,
    keys: int = 1000,
    workers: int = 4,
    fast: int = 10_000,
    memory_tasks: int = 50_000,
    repeat: int = 5,
) -> dict[str, Any]:
    """Every measurement; what ``report`` prints and ``check`` judges."""
    return {
        "params": {
            "tasks": tasks,
            "keys": keys,
            "workers": workers,
            "fast": fast,
            "memory_tasks": memory_tasks,
            "repeat": repeat,
        },
        "throughput": bench_throughput(tasks, keys, workers, repeat),
        "slow_key": bench_slow_key(fast, keys, workers, repeat),
        "memory": bench_memory(memory_tasks, keys, workers, repeat),
    }


def report(results: dict[str, Any]) -> list[str]:
    p = results["params"]
    thr, slow, mem = results["throughput"], results["slow_key"], results["memory"]
    chained = thr[CHAINED]
    lines = [
        f"{p['tasks']:,} no-op tasks over {p['keys']:,} keys, {p['workers']} workers, "
        f"median of {p['repeat']} runs",
        f"{'variant':40s} {'median s':>9s} {'tasks/s':>11s}",
    ]
    for name, secs in thr.items():
        lines.append(f"{name:40s} {secs:9.3f} {p['tasks'] / secs:11,.0f}")
    for name in sorted(cores):
        keyed, ex = thr[f"KeyedExecutor[{name}]"], thr[f"ConcurrentExecutor[{name}]"]
        lines.append(
            f"KeyedExecutor[{name}]: {chained / keyed:5.1f}x {CHAINED} "
            f"(target {TARGET_VS_CHAINED:g}x), {ex / keyed:4.2f}x ConcurrentExecutor[{name}] "
            f"(target {TARGET_VS_EXECUTOR:g}x)"
        )
    lines.append(
        f"{p['fast']:,} fast tasks while one key has 1 s tasks queued "
        f"(median s without / with; target with <= {TARGET_SLOW_KEY:g}x without):"
    )
    for name, (without, with_slow) in slow.items():
        lines.append(
            f"  {name:38s} {without:7.3f} / {with_slow:7.3f}  = {with_slow / without:4.2f}x"
        )
    lines.append(
        f"memory per queued task ({p['memory_tasks']:,} tasks while every worker is busy; "
        f"target <= {TARGET_MEMORY:.2f}x {CHAINED}):"
    )
    for name, per_task in mem.items():
        lines.append(f"  {name:38s} {per_task:7.0f} B  = {per_task / mem[CHAINED]:4.2f}x")
    return lines


def missed_targets(results: dict[str, Any], core: str = "c") -> list[str]:
    """The targets ``core`` misses (empty: all met)."""
    thr, slow, mem = results["throughput"], results["slow_key"], results["memory"]
    keyed = f"KeyedExecutor[{core}]"
    missed = []
    if thr[CHAINED] / thr[keyed] < TARGET_VS_CHAINED:
        missed.append(f"{keyed} < {TARGET_VS_CHAINED:g}x {CHAINED}")
    if thr[f"ConcurrentExecutor[{core}]"] / thr[keyed] < TARGET_VS_EXECUTOR:
        missed.append(f"{keyed} < {TARGET_VS_EXECUTOR:g}x ConcurrentExecutor[{core}]")
    without, with_slow = slow[keyed]
    if with_slow > TARGET_SLOW_KEY * without:
        missed.append(f"{keyed}: a slow key slows other keys {with_slow / without:.2f}x")
    if mem[keyed] > TARGET_MEMORY * mem[CHAINED]:
        missed.append(f"{keyed}: {mem[keyed] / mem[CHAINED]:.2f}x the memory per queued task")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fast", type=int, default=10_000)
    parser.add_argument("--memory-tasks", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20k tasks, 3 runs")
    parser.add_argument("--check", action="store_true", help="exit 1 if the C core misses a target")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.memory_tasks, args.repeat = 20_000, 10_000, 3
    results = run(args.tasks, args.keys, args.workers, args.fast, args.memory_tasks, args.repeat)
    print("\n".join(report(results)))
    if args.check:
        if "c" not in cores:
            print("--check needs the C core (build it: python setup.py build_ext --inplace)")
            return 1
        missed = missed_targets(results)
        for line in missed:
            print("MISSED:", line)
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
