"""The floor under a pool of tiny tasks on a free-threaded build, in pure
Python: what handing tasks to W other threads costs with the GIL off
against the same build with it on, with no pool, engine lock or future.

The bare hand-off: the producer makes a small slotted object per task (the
function and its arguments), puts it on a ``queue.SimpleQueue`` (C, no
Python frame) and keeps it in a list; W consumer threads block in
``get()``, call the function, store the result, let go of the function
and arguments (as a pool must: a finished task keeps nothing alive) and set
a done flag, which the producer then polls task by task (the ``result()``
loop). The same rounds run ``conexe.ConcurrentExecutor(W)``, and, for one
worker, each side of its hand-off alone (the submits while the worker is
held up; the worker running what they queued); rows take turns round by
round, medians after warm-up rounds.

    python benchmarks/bench_floor_pyhandoff.py                # this interpreter
    python benchmarks/bench_floor_pyhandoff.py --compare-gil  # GIL off, then PYTHON_GIL=1

With ``--compare-gil`` (a free-threaded build) the rows run twice, in this
process with the GIL off and in a child with ``PYTHON_GIL=1``, and the
table shows GIL off / GIL on per row: read conexe's ratio against the bare
hand-off's (docs/freethreading.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue

WORKERS = (1, 2, 4, 16)


def noop() -> None:
    return None


class Task:
    """One task of the bare hand-off."""

    __slots__ = ("args", "done", "fn", "result")

    def __init__(self, fn: Callable[[], object], args: tuple[object, ...]) -> None:
        self.fn = fn
        self.args = args
        self.result: object = None
        self.done = False


class BareHandOff:
    """A SimpleQueue and W consumer threads: the least a pool can do. The
    threads live for one round (started before the clock starts)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @staticmethod
    def _consume(queue: SimpleQueue[Task | None]) -> None:
        get = queue.get
        while (task := get()) is not None:
            task.result = task.fn(*task.args)
            task.fn = task.args = None  # type: ignore[assignment]
            task.done = True

    def round(self, n: int) -> float:
        queue: SimpleQueue[Task | None] = SimpleQueue()
        consumers = [
            threading.Thread(target=self._consume, args=(queue,)) for _ in range(self.workers)
        ]
        for consumer in consumers:
            consumer.start()
        start = time.perf_counter()
        tasks = []
        put, keep = queue.put, tasks.append
        for _ in range(n):
            task = Task(noop, ())
            put(task)
            keep(task)
        for task in tasks:
            while not task.done:
                pass
        rate = n / (time.perf_counter() - start)
        for _ in consumers:
            queue.put(None)
        for consumer in consumers:
            consumer.join()
        return rate

    def close(self) -> None:
        pass


class PoolRound:
    """``n`` no-op tasks submitted, then ``result()`` on each."""

    def __init__(self, executor: cf.Executor) -> None:
        self.executor = executor

    def round(self, n: int) -> float:
        start = time.perf_counter()
        futures = [self.executor.submit(noop) for _ in range(n)]
        for future in futures:
            future.result()
        return n / (time.perf_counter() - start)

    def close(self) -> None:
        self.executor.shutdown()


class OneSide:
    """One side of conexe's hand-off at a time: ``n`` submits while the
    worker waits on a gate (``side="submit"``), or, those queued, the
    worker running them once the gate opens (``side="run"``)."""

    def __init__(self, executor: cf.Executor, side: str) -> None:
        self.executor, self.side = executor, side

    def round(self, n: int) -> float:
        gate = threading.Event()
        held = self.executor.submit(gate.wait)
        while not held.running():
            time.sleep(0.001)
        start = time.perf_counter()
        futures = [self.executor.submit(noop) for _ in range(n)]
        queued = time.perf_counter()
        gate.set()
        futures[-1].result()
        done = time.perf_counter()
        return n / (queued - start if self.side == "submit" else done - queued)

    def close(self) -> None:
        self.executor.shutdown()


def measure(tasks: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median tasks/s of every row, rows taking turns round by round."""
    import conexe

    subjects: dict[str, BareHandOff | PoolRound | OneSide] = {}
    for w in WORKERS:
        subjects[f"bare hand-off, {w} consumer{'s' if w > 1 else ''}"] = BareHandOff(w)
        subjects[f"conexe ConcurrentExecutor({w}), result() loop"] = PoolRound(
            conexe.ConcurrentExecutor(w)
        )
    subjects["conexe(1), its submits alone"] = OneSide(conexe.ConcurrentExecutor(1), "submit")
    subjects["conexe(1), its worker alone"] = OneSide(conexe.ConcurrentExecutor(1), "run")
    rates: dict[str, list[float]] = {row: [] for row in subjects}
    try:
        for i in range(warmup + rounds):
            for row, subject in subjects.items():
                rate = subject.round(tasks)
                if i >= warmup:
                    rates[row].append(rate)
    finally:
        for subject in subjects.values():
            subject.close()
    return {row: statistics.median(got) for row, got in rates.items()}


def gil_enabled() -> bool:
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000, help="tasks a round")
    parser.add_argument("--rounds", type=int, default=12, help="measured rounds a row")
    parser.add_argument("--warmup", type=int, default=3, help="rounds a row first, not counted")
    parser.add_argument(
        "--compare-gil",
        action="store_true",
        help="also run with PYTHON_GIL=1 in a child (free-threaded builds)",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare_gil and gil_enabled():
        sys.exit("--compare-gil needs a free-threaded build running with the GIL off")
    here = measure(args.tasks, args.rounds, args.warmup)
    if args.json:
        print(json.dumps(here))
        return
    columns = {("GIL on" if gil_enabled() else "GIL off"): here}
    if args.compare_gil:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--json",
                "--tasks",
                str(args.tasks),
                "--rounds",
                str(args.rounds),
                "--warmup",
                str(args.warmup),
            ],
            env=dict(os.environ, PYTHON_GIL="1"),
            check=True,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        columns["GIL on"] = json.loads(child.stdout)
    print(
        f"{platform.python_implementation()} {platform.python_version()}"
        f"{' (free-threaded)' if hasattr(sys, '_is_gil_enabled') else ''}, "
        f"{os.cpu_count()} CPUs; {args.tasks:,} no-op tasks a round, "
        f"median of {args.rounds} rounds after {args.warmup}"
    )
    names = list(columns)
    header = f"{'row':<46}" + "".join(f"{name:>14}" for name in names)
    if len(names) == 2:
        header += f"{'off / on':>10}"
    print(header)
    for row in columns[names[0]]:
        line = f"{row:<46}" + "".join(f"{columns[n][row]:>12,.0f}/s" for n in names)
        if len(names) == 2:
            line += f"{columns['GIL off'][row] / columns['GIL on'][row]:>9.2f}x"
        print(line)


if __name__ == "__main__":
    main()
