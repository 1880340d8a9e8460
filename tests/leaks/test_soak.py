"""Memory stays flat under load: soak.py runs each executor in a fresh
process and reports RSS per round and the traced Python heap.

The default suite runs 50,000 tasks per executor on the C core (20,000 on
the pure-Python twin); the million-task runs are marked slow
(``python -m pytest tests/leaks -m slow``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import child_env

SOAK = Path(__file__).with_name("soak.py")
KINDS = ("concurrent", "keyed", "runner")
# RSS is read in pages and the allocator keeps freed arenas around: after
# warm-up a leak of even a few bytes per task shows up as megabytes over
# 100,000 tasks, so this bound still catches one.
RSS_BOUND = 4 * 2**20
TRACED_BOUND = 64 * 2**10


def soak(kind: str, core: str, tasks: int, traced_tasks: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--executor",
            kind,
            "--core",
            core,
            "--tasks",
            str(tasks),
            "--traced-tasks",
            str(traced_tasks),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _check(report: dict[str, Any]) -> None:
    assert report["rss_growth"] < RSS_BOUND, report
    assert report["traced_growth"] < TRACED_BOUND, report


@pytest.mark.parametrize("kind", KINDS)
def test_memory_stays_flat_over_many_tasks(kind: str, core: ModuleType) -> None:
    c = core.IMPLEMENTATION == "c"
    _check(soak(kind, core.IMPLEMENTATION, 50_000 if c else 20_000, 5_000 if c else 2_000))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("kind", KINDS)
def test_memory_stays_flat_over_a_million_tasks(kind: str, core: ModuleType) -> None:
    report = soak(kind, core.IMPLEMENTATION, 1_000_000, 20_000)
    print(json.dumps(report))
    _check(report)
