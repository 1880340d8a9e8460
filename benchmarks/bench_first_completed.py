"""Where a ``wait(FIRST_COMPLETED)`` refill loop's time goes on sleep tasks.

4,000 ``time.sleep(1 ms)`` tasks on 64 workers, 256 in flight, as in
``python -m conexe bench``'s sleep row; prints, per run, the share of the
ideal, how many ``wait()`` calls it made, how many futures each returned,
and the caller's own CPU time (the GIL it holds while the workers wait)::

    $ python benchmarks/bench_first_completed.py --impl c
    c: 70.8 % of the ideal, 94.7 ms, 329 waits, 12.2 done per wait, caller CPU 42 ms
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import time

import conexe

TASKS, WORKERS, IN_FLIGHT, SLEEP_S = 4000, 64, 256, 0.001


def real_sleep() -> float:
    samples = []
    for _ in range(200):
        t0 = time.perf_counter()
        time.sleep(SLEEP_S)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def refill_loop(ex: cf.Executor, slept: float, label: str) -> None:
    waits = done_total = 0
    cpu0, t0 = time.thread_time(), time.perf_counter()
    pending = {ex.submit(time.sleep, SLEEP_S) for _ in range(IN_FLIGHT)}
    left = TASKS - IN_FLIGHT
    while pending:
        done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        waits += 1
        done_total += len(done)
        for f in done:
            f.result()
            if left:
                left -= 1
                pending.add(ex.submit(time.sleep, SLEEP_S))
    elapsed, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    ideal = TASKS * slept / WORKERS
    print(
        f"{label}: {100 * ideal / elapsed:.1f} % of the ideal, {elapsed * 1e3:.1f} ms, "
        f"{waits} waits, {done_total / waits:.1f} done per wait, caller CPU {cpu * 1e3:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["c", "tpe"], default="c")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    slept = real_sleep()
    make = conexe.ConcurrentExecutor if args.impl == "c" else cf.ThreadPoolExecutor
    with make(WORKERS) as ex:
        for f in [ex.submit(time.sleep, SLEEP_S) for _ in range(10 * WORKERS)]:
            f.result()  # every worker started
        for _ in range(args.repeat):
            refill_loop(ex, slept, args.impl)


if __name__ == "__main__":
    main()
