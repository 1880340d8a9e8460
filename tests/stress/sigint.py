"""Ctrl-C latency: how long from SIGINT to KeyboardInterrupt in the main
thread, for each blocking wait of each executor.

A child process (one per core) runs every case: it blocks the executor's
only worker on an event, starts the wait in its main thread, and a helper
thread sends the process SIGINT (as a terminal's Ctrl-C does: to the whole
process, not to a thread) 0.2 s later. Both timestamps are taken inside the
child, with ``time.monotonic()``. Measure (5 runs per core, the max)::

    PYTHONPATH=src python -m tests.stress.sigint --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import conexe
from conexe._impl import cores

SRC = Path(conexe.__file__).resolve().parents[1]  # the conexe under test
CASES = (
    "result",
    "wait_for_completion",
    "shutdown",
    "keyed_shutdown",
    "runner_queue_task",
    "runner_stop",
)

CHILD = r'''
import json, os, signal, sys, threading, time
import conexe
import conexe
from conexe._impl import cores
core = cores[sys.argv[1]]
bind = {"_core": core}
CE = type("ConcurrentExecutor", (conexe.ConcurrentExecutor,), bind)
KE = type("KeyedExecutor", (conexe.KeyedExecutor,), bind)
RU = type("Runner", (conexe.Runner,), bind)
SETTLE = 0.2  # let the main thread get into its wait


def busy(submit):
    """Occupy the only worker until the returned event is set."""
    gate, started = threading.Event(), threading.Event()
    def hold(*_):
        started.set()
        gate.wait(60)
    submit(hold)
    started.wait(60)
    return gate


def measure(wait):
    sent, go = [], threading.Event()
    def fire():
        # Counted from just before the wait, not from this thread's start:
        # on a loaded machine start() alone can outlast SETTLE.
        go.wait()
        time.sleep(SETTLE)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()
    try:
        go.set()
        wait()
    except KeyboardInterrupt:
        caught = time.monotonic()
        return caught - sent[0]
    return None  # returned without being interrupted


def case_result():
    ex = CE(1)
    gate = busy(ex.submit)
    fut = ex.submit(time.sleep, 0)
    out = measure(fut.result)
    gate.set(); ex.shutdown()
    return out


def case_wait_for_completion():
    ex = CE(1)
    ex.start_execution()
    gate = busy(lambda fn: ex.enqueue_task(conexe.Task("long", fn)))
    out = measure(ex.wait_for_completion)
    gate.set(); ex.shutdown()
    return out


def case_shutdown():
    ex = CE(1)
    gate = busy(ex.submit)
    out = measure(ex.shutdown)
    gate.set(); ex.shutdown()
    return out


def case_keyed_shutdown():
    ex = KE(1)
    gate = busy(lambda fn: ex.submit("k", fn))
    out = measure(ex.shutdown)
    gate.set(); ex.shutdown()
    return out


def case_runner_queue_task():
    r = RU(lambda: "resource", worker_count=1)
    gate = busy(r.submit)
    out = measure(lambda: r.queue_task(lambda res: res))
    gate.set(); r.stop()
    return out


def case_runner_stop():
    r = RU(lambda: "resource", worker_count=1)
    gate = busy(r.submit)
    out = measure(r.stop)
    gate.set(); r.stop()
    return out


print(json.dumps({name: globals()["case_" + name]() for name in sys.argv[2:]}), flush=True)
'''


def run_child(core: str, cases: tuple[str, ...] = CASES, timeout: float = 120) -> dict[str, Any]:
    """Latency in seconds per case (None: the wait was not interrupted)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, core, *cases],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.stress.sigint")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cores", default=",".join(sorted(cores)))
    args = p.parse_args(argv)
    rows = []
    for core in args.cores.split(","):
        runs = [run_child(core) for _ in range(args.repeat)]
        for case in CASES:
            got = [r[case] for r in runs]
            ok = all(v is not None for v in got)
            worst = max(got) * 1000 if ok else float("nan")
            rows.append((case, core, args.repeat, ok, worst))
    print("| wait | core | runs | interrupted every time | max latency (ms) |")
    print("|---|---|---|---|---|")
    for case, core, n, ok, worst in rows:
        print(f"| {case} | {core} | {n} | {'yes' if ok else 'NO'} | {worst:.2f} |")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
