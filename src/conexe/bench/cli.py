"""``python -m conexe bench``: conexe against ``ThreadPoolExecutor``, in one process.

Each scenario is a kind of work (no-op tasks, 1 ms sleeps, keyed tasks, a
Runner's tasks, ...) run once per way of waiting for it (a ``result()``
loop, ``map``, ``concurrent.futures.wait``, ``as_completed``, a
FIRST_COMPLETED loop, done-callbacks, asyncio), on ThreadPoolExecutor
("TPE") and on conexe bound to each available core ("c", the Cython
extension; "py", its pure-Python twin). Implementations take turns repeat
by repeat, so machine noise hits them alike; the table shows medians and
each core's ratio to TPE. Pools are warmed first: thread start-up is never
timed.

    $ python -m conexe bench                   # a representative set, ~2 minutes
    $ python -m conexe bench --all --json b.json   # every row, every core
    $ python -m conexe bench --quick --only noop,sleep

By default it runs one row per way of waiting on no-op tasks, the round
trip, each API once and the memory per queued task, on TPE and the core
``import conexe`` loads, 3 repeats: a newcomer's answer in about two
minutes on two cores. ``--all`` runs every row on every core, 5 repeats;
``--only``, ``--idiom`` and ``--impl`` pick from every row.

The targets the project holds itself to are in ``benchmarks/README.md`` and
checked by ``benchmarks/check_targets.py`` against a ``--json`` run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .. import IMPLEMENTATION
from .idioms import IDIOMS, NOT_ACCEPTED, NotAccepted
from .subjects import (
    REFERENCE,
    SLEEP_S,
    Factory,
    executor_factories,
    noop,
    open_subject,
    warm,
)

__all__ = [
    "Factory",
    "Row",
    "executor_factories",
    "main",
    "memory_per_task",
    "round_trip_p50",
    "rows",
    "warm",
]

_noop = noop


# -- memory ----------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_task(factory: Factory, n: int, how: str = "tracemalloc") -> float:
    """(g): bytes per queued no-op task whose future the caller holds.

    One worker is blocked on an Event, ``n`` tasks queue behind it, and the
    growth is measured with ``tracemalloc`` (Python allocations) or as the
    process's RSS growth (``how="rss"``: everything, C mallocs included;
    run it in a fresh interpreter, see :func:`rss_per_task_fresh`, or memory
    freed by earlier work is reused and hides the growth). The list holding
    the futures exists before measuring, so only the tasks are counted. The
    queued tasks are then cancelled, not run.

        >>> memory_per_task(executor_factories()["py"], 1000) > 0
        True
    """
    if how not in ("tracemalloc", "rss"):
        raise ValueError(f"how must be 'tracemalloc' or 'rss', got {how!r}")
    held: list[Any] = [None] * n
    gate, started = threading.Event(), threading.Event()

    def blocker() -> None:
        started.set()
        gate.wait()

    ex = factory(1)
    try:
        ex.submit(blocker)
        started.wait()
        submit = ex.submit
        gc.collect()
        if how == "tracemalloc":
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
        else:
            before = _rss_bytes()
        for i in range(n):
            held[i] = submit(noop)
        if how == "tracemalloc":
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        else:
            after = _rss_bytes()
    finally:
        ex.shutdown(wait=False, cancel_futures=True)
        gate.set()
        ex.shutdown(wait=True)
    del held
    return (after - before) / n


def rss_per_task_fresh(impl: str, n: int) -> float:
    """``memory_per_task(.., how="rss")`` for ``impl`` ("TPE", "c", "py") in a
    fresh interpreter, where RSS growth is not hidden by reused memory."""
    code = (
        "import sys; from conexe.bench.cli import executor_factories, memory_per_task; "
        "print(memory_per_task(executor_factories()[sys.argv[1]], int(sys.argv[2]), 'rss'))"
    )
    env = dict(os.environ)
    # The child must import this very conexe, wherever it was loaded from.
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", code, impl, str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the RSS measurement for {impl} failed:\n{proc.stderr}")
    return float(proc.stdout.strip().splitlines()[-1])


# -- what each row measures -----------------------------------------------------------
def throughput(impl: str, kind: str, workers: int, idiom: str, n: int) -> float:
    """Tasks per second of ``n`` tasks of ``kind`` waited on by ``idiom``."""
    with open_subject(impl, kind, workers) as subject:
        gc.collect()
        return n / IDIOMS[idiom].run(subject, n)


def sleep_efficiency(impl: str, idiom: str, n: int, real_sleep: float, workers: int = 64) -> float:
    """``n`` x ``time.sleep(1 ms)`` on ``workers`` warm workers, as a percent
    of the ideal ``n * real_sleep / workers`` (``real_sleep``: what one
    sleep really takes here)."""
    # ideal / elapsed = (n * real_sleep / workers) / (n / tasks_per_s)
    return 100.0 * real_sleep / workers * throughput(impl, "sleep", workers, idiom, n)


def round_trip_p50(factory: Factory, n: int, idle_gap: float = 0.0, workers: int = 4) -> float:
    """Median microseconds of ``submit(noop).result()``: back to back, or
    with ``idle_gap`` seconds before each (the workers have parked)."""
    with factory(workers) as ex:
        warm(ex, workers)
        submit, clock = ex.submit, time.perf_counter_ns
        for _ in range(min(50, n)):
            submit(noop).result()
        samples = []
        for _ in range(n):
            if idle_gap:
                time.sleep(idle_gap)
            t0 = clock()
            submit(noop).result()
            samples.append(clock() - t0)
    return statistics.median(samples) / 1000.0


def sleep_real(sleep: float = SLEEP_S, n: int = 200) -> float:
    """What ``time.sleep(sleep)`` really takes here, in seconds (median)."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        time.sleep(sleep)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


# -- the rows ------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the table: a scenario waited on one way.

    ``measure(impl)`` returns the figure, or None where the implementation
    can't be used that way."""

    scenario: str
    title: str
    how: str
    unit: str
    measure: Callable[[str], float | None]
    max_repeat: int = 0  # >0: a deterministic figure (memory) needs no more
    raw: dict[str, list[float | None]] = field(default_factory=dict)


EXECUTOR_IDIOMS = list(IDIOMS)
FUTURE_IDIOMS = [k for k, i in IDIOMS.items() if not i.needs_executor and k != "wrap_future"]

SCENARIOS = {
    "noop": "no-op tasks, 4 workers",
    "noop-32": "no-op tasks, 32 workers",
    "round-trip": "one submit(noop).result() at a time, 4 workers",
    "sleep": "time.sleep(1 ms) tasks, 64 workers, % of the ideal from the real sleep",
    "keyed": "KeyedExecutor: no-op tasks over 64 keys, 4 workers",
    "runner": "Runner: no-op tasks using the worker's resource, 4 workers",
    "memory": "queued no-op tasks, futures held: bytes per task (tracemalloc)",
    "memory-rss": "the same, as RSS growth in a fresh process",
}


def sizes(quick: bool) -> dict[str, int]:
    """Task counts: full size, or about a tenth with ``quick``."""
    k = 10 if quick else 1
    return {
        "tasks": 50_000 // k,
        "rtts": 2000 // k,
        "mem": 200_000 // k,
        "sleeps": 640 if quick else 4000,
    }


def _throughput_of(impl: str, *, kind: str, workers: int, idiom: str, n: int) -> float:
    return throughput(impl, kind, workers, idiom, n)


def _round_trip_of(impl: str, *, factories: dict[str, Factory], n: int, idle_gap: float) -> float:
    return round_trip_p50(factories[impl], n, idle_gap)


def _throughput_rows(key: str, kind: str, workers: int, n: int, idioms: list[str]) -> list[Row]:
    return [
        Row(
            key,
            f"{n:,} {SCENARIOS[key]}",
            IDIOMS[i].title,
            "tasks/s",
            partial(_throughput_of, kind=kind, workers=workers, idiom=i, n=n),
        )
        for i in idioms
    ]


def rows(quick: bool, real_sleep: float) -> list[Row]:
    """Every row, at full size or (``quick``) scaled down for a smoke run."""
    size = sizes(quick)
    n, rtts, mem, sleeps = size["tasks"], size["rtts"], size["mem"], size["sleeps"]
    factories = executor_factories()
    out = _throughput_rows("noop", "noop", 4, n, EXECUTOR_IDIOMS)
    out += _throughput_rows("noop-32", "noop", 32, n, EXECUTOR_IDIOMS)
    for how, gap in (("back to back", 0.0), ("after a 100 us pause (workers parked)", 1e-4)):
        out.append(
            Row(
                "round-trip",
                SCENARIOS["round-trip"],
                how,
                "us p50",
                partial(_round_trip_of, factories=factories, n=rtts, idle_gap=gap),
            )
        )
    out += [
        Row(
            "sleep",
            f"{sleeps:,} x {SCENARIOS['sleep']}",
            IDIOMS[i].title,
            "% ideal",
            partial(sleep_efficiency, idiom=i, n=sleeps, real_sleep=real_sleep),
        )
        for i in EXECUTOR_IDIOMS
    ]
    out += _throughput_rows("keyed", "keyed", 4, n, FUTURE_IDIOMS)
    out += _throughput_rows("runner", "runner", 4, n, FUTURE_IDIOMS)
    out.append(
        Row(
            "memory",
            f"{mem:,} {SCENARIOS['memory']}",
            "(futures held)",
            "B/task",
            lambda impl: memory_per_task(factories[impl], mem),
            max_repeat=2,
        )
    )
    out.append(
        Row(
            "memory-rss",
            f"{mem:,} {SCENARIOS['memory-rss']}",
            "(futures held)",
            "B/task",
            lambda impl: rss_per_task_fresh(impl, mem),
            max_repeat=2,
        )
    )
    return out


# The default run: one row of each kind, so that a first run answers in
# about two minutes on two cores (the whole table takes about fifteen).
REPRESENTATIVE = {("noop", i.title) for i in IDIOMS.values()} | {
    ("round-trip", "back to back"),
    ("keyed", IDIOMS["result"].title),
    ("runner", IDIOMS["result"].title),
    ("memory", "(futures held)"),
}


def representative(every: list[Row]) -> list[Row]:
    """The rows of the default run (REPRESENTATIVE), in the table's order."""
    return [r for r in every if (r.scenario, r.how) in REPRESENTATIVE]


def measure_once(row: Row, impl: str) -> float | None:
    try:
        return row.measure(impl)
    except NotAccepted:
        return None


def run(
    selected: list[Row],
    impls: Sequence[str],
    repeat: int,
    out: Callable[[str], None],
    started: Callable[[str], None] | None = None,
) -> None:
    """Measure each row ``repeat`` times per implementation, interleaved.
    Each finished row is reported to ``out`` with the count of rows done
    and the time so far; ``started`` (a terminal's status line) hears of
    each row as it starts."""
    t_start = time.perf_counter()
    total = len(selected)
    for i, row in enumerate(selected, 1):
        t0 = time.perf_counter()
        what = f"{row.scenario}: {row.how}"
        if started is not None:
            started(f"  [{i}/{total} {_clock(t0 - t_start)}] {what} ...")
        for _ in range(min(repeat, row.max_repeat or repeat)):
            for impl in impls:
                row.raw.setdefault(impl, []).append(measure_once(row, impl))
        now = time.perf_counter()
        out(f"  [{i}/{total} {_clock(now - t_start)}] {what} ({now - t0:.1f} s)")


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def medians(row: Row) -> dict[str, float | None]:
    return {
        impl: None if any(v is None for v in vals) else statistics.median(vals)  # type: ignore[type-var]
        for impl, vals in row.raw.items()
    }


def ratios(row: Row) -> dict[str, float | None]:
    """Each core's median over TPE's (the same direction as the unit:
    for us and bytes lower is better, for the rest higher)."""
    med = medians(row)
    ref = med.get(REFERENCE)
    return {
        impl: None if m is None or not ref else m / ref
        for impl, m in med.items()
        if impl != REFERENCE
    }


# -- the output ------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """CPU, cores, Python and its GIL, load: what the numbers came from."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model
            )
    except OSError:
        pass
    from .. import __version__
    from .._impl import cores

    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "gil": "free-threaded" + ("" if not gil else ", GIL enabled") if free_threaded else "GIL",
        "platform": platform.platform(),
        "conexe": __version__,
        "cores": sorted(cores),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return NOT_ACCEPTED
    if unit == "tasks/s":
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def render(selected: list[Row], impls: Sequence[str]) -> str:
    """The table: each scenario's title (and unit) on a line of its own,
    then a row per way of waiting, so that it fits 100 columns (84 with
    one core, 99 with both)."""
    cores = [n for n in impls if n != REFERENCE]
    head = ["how the caller waits", REFERENCE, *cores, *(f"{n}/TPE" for n in cores)]
    body: list[str | list[str]] = []
    last = None
    for row in selected:
        if (row.title, row.unit) != last:
            body.append(f"{row.title} ({row.unit})")
            last = (row.title, row.unit)
        med, rat = medians(row), ratios(row)
        body.append(
            ["  " + row.how]
            + [_fmt(med.get(n), row.unit) for n in impls]
            + ["" if rat.get(n) is None else f"{rat[n]:.2f}x" for n in cores]
        )
    cells = [head] + [r for r in body if isinstance(r, list)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    lines = [line(head), "  ".join("-" * w for w in widths)]
    lines += [r if isinstance(r, str) else line(r) for r in body]
    return "\n".join(lines)


def to_json(selected: list[Row], info: dict[str, Any], repeat: int, quick: bool) -> dict[str, Any]:
    return {
        "machine": info,
        "repeat": repeat,
        "quick": quick,
        "rows": [
            {
                "scenario": r.scenario,
                "title": r.title,
                "how": r.how,
                "unit": r.unit,
                "raw": r.raw,
                "median": medians(r),
                "ratio": ratios(r),
            }
            for r in selected
        ],
    }


def header(info: dict[str, Any], impls: Sequence[str], repeat: int, real_sleep: float) -> str:
    return "\n".join(
        [
            f"conexe {info['conexe']} bench on {info['cpu_model']}, {info['cpus']} CPUs "
            f"({info['usable_cpus']} usable), {info['python']} ({info['gil']}), "
            f"load {info['loadavg']}",
            f"implementations: {', '.join(impls)}; figures are medians of {repeat} runs; "
            f"thread start-up is excluded (pools are warmed first)",
            f"time.sleep(1 ms) really takes {real_sleep * 1000:.3f} ms here: the sleep rows' "
            f"ideal is n x that / 64",
        ]
    )


# -- the command --------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m conexe bench",
        description="conexe (each core) against concurrent.futures.ThreadPoolExecutor, "
        "every way of waiting, side by side in one process.",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="every row on every core (about 15 minutes on 2 cores) instead of the "
        "representative set (about 2)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per row and implementation; medians are shown (default 3; 5 with --all)",
    )
    p.add_argument("--quick", action="store_true", help="about a tenth of the tasks: a smoke run")
    p.add_argument(
        "--only", default="", help=f"comma-separated scenarios (all: {','.join(SCENARIOS)})"
    )
    p.add_argument(
        "--idiom", default="", help=f"comma-separated ways of waiting (all: {','.join(IDIOMS)})"
    )
    p.add_argument(
        "--impl",
        default="",
        help="comma-separated implementations besides TPE, e.g. c (default: all)",
    )
    p.add_argument("--json", metavar="PATH", help="also write every raw number to PATH")
    p.add_argument(
        "--scaling",
        action="store_true",
        help="run the worker-scaling scenarios instead (1..CPUs workers, GIL on/off)",
    )
    p.add_argument(
        "--plot", metavar="PNG", help="run the scaling scenarios and draw them to PNG (extra: plot)"
    )
    return p


def _pick(p: argparse.ArgumentParser, arg: str, valid: Sequence[str], what: str) -> list[str]:
    keys = [k.strip() for k in arg.split(",") if k.strip()]
    unknown = [k for k in keys if k not in valid]
    if unknown:
        p.error(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(valid)}")
    return keys or list(valid)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m conexe bench``; returns the exit status."""
    p = parser()
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.scaling or args.plot:  # conexe.bench.scaling: workers 1..cores, GIL on and off
        from .scaling import run_session

        return run_session(
            quick=args.quick, repeat=args.repeat or 3, json_path=args.json, plot_path=args.plot
        )
    # With no choice made, the representative set on the core `import conexe` loads.
    default_run = not (args.all or args.only or args.idiom or args.impl)
    repeat = args.repeat if args.repeat is not None else (5 if args.all and not args.quick else 3)
    if repeat < 1:
        p.error(f"--repeat must be >= 1, got {repeat}")
    scenarios = _pick(p, args.only, list(SCENARIOS), "scenario(s)")
    idioms = _pick(p, args.idiom, list(IDIOMS), "way(s) of waiting")
    available = [n for n in executor_factories() if n != REFERENCE]
    if default_run:
        impls = [REFERENCE, IMPLEMENTATION]
    else:
        impls = [REFERENCE, *_pick(p, args.impl, available, "implementation(s)")]
    real_sleep = sleep_real()
    every = rows(args.quick, real_sleep)
    selected = (
        representative(every)
        if default_run
        else [
            r
            for r in every
            if r.scenario in scenarios
            and (r.unit != "tasks/s" and r.unit != "% ideal" or _idiom_of(r) in idioms)
        ]
    )
    info = machine()
    print(header(info, impls, repeat, real_sleep), flush=True)
    if default_run:
        print(
            f"the representative set: {len(selected)} rows, about 2 minutes on 2 cores "
            "(--all: every row on every core)",
            flush=True,
        )
    status = _StatusLine(sys.stdout) if sys.stdout.isatty() else None
    run(
        selected,
        impls,
        repeat,
        (lambda line: print(line, flush=True)) if status is None else status.done,
        None if status is None else status.show,
    )
    print("\n" + render(selected, impls))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(selected, info, repeat, args.quick), f, indent=2)
        print(f"raw numbers written to {args.json}")
    return 0


class _StatusLine:
    """On a terminal: the row being measured on a line that the next
    report overwrites, so a long row shows what it is doing."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def show(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def done(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text + "\n")
        self.stream.flush()


def _idiom_of(row: Row) -> str:
    return next(k for k, i in IDIOMS.items() if i.title == row.how)
