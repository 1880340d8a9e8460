"""What one positional argument costs a no-op task: ``submit(fn)`` against
``submit(fn, None)``, conexe and ``ThreadPoolExecutor`` (TPE), alternated in
one process.

    python benchmarks/bench_submit_args.py            # 4 workers, 50,000 tasks
    python benchmarks/bench_submit_args.py --workers 16

On a GIL build the two are close. With the GIL off, each ``submit(fn, arg)``
makes an argument tuple in the submitting thread that a worker drops last;
free-threaded CPython's biased reference counting then queues the free to the
thread that made it. ``python -m conexe bench`` submits with an argument, the
scaling bench (``--scaling``) without one: read their rows with this in mind.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import sys
import time
from collections.abc import Callable

from conexe.bench.subjects import noop, warm


def rate(ex: cf.Executor, workers: int, with_arg: bool, n: int) -> float:
    """No-op tasks per second: ``n`` submitted, then ``result()`` on each."""
    warm(ex, workers)  # every worker started before the clock runs
    start = time.perf_counter()
    if with_arg:
        futures = [ex.submit(noop, None) for _ in range(n)]
    else:
        futures = [ex.submit(noop) for _ in range(n)]
    for f in futures:
        f.result()
    return n / (time.perf_counter() - start)


def main() -> None:
    import conexe

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    makers: dict[str, Callable[[int], cf.Executor]] = {
        "TPE": lambda n: cf.ThreadPoolExecutor(n),
        "conexe": lambda n: conexe.ConcurrentExecutor(n),
    }
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"CPython {sys.version.split()[0]}, GIL {'on' if gil else 'off'}, "
        f"{opts.workers} workers, {opts.tasks:,} tasks, {opts.rounds} rounds"
    )
    results: dict[tuple[str, bool], list[float]] = {}
    for _ in range(opts.rounds):
        for with_arg in (False, True):
            for name, make in makers.items():
                with make(opts.workers) as ex:
                    results.setdefault((name, with_arg), []).append(
                        rate(ex, opts.workers, with_arg, opts.tasks)
                    )
    for (name, with_arg), rates in results.items():
        how = "submit(fn, None)" if with_arg else "submit(fn)"
        print(
            f"{name:7} {how:17} median {statistics.median(rates):>10,.0f}/s  "
            f"runs {', '.join(f'{r:,.0f}' for r in rates)}"
        )


if __name__ == "__main__":
    main()
