"""The stress runner (run.py) as tests: a quick pass in the default suite,
a long one marked slow. ``CONEXE_STRESS_SEED`` replays another seed."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from .run import KINDS, format_table, stress

SEED = int(os.environ.get("CONEXE_STRESS_SEED", "0"))


def _check(tally: object) -> None:
    assert tally.violations == [], (  # type: ignore[attr-defined]
        f"seed {SEED}:\n"
        + "\n".join(tally.violations[:20])  # type: ignore[attr-defined]
        + "\n"
        + format_table([tally])  # type: ignore[list-item]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_no_task_is_lost_doubled_or_left_pending_under_a_random_mix(
    kind: str, core: ModuleType
) -> None:
    tally = stress(kind, core.IMPLEMENTATION, tasks=8000, seed=SEED, round_size=(100, 2000))
    _check(tally)
    # The mix really happened: every outcome and a concurrent stop showed up.
    assert tally.rounds >= 3
    assert tally.ok and tally.failed and tally.base_exceptions
    assert sum(n for name, n in tally.stops.items() if name != "none")


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("kind", KINDS)
def test_long_stress_holds_every_invariant(kind: str, core: ModuleType) -> None:
    tasks = int(os.environ.get("CONEXE_STRESS_TASKS", "200000"))
    tally = stress(kind, core.IMPLEMENTATION, tasks=tasks, seed=SEED)
    _check(tally)
    assert tally.accepted > tasks // 4
