"""What running each task in its own contextvars context costs, in the
no-op result() loop: 50,000 submits, then every result, on 4 workers.

    python benchmarks/bench_task_context.py [copy|fresh] [nogc]

Prints the median of 7 runs and each run. ``copy``/``fresh`` set the
executor's ``context=``; nothing: its default (an older conexe, one without
the option, runs tasks in the worker's own context). ``nogc`` turns the
cyclic GC off for the run, to see its share.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Any

import conexe


def noop() -> None:
    pass


def run(ex: Any, n: int = 50_000) -> float:
    started = time.perf_counter()
    futures = [ex.submit(noop) for _ in range(n)]
    for f in futures:
        f.result()
    return n / (time.perf_counter() - started)


def main(args: list[str]) -> None:
    if "nogc" in args:
        gc.disable()
    modes = [a for a in args if a in ("copy", "fresh")]
    options = {"context": modes[0]} if modes else {}
    with conexe.ConcurrentExecutor(4, **options) as ex:
        run(ex, 5_000)  # warm the workers
        rates = [run(ex) for _ in range(7)]
    label = " ".join(args) or "default"
    print(f"{label}: {statistics.median(rates):,.0f}/s", [f"{r / 1000:.0f}k" for r in rates])


if __name__ == "__main__":
    main(sys.argv[1:])
