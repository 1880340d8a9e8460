"""The developers' bench check: compare a ``python -m conexe bench --json``
run to the project's targets (benchmarks/README.md) and exit 1 if one is
missed. The targets are the C core's; ``--core py`` reports the twin's.

    python -m conexe bench --impl c --json run.json
    python benchmarks/check_targets.py run.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

# Row titles as the bench prints them (conexe.bench.idioms.IDIOMS).
RESULT = "for f in futures: f.result()"
MAP = "ex.map(task, items)"
WAIT = "concurrent.futures.wait(futures)"
AS_COMPLETED = "for f in as_completed(futures)"
FIRST = "wait(FIRST_COMPLETED) refill loop, 256 in flight"
CALLBACK = "f.add_done_callback(cb) per task"
WRAP = "asyncio.wrap_future(f), gathered"
RUN_IN_EXECUTOR = "loop.run_in_executor(ex, task), gathered"
TO_THREAD = "asyncio.to_thread(task) with set_default_executor(ex)"
BACK_TO_BACK = "back to back"


@dataclass
class Target:
    scenario: str
    how: str
    kind: str  # "ratio>=", "ratio<=", "figure>=", "vs-result>="
    bound: float

    def describe(self) -> str:
        what = {
            "ratio>=": f">= {self.bound:g}x TPE",
            "ratio<=": f"<= {self.bound:g}x TPE",
            "figure>=": f">= {self.bound:g} % of ideal",
            "vs-result>=": f">= {self.bound:g} of the result() loop",
        }[self.kind]
        return f"{self.scenario}: {self.how}: {what}"


def targets() -> list[Target]:
    out = [
        Target("noop", RESULT, "ratio>=", 15),
        Target("noop", MAP, "ratio>=", 25),
        Target("noop", RUN_IN_EXECUTOR, "ratio>=", 3),
        Target("noop", TO_THREAD, "ratio>=", 5),
        Target("round-trip", BACK_TO_BACK, "ratio<=", 0.5),
        Target("memory", "(futures held)", "ratio<=", 1 / 3),
        Target("memory-rss", "(futures held)", "ratio<=", 1 / 3),
        Target("keyed", WAIT, "ratio>=", 10),
        Target("runner", WAIT, "ratio>=", 10),
    ]
    for how, bound in ((WAIT, 10), (AS_COMPLETED, 10), (CALLBACK, 10), (FIRST, 5), (WRAP, 5)):
        out.append(Target("noop", how, "ratio>=", bound))
        out.append(Target("noop", how, "vs-result>=", 0.5))  # within 2x of the result loop
    for how in (RESULT, MAP, WAIT, AS_COMPLETED, FIRST, CALLBACK, WRAP, RUN_IN_EXECUTOR, TO_THREAD):
        out.append(Target("sleep", how, "figure>=", 95))
    return out


def measured(t: Target, rows: dict[tuple[str, str], Any], core: str) -> float | None:
    row = rows.get((t.scenario, t.how))
    if row is None:
        return None
    if t.kind.startswith("ratio"):
        value: float | None = row["ratio"].get(core)
        return value
    if t.kind == "figure>=":
        value = row["median"].get(core)
        return value
    base = rows.get((t.scenario, RESULT))
    mine, ref = row["median"].get(core), base and base["median"].get(core)
    return None if mine is None or not ref else mine / ref


def check(data: dict[str, Any], core: str) -> list[str]:
    """One line per target found in the run; misses start with "MISSED"."""
    rows = {(r["scenario"], r["how"]): r for r in data["rows"]}
    lines = []
    for t in targets():
        if (t.scenario, t.how) not in rows:
            continue
        value = measured(t, rows, core)
        ok = value is not None and (value <= t.bound if t.kind == "ratio<=" else value >= t.bound)
        shown = "not measured" if value is None else f"{value:.2f}"
        lines.append(f"{'met   ' if ok else 'MISSED'} {t.describe()}: {shown}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="the JSON that python -m conexe bench --json wrote")
    p.add_argument("--core", default="c", help="the core to judge (default c)")
    args = p.parse_args(argv)
    with open(args.run) as f:
        data = json.load(f)
    lines = check(data, args.core)
    print("\n".join(lines) or "no targeted row in this run")
    return 1 if any(line.startswith("MISSED") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
