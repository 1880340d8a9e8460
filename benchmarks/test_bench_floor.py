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


PYTHON_FLOOR = Path(__file__).with_name("bench_floor_pyhandoff.py")
AB_BUILDS = Path(__file__).with_name("ab_builds.py")


def test_python_floor_runs_every_row() -> None:
    out = subprocess.run(
        [sys.executable, str(PYTHON_FLOOR), "--tasks", "300", "--rounds", "1", "--warmup", "0"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rows = [line for line in out.splitlines() if line.rstrip().endswith("/s")]
    assert len(rows) == 10, out
    assert all(float(row.split()[-1].removesuffix("/s").replace(",", "")) > 0 for row in rows), out


def test_ab_builds_alternates_two_copies_of_the_installed_build() -> None:
    import conexe

    if conexe.IMPLEMENTATION != "c":
        pytest.skip("the C core is not built")
    here = str(Path(conexe.__file__).parent.parent)
    out = subprocess.run(
        [
            sys.executable,
            str(AB_BUILDS),
            f"one={here}",
            f"two={here}",
            "--workers",
            "1",
            "3",
            "--tasks",
            "300",
            "--rounds",
            "2",
            "--warmup",
            "1",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rows = [line.split() for line in out.splitlines() if "workers" in line and "/s" in line]
    assert [(row[0], row[2].rstrip(":")) for row in rows] == [
        ("1", "one"),
        ("1", "two"),
        ("3", "one"),
        ("3", "two"),
    ], out


def test_ab_builds_refuses_a_directory_without_conexe(tmp_path: Path) -> None:
    got = subprocess.run(
        [sys.executable, str(AB_BUILDS), f"x={tmp_path}", "--tasks", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert got.returncode != 0
    assert "holds no conexe package" in got.stderr
