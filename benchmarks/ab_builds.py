"""Two or more builds of conexe in one process, taking turns round by round:
the way to tell whether a change to the core helps, on a machine where one
process's rate differs from the next one's by a third.

Each build is a directory holding a built ``conexe`` package (a checkout's
``src`` after ``pip install -e .``, or a copy of it). It is imported under a
name of its own (``conexe_NAME``: the package imports itself only
relatively), so all of them run in this interpreter, with the same heap,
the same threads' placement and the same warm-up; every build gets one
executor per worker count, and the rounds alternate between them.

    cp -r src /tmp/before                       # the build before a change
    ...change, rebuild...
    python benchmarks/ab_builds.py before=/tmp/before after=src --workers 1 4 16
    python benchmarks/ab_builds.py before=/tmp/before after=src --idiom wait as_completed
    python benchmarks/ab_builds.py before=/tmp/before after=src --idiom all

Prints, per way of waiting (``python -m conexe bench``'s idioms: ``result``
by default), worker count and build, the median and quartiles of the tasks
per second of ``--rounds`` rounds of ``--tasks`` no-op tasks.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from conexe.bench import idioms


def noop(_: object = None) -> None:
    return None


def load_builds(specs: list[str], where: Path) -> dict[str, ModuleType]:
    """Import each ``NAME=DIR`` build as ``conexe_NAME`` from a copy in ``where``."""
    builds = {}
    sys.path.insert(0, str(where))
    for spec in specs:
        name, sep, directory = spec.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"a build is NAME=DIR, got {spec!r}")
        package = Path(directory) / "conexe"
        if not (package / "__init__.py").is_file():
            raise SystemExit(f"{directory} holds no conexe package")
        shutil.copytree(
            package, where / f"conexe_{name}", ignore=shutil.ignore_patterns("__pycache__")
        )
        module = importlib.import_module(f"conexe_{name}")
        if module.IMPLEMENTATION != "c":
            raise SystemExit(f"{directory}: its C core is not built")
        builds[name] = module
    return builds


def compare(
    builds: dict[str, ModuleType], idiom: str, workers: int, tasks: int, rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Tasks/s of every round of every build at ``workers`` workers, waited
    for the way ``idiom`` (a key of conexe.bench.idioms.IDIOMS) waits."""
    executors = {name: m.ConcurrentExecutor(workers) for name, m in builds.items()}
    subjects = {
        name: idioms.Subject(lambda ex=ex: ex.submit(noop), ex, noop, None)
        for name, ex in executors.items()
    }
    run = idioms.IDIOMS[idiom].run
    rates: dict[str, list[float]] = {name: [] for name in builds}
    try:
        for i in range(warmup + rounds):
            for name, subject in subjects.items():
                rate = tasks / run(subject, tasks)
                if i >= warmup:
                    rates[name].append(rate)
    finally:
        for executor in executors.values():
            executor.shutdown()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", metavar="NAME=DIR")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 16])
    parser.add_argument("--tasks", type=int, default=50_000, help="tasks a round")
    parser.add_argument("--rounds", type=int, default=16, help="measured rounds a build")
    parser.add_argument("--warmup", type=int, default=5, help="rounds a build first, not counted")
    parser.add_argument(
        "--idiom", nargs="+", default=["result"], help="ways of waiting (bench's keys), or all"
    )
    args = parser.parse_args()
    names = list(idioms.IDIOMS) if args.idiom == ["all"] else args.idiom
    unknown = [name for name in names if name not in idioms.IDIOMS]
    if unknown:
        raise SystemExit(f"unknown idiom {unknown}: choose from {', '.join(idioms.IDIOMS)}")
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    with tempfile.TemporaryDirectory() as tmp:
        builds = load_builds(args.builds, Path(tmp))
        print(
            f"Python {sys.version.split()[0]}, GIL {'on' if gil else 'off'}; "
            f"{args.tasks:,} no-op tasks a round; "
            f"median [quartiles] of {args.rounds} rounds after {args.warmup}"
        )
        for idiom in names:
            print(f"{idiom}: {idioms.IDIOMS[idiom].title}")
            for workers in args.workers:
                rates = compare(builds, idiom, workers, args.tasks, args.rounds, args.warmup)
                for name, got in rates.items():
                    q1, q2, q3 = statistics.quantiles(got, n=4) if len(got) > 1 else got * 3
                    print(
                        f"  {workers:3d} workers  {name:>10}: {q2:12,.0f}/s  "
                        f"[{q1:,.0f} - {q3:,.0f}]"
                    )


if __name__ == "__main__":
    main()
