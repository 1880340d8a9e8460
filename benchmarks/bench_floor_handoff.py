"""The machine's floor under a pool of tiny tasks, in bare C: one producer
hands no-op tasks to W threads and waits for them all, through one locked
queue (the shape of conexe's engine and of every Python pool) and through
a lock-free ring per worker (the shape of Go's, tokio's and ForkJoinPool's
schedulers). No Python runs in the measured loop, so the rows are what the
hardware and the OS allow this hand-off; read conexe's free-threaded
``result()`` rows against them (docs/freethreading.md).

    python benchmarks/bench_floor_handoff.py                 # W = 1, 2, 4, 16
    python benchmarks/bench_floor_handoff.py --workers 4 --tasks 500000

Builds ``floor_handoff.c`` with the system C compiler (``cc``, or ``$CC``)
into a temporary directory first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("floor_handoff.c")
MODES = ("one-lock", "per-worker")


def build(where: Path) -> Path:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("no C compiler found (set CC)")
    exe = where / "floor_handoff"
    subprocess.run([cc, "-O2", "-pthread", "-o", str(exe), str(SOURCE)], check=True)
    return exe


def tasks_per_s(exe: Path, mode: str, workers: int, tasks: int, repeats: int) -> float:
    out = subprocess.run(
        [str(exe), mode, str(workers), str(tasks), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 16])
    parser.add_argument("--tasks", type=int, default=200_000, help="tasks a round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        print(f"cpus: {os.cpu_count()}; {args.tasks} no-op tasks a round, best of {args.repeat}")
        print(f"  {'workers':>7} " + " ".join(f"{m + ' tasks/s':>22}" for m in MODES))
        for w in args.workers:
            rates = [tasks_per_s(exe, m, w, args.tasks, args.repeat) for m in MODES]
            print(f"  {w:7d} " + " ".join(f"{r:22,.0f}" for r in rates))


if __name__ == "__main__":
    main()
