"""What the caller's own thread pays per future once the tasks are done,
and the submit-then-wait throughput around it: the figures to compare two
builds of the core with (run it under each interpreter, alternating).

    python benchmarks/bench_wait_done.py              # 4 and 16 workers, 7 runs each
    python benchmarks/bench_wait_done.py --workers 4 --runs 3

Three figures, medians of the runs:

- ``cf.wait`` over 60,000 futures that are already done, in ns per future:
  the stdlib's own walk (a set, a sorted list, every ``_condition`` taken
  and released, every ``_state`` read) over conexe futures, with no task
  running meanwhile;
- 60,000 no-op tasks submitted, then ``concurrent.futures.wait(futures)``,
  in tasks/s;
- the same tasks, then ``for f in futures: f.result()``, in tasks/s.

On a free-threaded build, futures whose references were counted with atomic
operations (because a worker's drop of the producer's reference queued
them to it) show here first (docs/freethreading.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import sys
import time

from conexe import IMPLEMENTATION, ConcurrentExecutor

TASKS = 60_000


def _noop() -> None:
    return None


def wait_on_done_ns(tasks: int = TASKS, passes: int = 10) -> float:
    """ns per future of ``cf.wait`` over ``tasks`` futures already done."""
    with ConcurrentExecutor(max_workers=2) as ex:
        futures = [ex.submit(_noop) for _ in range(tasks)]
        for f in futures:
            f.result()
        cf.wait(futures)  # the first pass makes every future's _condition
        start = time.perf_counter()
        for _ in range(passes):
            cf.wait(futures)
        return (time.perf_counter() - start) / passes / tasks * 1e9


def tasks_per_second(workers: int, how: str, tasks: int = TASKS) -> float:
    """No-op tasks per second, submitted and then waited for ``how``
    (``"wait"``: ``cf.wait``; ``"result"``: a ``result()`` loop)."""
    with ConcurrentExecutor(max_workers=workers) as ex:
        for f in [ex.submit(time.sleep, 0.002) for _ in range(workers)]:
            f.result()  # every worker started before the clock runs
        start = time.perf_counter()
        futures = [ex.submit(_noop) for _ in range(tasks)]
        if how == "wait":
            cf.wait(futures)
        else:
            for f in futures:
                f.result()
        return tasks / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"CPython {sys.version.split()[0]}, GIL {'on' if gil else 'off'}, core {IMPLEMENTATION}")
    done = statistics.median(wait_on_done_ns() for _ in range(args.runs))
    print(f"cf.wait over {TASKS:,} done futures: {done:.0f} ns per future")
    for workers in args.workers:
        for how in ("wait", "result"):
            rate = statistics.median(tasks_per_second(workers, how) for _ in range(args.runs))
            print(f"{TASKS:,} no-op tasks, {workers} workers, then {how}: {rate:,.0f} tasks/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
