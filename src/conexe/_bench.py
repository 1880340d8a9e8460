"""``python -m conexe bench``: conexe against ``ThreadPoolExecutor``, one process.

Runs each scenario of the project's benchmark targets on
``concurrent.futures.ThreadPoolExecutor`` ("TPE") and on ``ConcurrentExecutor``
bound to each available core ("c", the Cython extension, and "py", its
pure-Python twin), interleaved repeat by repeat so machine noise hits all of
them alike, and prints medians, the ratio that the target is about, and
whether it is met. Targets are reported, never enforced: the exit status is 0
unless a scenario crashes.

    $ python -m conexe bench --quick --only a,d
    $ python -m conexe bench --repeat 7 --json bench.json

The scenario functions (``noop_throughput``, ``map_throughput``, ...) take an
executor factory and are shared with the pytest-benchmark suites in
``benchmarks/``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Factory",
    "Scenario",
    "executor_factories",
    "main",
    "map_throughput",
    "memory_per_task",
    "noop_throughput",
    "round_trip_p50",
    "run_in_executor_throughput",
    "sleep_efficiency",
    "warm",
]

Factory = Callable[[int], cf.Executor]

# Implementations in table order; "TPE" is the reference every ratio divides by.
REFERENCE = "TPE"


def _noop(*_: object) -> None:
    return None


def executor_factories() -> dict[str, Factory]:
    """``{"TPE": ..., "c": ..., "py": ...}``: ``factory(max_workers)`` makes an
    executor; "c" is missing when the extension isn't built.

        >>> f = executor_factories()["py"]
        >>> with f(2) as ex:
        ...     ex.submit(abs, -3).result()
        3
    """
    from . import ConcurrentExecutor
    from ._impl import cores

    out: dict[str, Factory] = {REFERENCE: lambda n: cf.ThreadPoolExecutor(max_workers=n)}
    for name in ("c", "py"):
        if name in cores:
            # A subclass with its core swapped, exactly as the tests bind one.
            cls = type(ConcurrentExecutor.__name__, (ConcurrentExecutor,), {"_core": cores[name]})
            out[name] = cls
    return out


# -- helpers ---------------------------------------------------------------------
def warm(ex: cf.Executor, workers: int, timeout: float = 30.0) -> None:
    """Make ``ex`` start all ``workers`` threads before anything is timed.

    Both TPE and conexe start threads lazily; a barrier that only opens once
    ``workers`` tasks run at the same time forces every thread into being, so
    thread creation is never part of a measurement."""
    barrier = threading.Barrier(workers + 1)
    futs = [ex.submit(barrier.wait, timeout) for _ in range(workers)]
    barrier.wait(timeout)
    for f in futs:
        f.result()


def _drain(futs: Sequence[cf.Future[Any]]) -> None:
    for f in futs:
        f.result()


# -- the scenarios (one measurement each) --------------------------------------------
def noop_throughput(factory: Factory, n: int, workers: int) -> float:
    """(a)/(b): submit ``n`` no-op tasks, then wait for all. Tasks/s."""
    with factory(workers) as ex:
        warm(ex, workers)
        gc.collect()
        submit = ex.submit
        t0 = time.perf_counter()
        futs = [submit(_noop) for _ in range(n)]
        _drain(futs)
        elapsed = time.perf_counter() - t0
        del futs
    return n / elapsed


def map_throughput(factory: Factory, n: int, workers: int = 4) -> float:
    """(c): ``deque(ex.map(noop, range(n)), 0)``. Items/s."""
    with factory(workers) as ex:
        warm(ex, workers)
        gc.collect()
        t0 = time.perf_counter()
        deque(ex.map(_noop, range(n)), 0)
        elapsed = time.perf_counter() - t0
    return n / elapsed


def round_trip_p50(factory: Factory, n: int, workers: int = 4, idle_gap: float = 1e-4) -> float:
    """(d): median microseconds of ``submit(noop).result()`` on an idle pool.

    ``idle_gap`` seconds pass between round trips so every one starts with
    the workers parked (the idle case, not a warm back-to-back loop)."""
    with factory(workers) as ex:
        warm(ex, workers)
        submit, clock = ex.submit, time.perf_counter_ns
        for _ in range(min(50, n)):
            submit(_noop).result()
        samples = []
        for _ in range(n):
            time.sleep(idle_gap)
            t0 = clock()
            submit(_noop).result()
            samples.append(clock() - t0)
    return statistics.median(samples) / 1000.0


def sleep_efficiency(factory: Factory, n: int, workers: int = 64, sleep: float = 0.001) -> float:
    """(e): ``n`` tasks of ``time.sleep(sleep)`` on ``workers`` warm workers;
    percent of the ideal time ``n * sleep / workers`` (100 = perfect)."""
    with factory(workers) as ex:
        warm(ex, workers)
        gc.collect()
        t0 = time.perf_counter()
        futs = [ex.submit(time.sleep, sleep) for _ in range(n)]
        _drain(futs)
        elapsed = time.perf_counter() - t0
    return 100.0 * (n * sleep / workers) / elapsed


def sleep_overshoot(sleep: float = 0.001, n: int = 200) -> float:
    """What ``time.sleep(sleep)`` really takes here, in seconds (median):
    the OS's timer slack alone keeps (e) below 100 %."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        time.sleep(sleep)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def run_in_executor_throughput(factory: Factory, n: int, workers: int = 4) -> float:
    """(f): ``n`` x ``loop.run_in_executor(ex, noop)`` gathered. Tasks/s."""

    async def flood(ex: cf.Executor) -> float:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        await asyncio.gather(*[loop.run_in_executor(ex, _noop) for _ in range(n)])
        return time.perf_counter() - t0

    with factory(workers) as ex:
        if not isinstance(ex, _InlineExecutor):
            warm(ex, workers)
        gc.collect()
        elapsed = asyncio.run(flood(ex))
    return n / elapsed


class _InlineExecutor(cf.Executor):
    """Runs each task in the caller and returns it done: an executor that
    costs nothing but its future, for :func:`run_in_executor_floor`."""

    def __init__(self, future_type: type) -> None:
        self._future_type = future_type

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        fut = self._future_type()
        fut.set_running_or_notify_cancel()
        fut.set_result(fn(*args, **kwargs))
        return fut  # type: ignore[no-any-return]


def run_in_executor_floor(n: int, future_type: type) -> float:
    """(f) for scale: tasks/s of ``loop.run_in_executor`` over an executor that
    runs the task inline and returns a done ``future_type``. With a future
    asyncio doesn't recognise as its own (a plain one), what is left is
    asyncio's chaining (``wrap_future``, ``_chain_future``, one
    ``call_soon_threadsafe`` each): the ceiling for any executor whose
    futures take that path, which conexe's loop-bound futures avoid.

        >>> run_in_executor_floor(100, cf.Future) > 0
        True
    """
    return run_in_executor_throughput(lambda _: _InlineExecutor(future_type), n)


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
            held[i] = submit(_noop)
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
        "import sys; from conexe._bench import executor_factories, memory_per_task; "
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


# -- the table ---------------------------------------------------------------------
@dataclass
class Scenario:
    """One row: how to measure it, and how to judge it against its target.

    ``ratio(figures, impl)`` turns the medians into the number the target
    is about; ``ok(ratio)`` says whether the target is met."""

    key: str
    title: str
    unit: str
    target: str
    measure: Callable[[str, Factory], float]  # (implementation name, factory)
    ratio: Callable[[dict[str, float], str], float]
    ok: Callable[[float], bool]
    extra: Callable[[str, Factory], float] | None = None  # (b): the 4-worker figure
    max_repeat: int = 0  # >0: a deterministic figure (memory) needs no more repeats
    raw: dict[str, list[float]] = field(default_factory=dict)
    raw_extra: dict[str, list[float]] = field(default_factory=dict)


def _vs_tpe(figures: dict[str, float], impl: str) -> float:
    return figures[impl] / figures[REFERENCE]


def scenario_sizes(quick: bool) -> dict[str, int]:
    """Task counts: the issue's at full size, about a tenth with ``quick``."""
    k = 10 if quick else 1
    return {
        "tasks": 200_000 // k,  # (a), (b), (c)
        "rtts": 2000 // k,  # (d) round trips
        "aio": 20_000 // k,  # (f)
        "mem": 200_000 // k,  # (g)
        "sleeps": 640 if quick else 4000,  # (e); quick: 10 per worker, ideal 10 ms
    }


def scenarios(quick: bool) -> list[Scenario]:
    """The issue's targets, at full size or (``quick``) scaled for CI."""
    size = scenario_sizes(quick)
    tasks, rtts, aio, mem, sleeps = (
        size["tasks"],
        size["rtts"],
        size["aio"],
        size["mem"],
        size["sleeps"],
    )
    return [
        Scenario(
            "a",
            f"{tasks:,} no-ops, submit all then wait, 4 workers",
            "tasks/s",
            ">= 15x TPE",
            lambda _, f: noop_throughput(f, tasks, 4),
            _vs_tpe,
            lambda r: r >= 15,
        ),
        Scenario(
            "b",
            "as (a), 32 workers (ratio: vs own 4 workers)",
            "tasks/s",
            ">= 0.8x own (a)",
            lambda _, f: noop_throughput(f, tasks, 32),
            lambda fig, impl: fig[impl] / fig["extra:" + impl],
            lambda r: r >= 0.8,
            extra=lambda _, f: noop_throughput(f, tasks, 4),
        ),
        Scenario(
            "c",
            f"map over {tasks:,} items, 4 workers",
            "items/s",
            ">= 25x TPE",
            lambda _, f: map_throughput(f, tasks, 4),
            _vs_tpe,
            lambda r: r >= 25,
        ),
        Scenario(
            "d",
            "submit().result() round trip, idle pool, p50",
            "us",
            "<= 0.5x TPE",
            lambda _, f: round_trip_p50(f, rtts, 4),
            _vs_tpe,
            lambda r: r <= 0.5,
        ),
        Scenario(
            "e",
            f"{sleeps:,} x sleep(1 ms), 64 workers, % of ideal",
            "%",
            ">= 95 %",
            lambda _, f: sleep_efficiency(f, sleeps, 64),
            lambda fig, impl: fig[impl],
            lambda r: r >= 95,
        ),
        Scenario(
            "f",
            f"{aio:,} x loop.run_in_executor(ex, noop)",
            "tasks/s",
            ">= 3x TPE",
            lambda _, f: run_in_executor_throughput(f, aio, 4),
            _vs_tpe,
            lambda r: r >= 3,
        ),
        Scenario(
            "g",
            f"{mem:,} queued no-ops, futures held (tracemalloc)",
            "B/task",
            "<= 1/3 TPE",
            lambda _, f: memory_per_task(f, mem, "tracemalloc"),
            _vs_tpe,
            lambda r: r <= 1 / 3,
            max_repeat=2,
        ),
        Scenario(
            "g-rss",
            f"{mem:,} queued no-ops, futures held (RSS, fresh process)",
            "B/task",
            "<= 1/3 TPE",
            lambda name, _: rss_per_task_fresh(name, mem),
            _vs_tpe,
            lambda r: r <= 1 / 3,
            max_repeat=2,
        ),
    ]


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python, load: what the numbers came from."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from . import __version__
    from ._impl import cores

    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "conexe": __version__,
        "cores": sorted(cores),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "n/a"
    if unit in ("tasks/s", "items/s"):
        return f"{x:,.0f}"
    if unit == "%":
        return f"{x:.1f}"
    return f"{x:,.1f}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(
    selected: list[Scenario], impls: dict[str, Factory], repeat: int, out: Callable[[str], None]
) -> dict[str, Any]:
    """Measure every selected scenario ``repeat`` times per implementation,
    interleaved; returns the raw numbers and medians."""
    results: dict[str, Any] = {}
    for sc in selected:
        t0 = time.perf_counter()
        for _ in range(min(repeat, sc.max_repeat or repeat)):
            for name, factory in impls.items():
                sc.raw.setdefault(name, []).append(sc.measure(name, factory))
                if sc.extra is not None and name != REFERENCE:
                    sc.raw_extra.setdefault(name, []).append(sc.extra(name, factory))
        figures = {name: statistics.median(v) for name, v in sc.raw.items()}
        figures.update({"extra:" + n: statistics.median(v) for n, v in sc.raw_extra.items()})
        ratios = {n: sc.ratio(figures, n) for n in impls if n != REFERENCE}
        results[sc.key] = {
            "title": sc.title,
            "unit": sc.unit,
            "target": sc.target,
            "raw": sc.raw,
            "raw_extra": sc.raw_extra,
            "median": figures,
            "ratio": ratios,
            "pass": {n: sc.ok(r) for n, r in ratios.items()},
            "seconds": time.perf_counter() - t0,
        }
        out(f"  ({sc.key}) done in {time.perf_counter() - t0:.1f} s")
    return results


def _notes(
    results: dict[str, Any], info: dict[str, Any], impls: Sequence[str], repeat: int, aio_n: int
) -> list[str]:
    """Context for the two targets the machine itself caps: (e) by the
    sleep's real length, (f) by asyncio's own per-task cost."""
    from ._impl import cores

    lines = []
    cores_run = [n for n in ("c", "py") if n in impls]
    if "e" in results and info.get("sleep_1ms_real_s"):
        scale = info["sleep_1ms_real_s"] / 0.001
        figs = ", ".join(
            f"{n} {results['e']['median'][n] * scale:.1f} %" for n in [REFERENCE, *cores_run]
        )
        lines.append(f"(e) against the reachable ideal (n x real sleep / 64): {figs}")
        results["e"]["vs_real_sleep"] = {
            n: results["e"]["median"][n] * scale for n in [REFERENCE, *cores_run]
        }
    if "f" in results:
        best = cores["c"] if "c" in cores else cores["py"]
        floor = statistics.median(run_in_executor_floor(aio_n, best.Future) for _ in range(repeat))
        tpe = results["f"]["median"][REFERENCE]
        lines.append(
            f"(f) for scale, what asyncio's wrap_future chaining alone costs: run_in_executor "
            f"over an inline executor (no threads, a done unbound {best.IMPLEMENTATION} Future) "
            f"reaches {floor:,.0f} tasks/s = {floor / tpe:.2f}x TPE; conexe's loop-bound "
            f"futures skip that chaining (docs/asyncio.md)"
        )
        results["f"]["inline_floor"] = floor
    return lines


def render(results: dict[str, Any], impls: Sequence[str]) -> str:
    cores = [n for n in ("c", "py") if n in impls]
    rows = [
        ["", "scenario", "unit", "TPE", "conexe-c", "conexe-py"]
        + [f"ratio {n}" for n in cores]
        + ["target"]
        + [f"{n} ok?" for n in cores]
    ]
    for key, r in results.items():
        med, unit = r["median"], r["unit"]
        row = [f"({key})", r["title"], unit]
        row += [_fmt(med.get(n), unit) for n in (REFERENCE, "c", "py")]
        row += [f"{r['ratio'][n]:.2f}" + ("x" if unit != "%" else " %") for n in cores]
        row += [r["target"]] + ["pass" if r["pass"][n] else "FAIL" for n in cores]
        rows.append(row)
    return _table(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m conexe bench``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m conexe bench",
        description="conexe's ConcurrentExecutor (each core) against "
        "concurrent.futures.ThreadPoolExecutor, side by side in one process.",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repeats per scenario and implementation; medians are "
        "reported (default 5, or 3 with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="counts scaled down ~10x: a smoke run for CI"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenario keys, e.g. a,c (all: a,b,c,d,e,f,g,g-rss)",
    )
    parser.add_argument(
        "--impl",
        default="",
        help="comma-separated implementations besides TPE, e.g. c (default: every available core)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the raw numbers to PATH")
    parser.add_argument(
        "--scaling", action="store_true", help="run the worker-scaling scenarios instead"
    )
    parser.add_argument(
        "--plot", metavar="PNG", help="run the scaling scenarios and draw them (extra: plot)"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.scaling or args.plot:  # conexe._bench_scaling: workers 1..cores, GIL on and off
        from ._bench_scaling import run_session

        return run_session(
            quick=args.quick, repeat=args.repeat or 3, json_path=args.json, plot_path=args.plot
        )

    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        parser.error(f"--repeat must be >= 1, got {repeat}")
    every = scenarios(args.quick)
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(keys) - {s.key for s in every})
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from "
            f"{', '.join(s.key for s in every)}"
        )
    selected = [s for s in every if not keys or s.key in keys]
    impls = executor_factories()
    if args.impl:
        wanted = {k.strip() for k in args.impl.split(",") if k.strip()}
        missing = sorted(wanted - set(impls))
        if missing:
            parser.error(
                f"implementation(s) {', '.join(missing)} not available here "
                f"(available: {', '.join(n for n in impls if n != REFERENCE)})"
            )
        impls = {n: f for n, f in impls.items() if n == REFERENCE or n in wanted}

    def out(line: str) -> None:
        print(line, flush=True)

    info = machine()
    out(
        f"conexe {info['conexe']} bench: {info['python']}, {info['cpu_model']}, "
        f"{info['cpus']} CPUs ({info['usable_cpus']} usable), load {info['loadavg']}"
    )
    out(
        f"implementations: {', '.join(impls)}; repeat {repeat}"
        + (" (quick)" if args.quick else "")
        + "; figures are medians"
    )
    if "c" not in impls:
        out(
            "note: the C extension is not built here; only the pure-Python core runs "
            "(python setup.py build_ext --inplace)"
        )
    if "e" in {s.key for s in selected}:
        real = sleep_overshoot()
        out(
            f"note (e): time.sleep(1 ms) takes {real * 1000:.3f} ms here, so the best "
            f"reachable is ~{100 * 0.001 / real:.0f} % of ideal; (e) also needs 64 threads' "
            f"wake-ups on {info['usable_cpus']} CPUs"
        )
        info["sleep_1ms_real_s"] = real
    t0 = time.perf_counter()
    results = run(selected, impls, repeat, out)
    out("")
    out(render(results, list(impls)))
    notes = _notes(results, info, list(impls), repeat, aio_n=scenario_sizes(args.quick)["aio"])
    for line in notes:
        out(line)
    out(
        f"\nratios are conexe/TPE of the medians ((b): 32 workers / own 4 workers; "
        f"(e): the % itself); total {time.perf_counter() - t0:.0f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"machine": info, "repeat": repeat, "quick": args.quick, "results": results},
                f,
                indent=2,
            )
        out(f"raw numbers written to {args.json}")
    return 0
