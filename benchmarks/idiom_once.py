"""Run one way of waiting once, for an instruction counter.

    valgrind --tool=callgrind python benchmarks/idiom_once.py c noop as_completed 30000

Arguments: implementation (``TPE``, ``c``, ``py``), scenario kind (``noop``,
``keyed``, ``runner``), idiom (a ``--idiom`` name of ``python -m conexe
bench``) and the number of tasks. The per-task count is the difference of
two runs (e.g. 30,000 and 10,000 tasks) divided by the difference in tasks,
which cancels start-up and import.
"""

from __future__ import annotations

import sys

from conexe._bench_idioms import IDIOMS
from conexe._bench_subjects import open_subject


def main(argv: list[str]) -> None:
    impl, kind, idiom, n = argv[0], argv[1], argv[2], int(argv[3])
    run = IDIOMS[idiom].run
    with open_subject(impl, kind, 4) as subject:
        run(subject, 2000)  # warm: the same code paths, before the counted part
        seconds = run(subject, n)
    print(f"{impl} {kind} {idiom}: {n} tasks in {seconds:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
