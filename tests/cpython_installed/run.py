"""Run CPython's own pool tests, as installed with the interpreter, against conexe.

Unlike ``tests/cpython`` and ``tests/cpython313`` (copies, adapted), this
runs the ``test`` package that came with the running Python, unmodified,
with conexe in the stdlib pool's slot (``slot.py``):

* ``test.test_concurrent_futures``: every thread-pool case (the classes
  named ``ThreadPool*``), the interpreter-exit scripts they start in child
  interpreters included;
* ``test.test_asyncio.test_threads``: ``asyncio.to_thread``, with conexe as
  every loop's default executor.

Child interpreters get the slot through ``site/sitecustomize.py``: the
scripts are started with that folder on ``PYTHONPATH`` (so without the
``-I`` that ``test.support.script_helper`` adds when it is given no
environment). Each child logs how many conexe pools it made; the run fails
when the tests made none, or no child used one, so it cannot pass without
having tested conexe.

    python tests/cpython_installed/run.py --core c
    CONEXE_NO_EXTENSIONS=1 python tests/cpython_installed/run.py --core py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import unittest
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import slot  # noqa: E402

slot.install()

import conexe  # noqa: E402

POOL_MODULES = [
    f"test.test_concurrent_futures.{name}"
    for name in ("test_thread_pool", "test_shutdown", "test_wait", "test_as_completed", "test_init")
]
ASYNCIO_MODULES = ["test.test_asyncio.test_threads"]


def cases(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from cases(test)
        else:
            yield test


def thread_pool_cases(module: str) -> list[unittest.TestCase]:
    """The thread-pool cases of one test module; each must be bound to the slot's pool."""
    chosen = []
    for case in cases(unittest.defaultTestLoader.loadTestsFromName(module)):
        if isinstance(case, unittest.loader._FailedTest):  # type: ignore[attr-defined]
            raise SystemExit(f"{module} did not load: {case}")
        if "ThreadPool" not in type(case).__name__:
            continue
        bound = getattr(case, "executor_type", slot.ThreadPoolExecutor)
        if bound is not slot.ThreadPoolExecutor:
            raise SystemExit(f"{type(case).__name__} tests {bound}, not conexe's pool")
        chosen.append(case)
    return chosen


def start_children_in_the_slot(log: str) -> None:
    """Give every child interpreter CPython's test helpers start the slot too."""
    from test.support import script_helper

    run_python = script_helper.run_python_until_end

    def run_python_in_the_slot(*args: str, **env: str) -> object:
        path = os.pathsep.join(filter(None, [str(HERE / "site"), env.get("PYTHONPATH")]))
        env = {**env, "PYTHONPATH": path, slot.LOG_VARIABLE: log}
        return run_python(*args, **env)

    script_helper.run_python_until_end = run_python_in_the_slot


def children_that_used_conexe(log: str) -> tuple[int, int]:
    """(children started, children that made at least one conexe pool)."""
    lines = Path(log).read_text(encoding="ascii").split() if Path(log).exists() else []
    counts = [int(count) for count in lines[1::2]]
    return len(counts), sum(1 for count in counts if count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--core", choices=["c", "py"], required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if conexe.IMPLEMENTATION != args.core:
        raise SystemExit(f"conexe chose the {conexe.IMPLEMENTATION!r} core, not {args.core!r}")
    try:
        import test.support  # noqa: F401
    except ImportError:
        raise SystemExit("this Python has no 'test' package") from None

    with tempfile.TemporaryDirectory() as scratch:
        log = os.path.join(scratch, "children.log")
        start_children_in_the_slot(log)
        suite = unittest.TestSuite()
        for module in POOL_MODULES:
            suite.addTests(thread_pool_cases(module))
        pool_cases = suite.countTestCases()
        for module in ASYNCIO_MODULES:
            suite.addTests(unittest.defaultTestLoader.loadTestsFromName(module))
        result = unittest.TextTestRunner(verbosity=2 if args.verbose else 1).run(suite)
        started, used = children_that_used_conexe(log)

    made = slot.created()
    print(
        f"CPython {sys.version.split()[0]}'s own tests, conexe core {args.core!r} in the slot: "
        f"{pool_cases} thread-pool cases of test_concurrent_futures and "
        f"{suite.countTestCases() - pool_cases} of test_asyncio.test_threads; "
        f"{made} conexe pools made here, {used} of {started} child interpreters made some"
    )
    if made == 0 or used == 0:
        print("the tests never used conexe's pool: the slot did not take", file=sys.stderr)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
