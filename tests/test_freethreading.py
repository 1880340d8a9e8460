"""Free-threaded CPython (3.13t and later): conexe declares the C core
compatible, so importing it leaves the GIL off, and worker threads run Python
code in parallel. On a GIL build these tests check what can be checked there
(the declaration is compiled in) and skip the rest, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import threading
from types import ModuleType
from typing import Any

import pytest

from conexe._impl import cores

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
needs_free_threading = pytest.mark.skipif(
    not FREE_THREADED, reason="needs a free-threaded (--disable-gil) CPython"
)


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter with PYTHON_GIL unset, as a user would."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_free_threading
@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
def test_importing_conexe_leaves_the_gil_off() -> None:
    # -W error turns "the GIL has been enabled to load module ..." into a failed import.
    proc = _fresh_python(
        "import sys, conexe, conexe._core, conexe.keyed, conexe.runner\n"
        "assert conexe.IMPLEMENTATION == 'c', conexe.IMPLEMENTATION\n"
        "with conexe.ConcurrentExecutor(2) as ex:\n"
        "    assert ex.submit(sum, [1, 2]).result() == 3\n"
        "print('gil', sys._is_gil_enabled())\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gil False", (proc.stdout, proc.stderr)


@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
def test_the_c_core_declares_it_does_not_need_the_gil() -> None:
    # The declaration sits in the module's slots, where no Python API reads
    # it; the Cython directive is the source of truth, checked in the source
    # that built the installed module.
    import conexe

    pyx = os.path.join(os.path.dirname(conexe.__file__), "_core.pyx")
    with open(pyx, encoding="utf-8") as fh:
        head = [next(fh) for _ in range(5)]
    assert "# cython: freethreading_compatible=True\n" in head


@needs_free_threading
def test_workers_run_python_code_at_the_same_time(make_executor: Any, core: ModuleType) -> None:
    # Two tasks each spin in pure Python until both have been seen inside the
    # spin together. With the GIL, they would still meet (the GIL switches
    # every 5 ms); what only a free-threaded build shows is that neither had
    # to yield: each observed the other's counter move while it never slept.
    ex = make_executor(2)
    counters = [0, 0]
    both_in = threading.Barrier(2, timeout=30)

    def spin(me: int) -> int:
        both_in.wait()
        other = 1 - me
        seen = counters[other]
        moves = 0
        for _ in range(2_000_000):
            counters[me] += 1
            if counters[other] != seen:
                seen = counters[other]
                moves += 1
                if moves >= 1000:
                    break
        return moves

    results = [f.result(timeout=60) for f in [ex.submit(spin, 0), ex.submit(spin, 1)]]
    # With a GIL each thread sees the other's counter move only at switches
    # (about once per 5 ms slice); truly parallel threads see it move constantly.
    assert max(results) >= 1000, results
