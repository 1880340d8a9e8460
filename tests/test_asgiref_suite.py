"""asgiref's own test suite with conexe in every executor slot.

asgiref (Django's ``sync_to_async``/``async_to_sync``) is what most Django
apps run their sync code through. Its tests, vendored from the sdist of the
release pinned in the ``clients`` extra (``tests/thirdparty/asgiref``, BSD
licence there), run in a child pytest with every pool they and asgiref make,
and every loop's default executor, a conexe ``ThreadPoolExecutor`` bound to
the core under test (see the ``conftest.py`` there).

The cancellation tests that raced before conexe kept asyncio's view of a
future on the loop's thread (``test_inner_shield_*``) run several times more:
the race showed in most runs. A test that fails with conexe fails this one
only if it passes on the stdlib pool in the same place (asgiref's own tests
may be timing-sensitive on a loaded machine: the stdlib pool is the bar).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

VENDORED = Path(__file__).parent / "thirdparty" / "asgiref"
PINNED = "3.12.1"
RACY = "inner_shield"
RACY_RUNS = 5

asgiref = pytest.importorskip("asgiref", reason="asgiref is in the 'clients' extra")
pytest.importorskip("pytest_asyncio", reason="pytest-asyncio is in the 'clients' extra")
if asgiref.__version__ != PINNED:
    pytest.skip(
        f"the vendored tests are asgiref {PINNED}'s; {asgiref.__version__} is installed",
        allow_module_level=True,
    )


def failures(executor: str, tmp_path: Path, *args: str) -> list[str]:
    """Run the vendored suite (narrowed by ``args``) on ``executor`` ("c",
    "py" or "stdlib"); the node ids that failed or errored."""
    report = tmp_path / f"{executor}-{len(list(tmp_path.iterdir()))}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-c", str(VENDORED / "pytest.ini"), "--rootdir", str(VENDORED)]
    cmd += [f"--junitxml={report}", *args]
    env = {**os.environ, "CONEXE_CORE": executor}
    done = subprocess.run(cmd, cwd=VENDORED, env=env, capture_output=True, text=True, timeout=600)
    if not report.exists():
        pytest.fail(f"the child pytest wrote no report:\n{done.stdout}\n{done.stderr}")
    failed = []
    for case in ET.parse(report).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    assert failed or done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout, done.stdout + done.stderr
    return failed


def node_id(failed: str) -> str:
    """A junit ``module.path::name`` back to a pytest node id."""
    module, name = failed.split("::", 1)
    return module.replace(".", "/") + ".py::" + name


def test_asgirefs_suite_passes_with_conexe_as_every_executor(
    core: ModuleType, tmp_path: Path
) -> None:
    failed = failures(core.IMPLEMENTATION, tmp_path, ".")
    for _ in range(RACY_RUNS):
        failed += failures(core.IMPLEMENTATION, tmp_path, "-k", RACY, ".")
    if failed:
        ids = sorted({node_id(f) for f in failed})
        on_stdlib = failures("stdlib", tmp_path, *ids)
        worse = sorted(set(ids) - {node_id(f) for f in on_stdlib})
        assert not worse, f"fail with conexe ({core.IMPLEMENTATION}), pass on the stdlib: {worse}"
