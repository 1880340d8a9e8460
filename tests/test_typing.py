"""conexe's submits are typed like the stdlib's: mypy checks
``tests/typing_checks/expectations.py`` (``assert_type`` lines and lines that must
be errors) against the package's sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is in the 'dev' extra")

ROOT = Path(__file__).parent.parent
EXPECTATIONS = ROOT / "tests" / "typing_checks" / "expectations.py"


def test_submits_are_typed_like_the_stdlibs() -> None:
    if not (ROOT / "src" / "conexe" / "py.typed").exists():
        pytest.skip("needs the source tree (src/conexe) beside the tests")
    cmd = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--warn-unused-ignores",
        "--follow-imports=silent",
    ]
    cmd += ["--no-incremental", "--python-version", "3.11", str(EXPECTATIONS)]
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
