"""Run one way of waiting once, for an instruction counter.

    valgrind --tool=callgrind python benchmarks/idiom_once.py c noop as_completed 30000

Arguments: implementation (``TPE``, ``c``, ``py``, or ``inline``: an
executor that runs each task in the caller at submit and returns a done
asyncio future, so an asyncio idiom measures asyncio's own cost), scenario
kind (``noop``, ``keyed``, ``runner``), idiom (a ``--idiom`` name of
``python -m conexe bench``) and the number of tasks. The per-task count is
the difference of two runs (e.g. 30,000 and 10,000 tasks) divided by the
difference in tasks, which cancels start-up and import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from conexe.bench.idioms import IDIOMS, Subject
from conexe.bench.subjects import noop, open_subject

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_to_thread import _AsyncioOnly  # noqa: E402


@contextlib.contextmanager
def _inline_subject() -> Iterator[Subject]:
    ex = _AsyncioOnly(0)
    yield Subject(lambda: ex.submit(noop, None), ex, noop, None)


def main(argv: list[str]) -> None:
    impl, kind, idiom, n = argv[0], argv[1], argv[2], int(argv[3])
    run = IDIOMS[idiom].run
    subject = _inline_subject() if impl == "inline" else open_subject(impl, kind, 4)
    with subject as s:
        run(s, 2000)  # warm: the same code paths, before the counted part
        seconds = run(s, n)
    print(f"{impl} {kind} {idiom}: {n} tasks in {seconds:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
