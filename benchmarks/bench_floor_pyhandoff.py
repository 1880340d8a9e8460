"""The floor under a one-worker pool of tiny tasks on a free-threaded build,
in pure Python: what handing a task to one other thread costs with the
GIL off against the same build with it on, with no pool, lock, future or
wake-up at all.

The bare hand-off: the producer makes a small slotted object per task
(the function and its arguments), appends it to a ``collections.deque``
and keeps it in a list; one consumer thread polls the deque, calls the
function, stores the result and sets a done flag, which the producer then
polls task by task (the ``result()`` loop). In one row the consumer lets
go of the function and arguments once it ran them, as a pool must (the
stdlib's and conexe's drop them then, so a finished task keeps nothing
alive); in the other the producer keeps them. The same rounds run
``conexe.ConcurrentExecutor(1)`` (and each side of its hand-off alone: the
submits while its worker is held up, then the worker running what they
queued) and ``ThreadPoolExecutor(1)``, rows taking turns round by round,
medians after warm-up rounds.

    python benchmarks/bench_floor_pyhandoff.py                # this interpreter
    python benchmarks/bench_floor_pyhandoff.py --compare-gil  # GIL off, then PYTHON_GIL=1

With ``--compare-gil`` (a free-threaded build) the rows run twice, in this
process with the GIL off and in a child with ``PYTHON_GIL=1``, and the
table shows GIL off / GIL on per row: read conexe's ratio against the bare
hand-off's (docs/freethreading.md).
"""

from __future__ import annotations

import argparse
import collections
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

ROWS = (
    "bare hand-off, the producer keeps the task",
    "bare hand-off, the consumer drops it",
    "conexe ConcurrentExecutor(1), result() loop",
    "  its submits alone (the worker held up)",
    "  its worker alone (the tasks queued first)",
    "ThreadPoolExecutor(1), result() loop",
)


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
    """A deque and one polling consumer thread: the least a pool can do.
    The thread lives for one round (started before the clock starts), so
    its polling takes no CPU from the other rows."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop

    def _consume(
        self, queue: collections.deque[Task], running: threading.Event, stop: list[bool]
    ) -> None:
        pop, drop = queue.popleft, self.drop
        running.set()
        while not stop:
            try:
                task = pop()
            except IndexError:
                continue
            task.result = task.fn(*task.args)
            if drop:
                task.fn = task.args = None  # type: ignore[assignment]
            task.done = True

    def round(self, n: int) -> float:
        queue: collections.deque[Task] = collections.deque()
        running, stop = threading.Event(), []
        consumer = threading.Thread(target=self._consume, args=(queue, running, stop))
        consumer.start()
        running.wait()
        start = time.perf_counter()
        tasks = []
        append, keep = queue.append, tasks.append
        for _ in range(n):
            task = Task(noop, ())
            append(task)
            keep(task)
        for task in tasks:
            while not task.done:
                pass
        rate = n / (time.perf_counter() - start)
        stop.append(True)
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

    subjects = [
        BareHandOff(drop=False),
        BareHandOff(drop=True),
        PoolRound(conexe.ConcurrentExecutor(1)),
        OneSide(conexe.ConcurrentExecutor(1), "submit"),
        OneSide(conexe.ConcurrentExecutor(1), "run"),
        PoolRound(cf.ThreadPoolExecutor(1)),
    ]
    rates: list[list[float]] = [[] for _ in subjects]
    try:
        for i in range(warmup + rounds):
            for subject, got in zip(subjects, rates, strict=True):
                rate = subject.round(tasks)
                if i >= warmup:
                    got.append(rate)
    finally:
        for subject in subjects:
            subject.close()
    return {row: statistics.median(got) for row, got in zip(ROWS, rates, strict=True)}


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
    for row in ROWS:
        line = f"{row:<46}" + "".join(f"{columns[n][row]:>12,.0f}/s" for n in names)
        if len(names) == 2:
            line += f"{columns['GIL off'][row] / columns['GIL on'][row]:>9.2f}x"
        print(line)


if __name__ == "__main__":
    main()
