"""``python -m conexe bench``: options, output and the JSON it writes.

Only the plumbing is checked here (small scenarios, one repeat); the
figures themselves are benchmark targets, never asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import conexe
from conexe._impl import cores
from conexe.bench.cli import REPRESENTATIVE, main
from conexe.bench.idioms import IDIOMS, NotAccepted, Subject, to_thread
from conexe.bench.subjects import executor_factories, open_subject


def test_bench_prints_a_table_named_by_what_it_does_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["--quick", "--repeat", "1", "--only", "round-trip", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "one submit(noop).result() at a time" in printed and "back to back" in printed
    assert "thread start-up is excluded" in printed
    assert "GIL" in printed or "free-threaded" in printed
    assert "FAIL" not in printed and "pass" not in printed
    data = json.loads(out.read_text())
    assert [r["how"] for r in data["rows"]] == [
        "back to back",
        "after a 100 us pause (workers parked)",
    ]
    row = data["rows"][0]
    assert set(row["raw"]) == {"TPE", *cores}
    assert all(len(v) == 1 and v[0] > 0 for v in row["raw"].values())
    assert set(row["ratio"]) == set(cores)
    assert data["machine"]["cpus"] >= 1 and data["machine"]["gil"]


def test_bench_by_default_runs_the_representative_set_on_the_loaded_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--repeat", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert {(r["scenario"], r["how"]) for r in rows} == REPRESENTATIVE
    assert [r["how"] for r in rows[: len(IDIOMS)]] == [i.title for i in IDIOMS.values()]
    assert all(set(r["raw"]) == {"TPE", conexe.IMPLEMENTATION} for r in rows)
    total = len(REPRESENTATIVE)
    assert f"[{total}/{total} " in printed  # progress: rows done of total, elapsed
    assert "--all" in printed  # says how to get the whole table
    table = printed[printed.index("how the caller waits") : printed.index("raw numbers written")]
    assert max(len(line) for line in table.splitlines()) <= 100


def test_bench_runs_one_row_per_way_of_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["--quick", "--repeat", "1", "--only", "keyed", "--idiom", "wait,callback"]
    assert main([*args, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["scenario"], r["how"]) for r in rows] == [
        ("keyed", IDIOMS["wait"].title),
        ("keyed", IDIOMS["callback"].title),
    ]
    assert all(v[0] > 0 for r in rows for v in r["raw"].values())


@pytest.mark.parametrize("idiom", list(IDIOMS))
@pytest.mark.parametrize("impl", ["TPE", "py"])
def test_every_idiom_runs_every_task(idiom: str, impl: str) -> None:
    ran: list[int] = []
    with open_subject(impl, "noop", 2) as s:
        counted = Subject(
            lambda: s.executor.submit(ran.append, 1),  # type: ignore[union-attr]
            s.executor,
            ran.append,
            1,
        )
        try:
            assert IDIOMS[idiom].run(counted, 300) > 0
        except NotAccepted:
            assert idiom == "to_thread"
            return
    assert len(ran) == 300


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio only warns before 3.11")
def test_to_thread_reports_an_executor_asyncio_refuses() -> None:
    class NotAThreadPool:  # what set_default_executor refuses since 3.11
        def submit(self, *a: Any) -> Any:
            raise AssertionError("never used")

    subject = Subject(lambda: None, NotAThreadPool(), abs, -1)  # type: ignore[arg-type,return-value]
    with pytest.raises(NotAccepted):
        to_thread(subject, 10)


def test_bench_rejects_unknown_scenarios_and_idioms_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for args, msg in (
        (["--only", "noop,zz"], "unknown scenario(s) zz; choose from noop, noop-32"),
        (["--idiom", "soon"], "unknown way(s) of waiting soon; choose from result, map"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        assert msg in capsys.readouterr().err


def test_bench_rejects_a_repeat_below_one() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--repeat", "0"])
    assert exc.value.code == 2


def test_executor_factories_name_every_core() -> None:
    assert set(executor_factories()) == {"TPE", *cores}


def test_the_developers_check_flags_missed_targets() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import check_targets
    finally:
        sys.path.pop(0)

    def row(how: str, c: float, ratio: float) -> dict[str, Any]:
        return {
            "scenario": "noop",
            "how": how,
            "median": {"TPE": 1.0, "c": c},
            "ratio": {"c": ratio},
        }

    data = {"rows": [row(check_targets.RESULT, 100.0, 20.0), row(check_targets.WAIT, 40.0, 12.0)]}
    lines = check_targets.check(data, "c")
    assert any(ln.startswith("met") and "f.result()" in ln for ln in lines)
    assert any(ln.startswith("met") and "wait(futures): >= 10x" in ln for ln in lines)
    # 40 against the result loop's 100: more than 2x slower.
    assert any(ln.startswith("MISSED") and "of the result() loop: 0.40" in ln for ln in lines)
