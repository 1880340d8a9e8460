"""The bare-C floor benchmark builds and runs (a smoke run: it must not rot)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("bench_floor_handoff.py")


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")
def test_floor_handoff_builds_and_counts_every_task_once() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--workers", "1", "3", "--tasks", "2000", "--repeat", "1"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "3"], out
    assert all(float(rate.replace(",", "")) > 0 for row in rows for rate in row[1:]), out
