"""``python -m conexe bench --scaling`` / ``--plot``: the verdicts read the
right ratios, saved runs can be drawn, and bad arguments get a clear error.
(The scenarios themselves run in ``.ci/run``'s bench step; no timing here.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conexe import _bench_scaling as scaling


def _run(gil: bool, ft: bool, conexe_rate: float, tpe_rate: float) -> dict[str, object]:
    rates = {
        "TPE": {"4": tpe_rate, "16": tpe_rate},
        "conexe": {"4": conexe_rate, "16": conexe_rate},
    }
    return {
        "python": "3.13.5",
        "free_threaded_build": ft,
        "gil_enabled": gil,
        "usable_cores": 2,
        "cpu_tasks": [8, 10],
        "cpu": {"TPE": {"1": 2.0, "2": 1.0}, "conexe": {"1": 2.0, "2": 1.05}},
        "tiny-result": rates,
        "tiny-wait": rates,
    }


def test_verdicts_compare_gil_off_with_the_same_build_gil_on() -> None:
    lines = scaling.verdicts([_run(True, True, 100.0, 10.0), _run(False, True, 95.0, 10.0)])
    assert "[GIL off] cpu speedup at 2 workers: conexe 1.90x, TPE 2.00x" in lines[5]
    assert lines[5].endswith(" ok")
    assert any("GIL off / GIL on: 0.95x" in line and line.endswith(" ok") for line in lines)
    assert any("tiny-wait 4 workers: conexe/TPE 9.5x (target >= 8x) ok" in line for line in lines)
    assert any(
        "tiny-result 4 workers: conexe/TPE 9.5x (target >= 10x) MISSED" in line for line in lines
    )


def test_from_needs_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps([_run(False, True, 1.0, 1.0)]))
    with pytest.raises(SystemExit):
        scaling.main(["--from", str(path)])
    assert "give --plot PNG too" in capsys.readouterr().err


def test_plot_draws_saved_runs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "run.json"
    path.write_text(json.dumps([_run(True, True, 1.0, 1.0), _run(False, True, 2.0, 1.0)]))
    png = tmp_path / "curve.png"
    assert scaling.main(["--plot", str(png), "--from", str(path)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_cpu_workers_reach_the_core_count() -> None:
    assert scaling.cpu_workers(1) == [1]
    assert scaling.cpu_workers(12) == [1, 2, 3, 4, 5, 6, 7, 8, 12]
    assert scaling.cpu_workers(32)[-2:] == [16, 32]


def test_tiny_rate_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode must be 'result' or 'wait'"):
        scaling.tiny_rate(lambda n: None, 1, 1, "poll")  # type: ignore[arg-type,return-value]
