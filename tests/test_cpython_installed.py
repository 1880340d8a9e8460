"""CPython's own pool tests, from the running Python's ``test`` package, against conexe.

``tests/cpython_installed/run.py`` runs the thread-pool cases of the
installed ``test.test_concurrent_futures`` (its child-interpreter scripts
included) and ``test.test_asyncio.test_threads`` unmodified, with conexe in
``concurrent.futures.ThreadPoolExecutor``'s slot, once per core. On 3.14 and
later only: 3.11's and 3.13's cases run from the adapted copies in
``tests/cpython`` and ``tests/cpython313`` on every Python.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support import child_env

RUNNER = Path(__file__).parent / "cpython_installed" / "run.py"

pytestmark = [
    pytest.mark.skipif(sys.version_info < (3, 14), reason="CPython 3.14's tests and later"),
    pytest.mark.skipif(
        importlib.util.find_spec("test.support") is None,
        reason="this Python has no 'test' package (Debian/Ubuntu: libpython3.X-testsuite)",
    ),
]


@pytest.mark.timeout(600)
def test_cpython_pool_tests_pass_with_conexe_in_the_slot(core: ModuleType) -> None:
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--core", core.IMPLEMENTATION],
        env=child_env(core),
        capture_output=True,
        text=True,
        timeout=570,
    )
    summary = proc.stdout.strip().splitlines()[-1:] or ["(no summary)"]
    assert proc.returncode == 0, proc.stderr[-6000:] + proc.stdout[-2000:]
    assert "thread-pool cases" in summary[0], summary
    print(summary[0])
