"""``asyncio.to_thread`` throughput: conexe as the loop's default executor
against asyncio's own default, a ``concurrent.futures.ThreadPoolExecutor``.

    python benchmarks/bench_to_thread.py                 # 20k calls, 5 repeats
    python benchmarks/bench_to_thread.py --calls 5000 --repeat 3
    python benchmarks/bench_to_thread.py --calls 50000 --batch 50000 --gc off

Each repeat runs ``calls`` no-op ``asyncio.to_thread`` calls, ``batch`` of
them gathered at a time, on a fresh ``asyncio.run`` whose default executor
is installed with the one line a user writes
(``loop.set_default_executor(...)``); the executors take turns repeat by
repeat, so noise hits them alike. It prints calls/s (median of the repeats)
and the ratio to ThreadPoolExecutor measured in the same run. The executor's
shutdown (asyncio.run's) is outside the timed part. Each line also says how
many passes the cyclic GC made in the timed part and how long they took
(medians); ``--gc off`` disables the collector there, which shows what
asyncio and the executor cost without it.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import conexe
from conexe._impl import cores


def _noop() -> None:
    return None


class _AsyncioOnly(cf.ThreadPoolExecutor):
    """Runs each call in the loop thread at submit: asyncio's cost alone."""

    def __init__(self, max_workers: int) -> None:  # no threads at all
        pass

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(fn(*args, **kwargs))
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


class _GCClock:
    """Counts the cyclic GC's passes and their seconds (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.passes = 0
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes += 1
            self.seconds += time.perf_counter() - self._started


async def _run(
    make_executor: Callable[[], Any], calls: int, batch: int, collector: bool
) -> tuple[float, int, float]:
    """Calls per second, then the GC's passes and seconds, in the timed part."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(make_executor())
    await asyncio.to_thread(_noop)  # the first worker is started outside the timing
    gc.collect()
    clock = _GCClock()
    gc.callbacks.append(clock)
    if not collector:
        gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls // batch):
            await asyncio.gather(*(asyncio.to_thread(_noop) for _ in range(batch)))
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
        gc.callbacks.remove(clock)
    return calls / elapsed, clock.passes, clock.seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--gc", choices=("on", "off"), default="on")
    args = parser.parse_args(argv)

    def pool(cls: type) -> Callable[[], Any]:
        return lambda: cls(args.workers)

    contenders: dict[str, Callable[[], Any]] = {"TPE": pool(cf.ThreadPoolExecutor)}
    for name in sorted(cores):
        bound = type("ThreadPoolExecutor", (conexe.ThreadPoolExecutor,), {"_core": cores[name]})
        contenders[f"conexe-{name}"] = pool(bound)
    contenders["asyncio-only"] = pool(_AsyncioOnly)

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}; "
        f"{args.calls} to_thread calls in batches of {args.batch}, {args.workers} workers, "
        f"cyclic GC {args.gc}"
    )
    runs: dict[str, list[tuple[float, int, float]]] = {name: [] for name in contenders}
    for _ in range(args.repeat):
        for name, make in contenders.items():
            runs[name].append(asyncio.run(_run(make, args.calls, args.batch, args.gc == "on")))
    base = statistics.median(rate for rate, _, _ in runs["TPE"])
    for name, got in runs.items():
        rates = [rate for rate, _, _ in got]
        med = statistics.median(rates)
        passes = statistics.median(p for _, p, _ in got)
        gc_s = statistics.median(t for _, _, t in got)
        print(
            f"{name:12} {med:>10,.0f} calls/s  x{med / base:5.2f} TPE  "
            f"(range {min(rates):,.0f}-{max(rates):,.0f}); GC {passes:g} passes, {gc_s:.3f} s"
        )


if __name__ == "__main__":
    main()
