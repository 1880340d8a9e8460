"""``python -m conexe bench --scaling``: how conexe and ``ThreadPoolExecutor``
scale with the number of workers, on a GIL and on a free-threaded build.

Three scenarios, each run on ``ThreadPoolExecutor`` ("TPE") and on
``ConcurrentExecutor`` (its C core when built), interleaved repeat by repeat so
machine noise hits both alike; medians are reported, as ratios measured in the
same run:

* ``cpu``: pure-Python CPU tasks on 1, 2, ... workers up to the usable cores.
  The ratio is the speedup over 1 worker of the same executor (the median of
  each repeat's own ratio, every worker count run once per repeat): on a GIL
  build it stays near 1.0x, on a free-threaded build it should follow the cores.
* ``tiny-result``: no-op tasks submitted in a loop, then ``result()`` on each.
  Measures the executor's own overhead per task.
* ``tiny-wait``: the same tasks waited with ``concurrent.futures.wait``.

On a free-threaded build with the GIL off, the tiny-task scenarios also run in
a child process of the same interpreter with ``PYTHON_GIL=1``, so conexe's
throughput with the GIL off is compared with the same build's with the GIL on.
``--plot FILE.png`` (the ``plot`` extra: matplotlib) draws throughput against
workers, conexe and TPE, one panel per GIL mode::

    $ python -m conexe bench --scaling --quick
    $ python -m conexe bench --plot scaling.png --json scaling.json
    $ python -m conexe.bench.scaling --plot both.png --from gil.json ft.json

Targets (reported, never enforced; the exit status is 0 unless a run fails):
speedup >= 1.8x at 2 workers with the GIL off and no worse than TPE's curve;
tiny tasks >= 10x TPE at 4 and 16 workers (``result()`` loop) and >= 8x
(``wait``); conexe with the GIL off >= 0.9x of itself with the GIL on.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._options import usable_cores

__all__ = [
    "cpu_curve",
    "cpu_seconds",
    "gil_enabled",
    "main",
    "run_scaling",
    "tiny_rate",
    "usable_cores",
]

Factory = Callable[[int], cf.Executor]
TINY_WORKERS = (1, 2, 4, 16)
CPU_TARGET_AT_2 = 1.8
TINY_RESULT_TARGET = 10.0
TINY_WAIT_TARGET = 8.0
GIL_OFF_VS_ON_TARGET = 0.9


def gil_enabled() -> bool:
    """Whether the GIL is on in this process (always True before 3.13).

    >>> isinstance(gil_enabled(), bool)
    True
    """
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def free_threaded_build() -> bool:
    """Whether this interpreter was built with ``--disable-gil``."""
    import sysconfig

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def cpu_workers(cores: int) -> list[int]:
    """Worker counts for the CPU curve: every count up to 8, then doublings.

    >>> cpu_workers(2), cpu_workers(16)
    ([1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 16])
    """
    counts = list(range(1, min(cores, 8) + 1))
    n = 16
    while n <= cores:
        counts.append(n)
        n *= 2
    if counts[-1] != cores:
        counts.append(cores)
    return counts


def spin(iterations: int) -> int:
    """A pure-Python CPU task: no I/O, no C call that could release the GIL.

    >>> spin(4)
    6
    """
    total = 0
    for i in range(iterations):
        total += i
    return total


def _noop() -> None:
    return None


def cpu_seconds(factory: Factory, workers: int, tasks: int, iterations: int) -> float:
    """Wall seconds for ``tasks`` calls of ``spin(iterations)`` on ``workers``.

    >>> cpu_seconds(lambda n: cf.ThreadPoolExecutor(n), 2, 4, 10) > 0
    True
    """
    with factory(workers) as ex:
        _warm(ex, workers)
        start = time.perf_counter()
        futures = [ex.submit(spin, iterations) for _ in range(tasks)]
        for f in futures:
            f.result()
        return time.perf_counter() - start


def tiny_rate(factory: Factory, workers: int, tasks: int, mode: str) -> float:
    """No-op tasks per second: all submitted, then waited by ``result()`` one by
    one (``mode="result"``) or with ``concurrent.futures.wait`` (``"wait"``).

    >>> tiny_rate(lambda n: cf.ThreadPoolExecutor(n), 2, 50, "wait") > 0
    True
    """
    if mode not in ("result", "wait"):
        raise ValueError(f"mode must be 'result' or 'wait', not {mode!r}")
    with factory(workers) as ex:
        _warm(ex, workers)
        start = time.perf_counter()
        futures = [ex.submit(_noop) for _ in range(tasks)]
        if mode == "result":
            for f in futures:
                f.result()
        else:
            cf.wait(futures)
        return tasks / (time.perf_counter() - start)


def _warm(ex: cf.Executor, workers: int) -> None:
    # Start every worker thread before the clock runs (TPE starts them lazily).
    for f in [ex.submit(time.sleep, 0.002) for _ in range(workers)]:
        f.result()


def factories() -> dict[str, Factory]:
    """``{"TPE": ..., "conexe": ...}``; conexe on its C core when it is built."""
    from .. import ConcurrentExecutor

    return {
        "TPE": lambda n: cf.ThreadPoolExecutor(max_workers=n),
        "conexe": lambda n: ConcurrentExecutor(max_workers=n),
    }


def _median_by(
    impls: dict[str, Factory], repeat: int, measure: Callable[..., float]
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(repeat):  # interleaved: noise hits every implementation alike
        for name, factory in impls.items():
            samples[name].append(measure(factory))
    return {name: statistics.median(values) for name, values in samples.items()}


def cpu_curve(
    impls: dict[str, Factory], counts: Sequence[int], repeat: int, tasks: int, iterations: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """The CPU tasks on each worker count in ``counts`` (1 first): median
    seconds, and the median over repeats of each repeat's speedup over 1
    worker. Every count and implementation runs once per repeat, in turn,
    so a slow spell of a shared machine lands inside one repeat's ratios
    instead of between the 1-worker and the N-worker runs.

    >>> secs, up = cpu_curve({"TPE": lambda n: cf.ThreadPoolExecutor(n)}, [1, 2], 1, 4, 10)
    >>> sorted(up["TPE"]), up["TPE"]["1"]
    (['1', '2'], 1.0)
    """
    samples: dict[str, dict[int, list[float]]] = {n: {w: [] for w in counts} for n in impls}
    for _ in range(repeat):
        for w in counts:
            for name, factory in impls.items():
                samples[name][w].append(cpu_seconds(factory, w, tasks, iterations))
    seconds = {
        n: {str(w): statistics.median(by_w[w]) for w in counts} for n, by_w in samples.items()
    }
    speedup = {
        n: {
            str(w): statistics.median(
                one / t for one, t in zip(by_w[counts[0]], by_w[w], strict=True)
            )
            for w in counts
        }
        for n, by_w in samples.items()
    }
    return seconds, speedup


def run_scaling(
    *, quick: bool = False, repeat: int = 3, tiny_only: bool = False, echo: bool = True
) -> dict[str, Any]:
    """Run the scenarios in this process; returns the numbers as a JSON-able dict
    (``cpu``: seconds by implementation and worker count; ``tiny-result`` and
    ``tiny-wait``: tasks per second)."""
    from .. import IMPLEMENTATION

    cores = usable_cores()
    impls = factories()
    # About 0.3 s (quick) or 1 s of CPU per 1-worker run: long enough that a
    # scheduler hiccup on a shared machine is noise, not the result.
    tasks, iterations = (48, 100_000) if quick else (64, 250_000)
    tiny = 20_000 if quick else 60_000
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "free_threaded_build": free_threaded_build(),
        "gil_enabled": gil_enabled(),
        "core": IMPLEMENTATION,
        "usable_cores": cores,
        "repeat": repeat,
        "cpu_tasks": [tasks, iterations],
        "tiny_tasks": tiny,
    }

    def say(line: str) -> None:
        if echo:
            print(line, flush=True)

    mode = "GIL on" if out["gil_enabled"] else "GIL off"
    say(f"-- {sys.implementation.name} {out['python']} ({mode}), {cores} usable cores")
    if not tiny_only:
        out["cpu"], out["cpu_speedup"] = cpu_curve(
            impls, cpu_workers(cores), repeat, tasks, iterations
        )
        for w in cpu_workers(cores):
            say(
                f"cpu  {w:>3} workers: "
                + "  ".join(
                    f"{n} {out['cpu_speedup'][n][str(w)]:.2f}x "
                    f"({tasks / out['cpu'][n][str(w)]:,.0f}/s)"
                    for n in impls
                )
            )
    for scenario in ("result", "wait"):
        rates: dict[str, dict[str, float]] = {name: {} for name in impls}
        for w in TINY_WORKERS:
            medians = _median_by(impls, repeat, lambda f, w=w, s=scenario: tiny_rate(f, w, tiny, s))
            for name, rate in medians.items():
                rates[name][str(w)] = rate
            say(
                f"tiny-{scenario:<6} {w:>3} workers: "
                + "  ".join(f"{n} {rates[n][str(w)]:,.0f}/s" for n in impls)
                + f"  conexe/TPE {rates['conexe'][str(w)] / rates['TPE'][str(w)]:.1f}x"
            )
        out[f"tiny-{scenario}"] = rates
    return out


def run_child_with_gil(*, quick: bool, repeat: int, tiny_only: bool) -> dict[str, Any]:
    """The same scenarios in a child process of this interpreter with ``PYTHON_GIL=1``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gil.json")
        cmd = [sys.executable, "-m", "conexe.bench.scaling", "--json", path]
        cmd += ["--repeat", str(repeat), "--no-gil-child"]
        cmd += ["--quick"] * quick + ["--tiny-only"] * tiny_only
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHON_GIL": "1"})
        with open(path, encoding="utf-8") as fh:
            result: dict[str, Any] = json.load(fh)
            return result


def cpu_speedup_at(run: dict[str, Any], name: str, workers: str) -> float:
    """``name``'s CPU speedup over 1 worker at ``workers``: the per-repeat
    median where the run has it, else (older JSON) the ratio of the medians.

    >>> cpu_speedup_at({"cpu": {"TPE": {"1": 2.0, "2": 1.25}}}, "TPE", "2")
    1.6
    """
    if "cpu_speedup" in run:
        return float(run["cpu_speedup"][name][workers])
    return float(run["cpu"][name]["1"] / run["cpu"][name][workers])


def verdicts(runs: Sequence[dict[str, Any]]) -> list[str]:
    """One line per target, ``ok`` or ``MISSED``, from the runs of one session
    (a GIL-off run and, when present, the same build's GIL-on run)."""
    lines = []

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    off = next((r for r in runs if not r["gil_enabled"]), None)
    on = next((r for r in runs if r["gil_enabled"] and r["free_threaded_build"]), None)
    for run in runs:
        mode = "GIL on" if run["gil_enabled"] else "GIL off"
        if "cpu" in run and "2" in run["cpu"]["conexe"]:
            ours, tpe = (cpu_speedup_at(run, name, "2") for name in ("conexe", "TPE"))
            want = CPU_TARGET_AT_2 if not run["gil_enabled"] else None
            goal = f" (target >= {want}x)" if want else " (GIL: no target)"
            ok = mark(ours >= want and ours >= 0.95 * tpe) if want else "--"
            lines.append(
                f"[{mode}] cpu speedup at 2 workers: conexe {ours:.2f}x, TPE {tpe:.2f}x{goal} {ok}"
            )
        for scenario, target in (("result", TINY_RESULT_TARGET), ("wait", TINY_WAIT_TARGET)):
            rates = run[f"tiny-{scenario}"]
            for w in ("4", "16"):
                ratio = rates["conexe"][w] / rates["TPE"][w]
                lines.append(
                    f"[{mode}] tiny-{scenario} {w} workers: conexe/TPE {ratio:.1f}x "
                    f"(target >= {target:.0f}x) {mark(ratio >= target)}"
                )
    if off and on:
        for scenario in ("result", "wait"):
            for w in ("4", "16"):
                ratio = off[f"tiny-{scenario}"]["conexe"][w] / on[f"tiny-{scenario}"]["conexe"][w]
                lines.append(
                    f"conexe tiny-{scenario} {w} workers, GIL off / GIL on: {ratio:.2f}x "
                    f"(target >= {GIL_OFF_VS_ON_TARGET}x) {mark(ratio >= GIL_OFF_VS_ON_TARGET)}"
                )
    return lines


COLORS = {"TPE": "tab:blue", "conexe": "tab:orange"}


def plot(runs: Sequence[dict[str, Any]], path: str) -> None:
    """Draw throughput against workers: one column per run (GIL on / off), a
    row for the CPU tasks and one for the tiny tasks, conexe and TPE in each."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(f"--plot needs matplotlib: pip install 'conexe[plot]' ({exc})") from exc
    fig, axes = plt.subplots(2, len(runs), figsize=(5.5 * len(runs), 8), squeeze=False)
    for col, run in enumerate(runs):
        mode = "GIL on" if run["gil_enabled"] else "free-threaded, GIL off"
        title = f"CPython {run['python']} ({mode})"
        top, bottom = axes[0][col], axes[1][col]
        if "cpu" in run:
            tasks = run["cpu_tasks"][0]
            for name, by_workers in run["cpu"].items():
                xs = [int(w) for w in by_workers]
                top.plot(
                    xs,
                    [tasks / s for s in by_workers.values()],
                    marker="o",
                    label=name,
                    color=COLORS.get(name),
                )
            top.set_xticks(xs)
        top.set_title(f"{title}\npure-Python CPU tasks")
        top.set_xlabel("workers")
        top.set_ylabel("tasks/s")
        for name, by_workers in run["tiny-result"].items():
            xs = [int(w) for w in by_workers]
            bottom.plot(
                xs,
                list(by_workers.values()),
                marker="o",
                label=f"{name} result()",
                color=COLORS.get(name),
            )
        for name, by_workers in run["tiny-wait"].items():
            xs = [int(w) for w in by_workers]
            bottom.plot(
                xs,
                list(by_workers.values()),
                ls="--",
                marker="s",
                label=f"{name} wait()",
                color=COLORS.get(name),
            )
        bottom.set_xscale("log", base=2)
        bottom.set_xticks(xs, [str(x) for x in xs])
        bottom.set_title("no-op tasks")
        bottom.set_xlabel("workers")
        bottom.set_ylabel("tasks/s")
        for ax in (top, bottom):
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend()
    fig.suptitle(f"conexe vs ThreadPoolExecutor, {runs[0]['usable_cores']} usable cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_session(*, quick: bool, repeat: int, json_path: str | None, plot_path: str | None) -> int:
    """Entry point shared by ``python -m conexe bench --scaling/--plot``."""
    runs = [run_scaling(quick=quick, repeat=repeat)]
    if free_threaded_build() and not gil_enabled():
        print("-- same interpreter, PYTHON_GIL=1 (child process)", flush=True)
        runs.append(run_child_with_gil(quick=quick, repeat=repeat, tiny_only=plot_path is None))
        runs.reverse()  # GIL on first: the plot reads left to right
    for line in verdicts(runs):
        print(line)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(runs, fh, indent=1)
    if plot_path:
        plot([r for r in runs if "cpu" in r], plot_path)
        print(f"plot written to {plot_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m conexe.bench.scaling``: the scaling scenarios alone, or
    ``--plot PNG --from A.json B.json`` to draw runs saved by ``--json``."""
    parser = argparse.ArgumentParser(prog="python -m conexe.bench.scaling")
    parser.add_argument("--quick", action="store_true", help="fewer tasks: a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="repeats; medians (default 3)")
    parser.add_argument("--json", metavar="PATH", help="write the runs to PATH")
    parser.add_argument("--plot", metavar="PNG", help="draw throughput against workers")
    parser.add_argument("--from", dest="inputs", nargs="+", metavar="JSON", default=[])
    parser.add_argument("--tiny-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-gil-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.inputs:
        if not args.plot:
            parser.error("--from draws saved runs: give --plot PNG too")
        runs: list[dict[str, Any]] = []
        for path in args.inputs:
            with open(path, encoding="utf-8") as fh:
                loaded = json.load(fh)
            runs += loaded if isinstance(loaded, list) else [loaded]
        runs = [r for r in runs if "cpu" in r]
        if not runs:
            parser.error("none of the --from files holds a run with the cpu scenario")
        plot(runs, args.plot)
        print(f"plot written to {args.plot}")
        return 0
    if args.no_gil_child:  # the PYTHON_GIL=1 child of a free-threaded run
        run = run_scaling(quick=args.quick, repeat=args.repeat, tiny_only=args.tiny_only)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(run, fh)
        return 0
    return run_session(
        quick=args.quick, repeat=args.repeat, json_path=args.json, plot_path=args.plot
    )


if __name__ == "__main__":
    sys.exit(main())
