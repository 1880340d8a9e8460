"""Soak one executor with many tasks and report its memory, as JSON.

Standalone (run in a fresh process, so nothing else's memory is counted)::

    PYTHONPATH=src python tests/leaks/soak.py --executor keyed --core c --tasks 1000000

Tasks go in batches of 1,000 (successes returning a fresh object, failures,
cancellations), each batch waited for and dropped. Round 0 warms up; the
resident set size (RSS) is read after every round, with a gc.collect()
first. Then, with tracemalloc on, a few smaller rounds measure the Python
heap traced after each. Prints one JSON object: ``rss`` (bytes per round),
``rss_growth`` (max after warm-up minus round 1), ``traced`` and
``traced_growth`` (last minus first traced round), ``tasks``, ``seconds``.
"""

from __future__ import annotations

import argparse
import array
import concurrent.futures as cf
import functools
import gc
import json
import os
import sys
import time
import tracemalloc
from typing import Any

import conexe
from conexe._impl import cores

BATCH = 1000


class Payload:
    __slots__ = ("data",)

    def __init__(self, i: int) -> None:
        self.data = [i] * 8


def task(i: int) -> Payload:
    if i % 10 == 3:
        raise ValueError(f"task {i} fails")
    return Payload(i)


def runner_task(i: int, resource: Any) -> Payload:
    return task(i)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make(kind: str, core: str) -> tuple[Any, Any, Any]:
    """(executor, submit(i) -> future, close())"""
    bind = {"_core": cores[core]}
    if kind == "concurrent":
        ex = type("ConcurrentExecutor", (conexe.ConcurrentExecutor,), bind)(4)
        return ex, lambda i: ex.submit(task, i), ex.shutdown
    if kind == "keyed":
        ex = type("KeyedExecutor", (conexe.KeyedExecutor,), bind)(4)
        return ex, lambda i: ex.submit(i % 100, task, i), ex.shutdown
    r = type("Runner", (conexe.Runner,), bind)(object, worker_count=4)
    return r, lambda i: r.submit(functools.partial(runner_task, i)), r.stop


def run_round(submit: Any, n: int, start: int) -> None:
    for b in range(start, start + n, BATCH):
        futs = [submit(i) for i in range(b, min(b + BATCH, start + n))]
        for f in futs[::10]:
            f.cancel()  # some are still queued: a mix of cancelled and run
        cf.wait(futs)
        for f in futs:
            if not f.cancelled():
                f.exception()  # read it, as a user would
        del futs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--executor", choices=("concurrent", "keyed", "runner"), required=True)
    p.add_argument("--core", choices=sorted(cores), required=True)
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--traced-tasks", type=int, default=20_000, help="per tracemalloc round")
    p.add_argument("--traced-rounds", type=int, default=5)
    args = p.parse_args()
    _, submit, close = make(args.executor, args.core)
    per = args.tasks // args.rounds
    t0 = time.monotonic()
    rss = []
    done = 0
    for _ in range(args.rounds + 1):  # +1: round 0 warms up
        run_round(submit, per, done)
        done += per
        gc.collect()
        rss.append(rss_bytes())
    tracemalloc.start()
    run_round(submit, args.traced_tasks, done)  # warm up under tracing
    # Preallocated, and not a list of ints: the measurements must not be
    # what grows between rounds.
    traced = array.array("q", bytes(8 * args.traced_rounds))
    for r in range(args.traced_rounds):
        done += args.traced_tasks
        run_round(submit, args.traced_tasks, done)
        gc.collect()
        traced[r] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    close()
    json.dump(
        {
            "executor": args.executor,
            "core": args.core,
            "tasks": done + args.traced_tasks,
            "seconds": round(time.monotonic() - t0, 1),
            "rss": rss,
            "rss_growth": max(rss[1:]) - rss[1],
            "traced": traced.tolist(),
            "traced_growth": traced[-1] - traced[0],
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
