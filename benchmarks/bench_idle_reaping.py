"""Idle reaping (``idle_timeout=``): what it costs and what it saves.

1. The first task after the pool was reaped to zero threads, against the
   same task on a warm pool and on a fresh ThreadPoolExecutor (whose first
   submit also starts a thread): submit to result, median of ``--rounds``.
2. Live worker threads over a bursty run: bursts of tiny tasks with quiet
   spells between them, sampled every 10 ms, with and without reaping.

    python benchmarks/bench_idle_reaping.py [--rounds 30] [--workers 8]

Numbers vary with the machine; the ratios and the thread counts are the
point. Raw output for docs: benchmarks/results/*-idle-reaping.txt.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import threading
import time

import conexe


def first_task_us(make: object, rounds: int, reap_wait: float | None) -> float:
    """Median microseconds from submit to result of one no-op task: on a
    pool reaped to zero (reap_wait: how long to let it idle), or, with
    reap_wait None, on a fresh pool each round."""
    times = []
    for _ in range(rounds):
        ex = make()  # type: ignore[operator]
        if reap_wait is not None:
            ex.submit(int).result()
            give_up = time.monotonic() + 10
            while ex.stats().workers and time.monotonic() < give_up:
                time.sleep(reap_wait)
            assert ex.stats().workers == 0, "not reaped"
        t0 = time.perf_counter()
        ex.submit(int).result()
        times.append(time.perf_counter() - t0)
        ex.shutdown()
    return statistics.median(times) * 1e6


def warm_task_us(rounds: int) -> float:
    with conexe.ConcurrentExecutor(1) as ex:
        ex.submit(int).result()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            ex.submit(int).result()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def bursty(workers: int, idle_timeout: float | None) -> tuple[list[int], float]:
    """Live threads sampled over 4 bursts of 20,000 tiny tasks, 0.5 s apart;
    and the tasks/s over the bursts."""
    ex = conexe.ConcurrentExecutor(workers, idle_timeout=idle_timeout)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(len(ex._threads))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    busy = 0.0
    for _ in range(4):
        t0 = time.perf_counter()
        cf.wait([ex.submit(int) for _ in range(20_000)])
        busy += time.perf_counter() - t0
        time.sleep(0.5)
    stop.set()
    sampler.join()
    ex.shutdown()
    return samples, 80_000 / busy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    print(f"conexe {conexe.__version__} ({conexe.IMPLEMENTATION} core)")
    print("one no-op task, submit to result (median of", args.rounds, "rounds):")
    warm = warm_task_us(args.rounds)
    reaped = first_task_us(
        lambda: conexe.ConcurrentExecutor(4, idle_timeout=0.01), args.rounds, 0.005
    )
    fresh_tpe = first_task_us(lambda: cf.ThreadPoolExecutor(4), args.rounds, None)
    print(f"  warm conexe pool                 {warm:8.1f} us")
    print(f"  conexe pool reaped to 0 threads  {reaped:8.1f} us  (starts a thread)")
    print(f"  fresh ThreadPoolExecutor         {fresh_tpe:8.1f} us  (starts a thread)")
    print(f"live threads over 4 bursts of 20,000 tasks, 0.5 s apart, {args.workers} workers:")
    for timeout in (None, 0.1):
        samples, rate = bursty(args.workers, timeout)
        idle_end = samples[-20:]
        mean = statistics.mean(samples)
        print(
            f"  idle_timeout={timeout!s:5}  max {max(samples)}, mean {mean:.1f}, "
            f"in the quiet spells at the end {min(idle_end)}-{max(idle_end)}; "
            f"{rate:,.0f} tasks/s in the bursts"
        )


if __name__ == "__main__":
    main()
