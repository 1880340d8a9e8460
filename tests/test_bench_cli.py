"""``python -m conexe bench``: options, output and the JSON it writes.

Only the plumbing is checked here (one tiny scenario, one repeat); the
figures themselves are benchmark targets, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conexe._bench import main
from conexe._impl import cores


def test_bench_prints_a_table_and_writes_raw_numbers_for_every_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--repeat", "1", "--only", "d", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "round trip" in printed and "<= 0.5x TPE" in printed
    data = json.loads(out.read_text())
    row = data["results"]["d"]
    assert set(row["raw"]) == {"TPE", *cores}
    assert all(len(v) == 1 and v[0] > 0 for v in row["raw"].values())
    assert set(row["ratio"]) == set(cores)
    assert data["machine"]["cpus"] >= 1


def test_bench_rejects_an_unknown_scenario_with_the_valid_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--only", "a,zz"])
    assert exc.value.code == 2
    assert "unknown scenario(s) zz; choose from a, b, c" in capsys.readouterr().err


def test_bench_rejects_a_repeat_below_one() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--repeat", "0"])
    assert exc.value.code == 2
