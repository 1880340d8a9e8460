"""The scripts in ``examples/`` run and check their own outcome (exit code
0 means every check passed), on each core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support import child_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("runner_*.py"))


def test_the_three_runner_examples_are_there() -> None:
    assert [p.name for p in EXAMPLES] == [
        "runner_basic.py",
        "runner_bursting.py",
        "runner_image_processing.py",
    ]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_checks_itself(core: ModuleType, script: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=child_env(core),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED" not in proc.stdout
    assert "example finished." in proc.stdout
