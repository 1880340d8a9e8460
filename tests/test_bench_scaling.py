"""``python -m conexe bench --scaling`` / ``--plot``: the verdicts read the
right ratios, saved runs can be drawn, and bad arguments get a clear error.
(The scenarios themselves run in ``.ci/run``'s bench step; no timing here.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conexe.bench import scaling


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


def test_the_cpu_verdict_reads_the_per_repeat_speedup_when_the_run_has_it() -> None:
    # The medians of the seconds say 1.90x; the median of each repeat's own
    # ratio, which a slow spell between the 1- and 2-worker runs can't skew,
    # says 1.70x: the verdict takes the latter.
    run = _run(False, True, 95.0, 10.0)
    run["cpu_speedup"] = {"TPE": {"1": 1.0, "2": 1.6}, "conexe": {"1": 1.0, "2": 1.7}}
    line = next(v for v in scaling.verdicts([run]) if "cpu speedup" in v)
    assert line == (
        "[GIL off] cpu speedup at 2 workers: conexe 1.70x, TPE 1.60x (target >= 1.8x) MISSED"
    )


def test_cpu_curve_runs_every_count_once_per_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = iter([4.0, 2.0, 8.0, 2.0, 4.0, 1.0])  # repeat by repeat: 1 worker, then 2
    monkeypatch.setattr(scaling, "cpu_seconds", lambda *_: next(seconds))
    secs, up = scaling.cpu_curve({"x": lambda n: None}, [1, 2], 3, 8, 10)
    assert secs == {"x": {"1": 4.0, "2": 2.0}}
    assert up == {"x": {"1": 1.0, "2": 4.0}}  # median of 2x, 4x, 4x


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
