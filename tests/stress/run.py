"""The stress runner: every executor, both cores, a mix of everything that
can happen to a task, and a shutdown from another thread at a random moment.

Each *round* builds one executor with random settings, submits a random
number of tasks from the main thread (successes, exceptions, SystemExit and
KeyboardInterrupt raised inside tasks, cancellations, start deadlines,
priorities, keys, ``resize``, Runner health failures and ``run_task``), while
a second thread shuts it down (``shutdown``, ``shutdown(wait=False)``,
``shutdown(cancel_futures=True)``, Runner ``stop()``/``kill()``) at a random
point, or never. Then it checks, and records as violations rather than
stopping at the first:

* every accepted task is accounted for exactly once: its future is done and
  either has its result (the body ran once), its own exception (ran once),
  a start-deadline TimeoutError (never ran), or is cancelled (never ran);
  a submission that raised (QueueFull, RuntimeError) is not accepted;
* the counters add up: ``submitted`` = accepted, ``completed``/``failed``/
  ``cancelled`` equal what the futures say, nothing queued or running;
* no worker thread outlives the shutdown;
* KeyedExecutor: each key's tasks ran in submission order, never two at once;
* Runner: each resource created was destroyed exactly once.

Run it long (the numbers in docs/reliability.md)::

    PYTHONPATH=src python -m tests.stress --tasks 1000000 --seconds 840

Example (a small run, as the test suite does)::

    >>> from tests.stress.run import stress  # doctest: +SKIP
    >>> tally = stress("keyed", "c", tasks=2000, seed=1)  # doctest: +SKIP
    >>> tally.violations  # doctest: +SKIP
    []
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import conexe
from conexe import MaxRetriesExceeded, QueueFull, Task
from conexe._impl import cores

KINDS = ("concurrent", "keyed", "runner")

# What a task does when it runs.
OK, SLOW, EXC, SYSEXIT, KBI = range(5)
_RAISES: dict[int, type[BaseException]] = {
    EXC: ValueError,
    SYSEXIT: SystemExit,
    KBI: KeyboardInterrupt,
}
_DEADLINE_MESSAGE = "task did not start before its start deadline"
# Threads that outlive any executor by design: the process-wide reaper of
# start deadlines (one daemon thread for the whole process).
_PROCESS_THREADS = ("conexe-deadlines",)
_JOIN_SECONDS = 30.0  # a worker still alive this long after shutdown has leaked


def bind(cls: type, core: ModuleType) -> Any:
    """``cls`` running on ``core`` (as tests/support.bind_core)."""
    return type(cls.__name__, (cls,), {"_core": core})


@dataclass
class Tally:
    """What one executor kind on one core went through, summed over rounds."""

    kind: str
    core: str
    rounds: int = 0
    accepted: int = 0
    refused: int = 0  # QueueFull / RuntimeError at submit: not accepted
    ok: int = 0
    failed: int = 0  # the task's own exception (incl. MaxRetriesExceeded)
    base_exceptions: int = 0  # of failed: SystemExit / KeyboardInterrupt
    expired: int = 0  # start deadline passed while queued
    create_failed: int = 0  # of failed: Runner tasks failed by on_create
    cancelled: int = 0
    retried: int = 0  # Runner: retries after a broken resource
    resources: int = 0  # Runner: resources created (all destroyed once)
    resizes: int = 0
    run_tasks: int = 0  # Runner.run_task calls that ran
    stops: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def bad(self, round_no: int, what: str) -> None:
        if len(self.violations) < 200:  # enough to debug, bounded memory
            self.violations.append(f"{self.kind}/{self.core} round {round_no}: {what}")


class _State:
    """Shared by one round's tasks: how often each task body ran, and for
    keyed rounds which key is running and the last task each key ran."""

    def __init__(self, n: int) -> None:
        self.ran = [0] * n
        self.running: dict[Any, int] = {}
        self.last: dict[Any, int] = {}
        self.violations: list[str] = []


def _body(state: _State, i: int, action: int) -> int:
    state.ran[i] += 1
    if action == OK:
        return i
    if action == SLOW:
        time.sleep(0.0002)
        return i
    raise _RAISES[action](i)


def _keyed_body(state: _State, i: int, key: Any, action: int) -> int:
    state.ran[i] += 1
    other = state.running.get(key)
    if other is not None:
        state.violations.append(f"key {key!r}: task {i} started while task {other} ran")
    state.running[key] = i
    last = state.last.get(key, -1)
    if last >= i:
        state.violations.append(f"key {key!r}: task {i} ran after task {last}")
    state.last[key] = i
    try:
        return _body_no_count(i, action)
    finally:
        state.running.pop(key, None)


def _body_no_count(i: int, action: int) -> int:
    if action == OK:
        return i
    if action == SLOW:
        time.sleep(0.0002)
        return i
    raise _RAISES[action](i)


class Broken(Exception):
    """A Runner task's error that says its resource is broken."""


class CreateFailed(Exception):
    """A Runner on_create() that failed (injected)."""


def _runner_body(state: _State, i: int, action: int, breaks: int, resource: Any) -> int:
    state.ran[i] += 1
    if not resource.alive:
        state.violations.append(f"task {i} got destroyed resource {resource.id}")
    if state.ran[i] <= breaks:
        raise Broken(i)
    return _body_no_count(i, action)


def _pick_action(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.70:
        return OK
    if r < 0.78:
        return SLOW
    if r < 0.92:
        return EXC
    if r < 0.96:
        return SYSEXIT
    return KBI


class _Stopper:
    """Shuts the executor down from another thread when ``go`` is set
    (after a random number of submissions), with a random action."""

    def __init__(self, action: Callable[[], object], name: str) -> None:
        self.go = threading.Event()
        self.error: BaseException | None = None
        self._action = action
        self.name = name
        self.thread = threading.Thread(target=self._main, name="stress-stopper")
        self.thread.start()

    def _main(self) -> None:
        self.go.wait()
        try:
            self._action()
        except BaseException as exc:  # reported as a violation by the round
            self.error = exc


def _thread_leaks(before: set[threading.Thread]) -> list[str]:
    """Threads started during the round that don't end after shutdown."""
    out = []
    for t in threading.enumerate():
        if t in before or t is threading.current_thread():
            continue
        if t.name in _PROCESS_THREADS:
            continue
        t.join(_JOIN_SECONDS)
        if t.is_alive():
            out.append(t.name)
    return out


Row = tuple[int, int, Any, bool, int, bool]  # i, action, future, deadline?, breaks, once


def _account(
    tally: Tally, round_no: int, state: _State, accepted: list[Row], max_retries: int = -1
) -> Counter[str]:
    """Check every accepted future; returns counts by outcome.

    Runner rows (``max_retries`` >= 0): the task raises Broken on its first
    ``breaks`` runs; ``once`` tasks are never retried."""
    seen: Counter[str] = Counter()
    runner = max_retries >= 0
    for i, action, fut, has_deadline, breaks, once in accepted:
        ran = state.ran[i]
        # Runs a Runner task may have had before being cancelled or failed
        # by on_create: only broken tries that were going to be retried.
        partial = 0 if not runner or once else min(breaks, max_retries)
        if not fut.done():
            tally.bad(round_no, f"task {i} still pending after shutdown: {fut!r}")
            seen["pending"] += 1
            continue
        if fut.cancelled():
            seen["cancelled"] += 1
            if ran > partial:
                tally.bad(round_no, f"task {i} cancelled but its body ran {ran} times")
            continue
        exc = fut.exception(timeout=0)
        if runner and type(exc) is CreateFailed:
            # No worker could make a resource: queued tasks fail with it.
            seen["failed"] += 1
            seen["create_failed"] += 1
            if ran > partial:
                tally.bad(round_no, f"task {i} failed by on_create after running {ran}x")
            continue
        if runner and breaks and once:
            seen["failed"] += 1
            if type(exc) is not Broken or ran != 1:
                tally.bad(round_no, f"once task {i} broke: got {exc!r}, ran {ran}x")
            continue
        if runner and breaks > max_retries:
            seen["failed"] += 1
            if (
                not isinstance(exc, MaxRetriesExceeded)
                or ran != max_retries + 1
                or type(exc.__cause__) is not Broken
            ):
                tally.bad(
                    round_no,
                    f"task {i}: {exc!r} after {ran} runs, breaks={breaks}, "
                    f"max_retries={max_retries}",
                )
            continue
        expect_runs = breaks + 1
        if exc is None:
            seen["ok"] += 1
            if action in _RAISES or fut.result(timeout=0) != i or ran != expect_runs:
                tally.bad(
                    round_no, f"task {i} (action {action}) returned {fut.result()!r}, ran {ran}x"
                )
            continue
        if type(exc) is TimeoutError and str(exc) == _DEADLINE_MESSAGE:
            seen["expired"] += 1
            if not has_deadline or ran != 0:
                tally.bad(round_no, f"task {i} expired (deadline={has_deadline}), ran {ran}x")
            continue
        seen["failed"] += 1
        want = _RAISES.get(action)
        if want is None or type(exc) is not want or exc.args != (i,) or ran != expect_runs:
            tally.bad(round_no, f"task {i} (action {action}) raised {exc!r}, ran {ran}x")
        elif want is not ValueError:
            seen["base"] += 1
    tally.ok += seen["ok"]
    tally.failed += seen["failed"]
    tally.base_exceptions += seen["base"]
    tally.expired += seen["expired"]
    tally.cancelled += seen["cancelled"]
    tally.create_failed += seen["create_failed"]
    tally.accepted += len(accepted)
    for v in state.violations[:20]:
        tally.bad(round_no, v)
    return seen


def _check_counters(
    tally: Tally, round_no: int, stats: dict[str, int], seen: Counter[str], n: int
) -> None:
    want = {
        "submitted": n,
        "completed": seen["ok"],
        "failed": seen["failed"] + seen["expired"],
        "cancelled": seen["cancelled"],
        "queued": 0,
        "running": 0,
    }
    got = {k: stats[k] for k in want}
    if got != want:
        tally.bad(round_no, f"counters {got} != futures say {want}")
    if stats.get("active_keys", 0):
        tally.bad(round_no, f"{stats['active_keys']} keys still active after shutdown")


def _maybe_task_options(rng: random.Random) -> tuple[int, float | None] | None:
    """None (plain submit) or (priority, start_timeout)."""
    if rng.random() >= 0.2:
        return None
    priority = rng.choice((-3, 0, 1, 5, 100))
    start_timeout = rng.choice((None, None, 0.0, 0.0005, 0.01, 5.0))
    return priority, start_timeout


# -- one round per executor kind ---------------------------------------------------
def _random_pool(cls: Any, rng: random.Random) -> Any:
    """A ConcurrentExecutor or KeyedExecutor of 1-6 workers, unbounded or
    bounded with a random full-queue policy."""
    bounded = rng.random() < 0.3
    on_full = rng.choice(("raise", "block"))
    return cls(
        rng.randint(1, 6),
        max_queue_size=rng.randint(4, 256) if bounded else 0,
        on_full=on_full,
        block_timeout=0.005 if on_full == "block" else None,
    )


def _shutdown_stops(ex: Any) -> dict[str, Callable[[], Any]]:
    """The concurrent stops a round picks from (executors with shutdown())."""
    return {
        "shutdown": lambda: ex.shutdown(wait=True),
        "shutdown(wait=False)": lambda: ex.shutdown(wait=False),
        "shutdown(cancel_futures=True)": lambda: ex.shutdown(wait=True, cancel_futures=True),
    }


def _round_concurrent(core: ModuleType, rng: random.Random, n: int, tally: Tally, no: int) -> None:
    ex = _random_pool(bind(conexe.ConcurrentExecutor, core), rng)
    stops = _shutdown_stops(ex)
    submit = ex.submit

    def submit_one(i: int, action: int, opts: tuple[int, float | None] | None) -> Any:
        if opts is None:
            return submit(_body, state, i, action)
        return ex.submit_task(
            Task("t", _body, (state, i, action), priority=opts[0], start_timeout=opts[1])
        )

    def extra(i: int) -> None:
        if rng.random() < 0.002:
            try:
                ex.resize(rng.randint(1, 6))
                tally.resizes += 1
            except RuntimeError:
                pass

    state = _State(n)
    _drive(
        ex,
        rng,
        n,
        tally,
        no,
        state,
        stops,
        submit_one,
        extra,
        final=lambda: ex.shutdown(wait=True),
        stats=lambda: ex._engine.stats(),
    )


def _round_keyed(core: ModuleType, rng: random.Random, n: int, tally: Tally, no: int) -> None:
    ex = _random_pool(bind(conexe.KeyedExecutor, core), rng)
    stops = _shutdown_stops(ex)
    nkeys = rng.choice((1, 3, 16, 200))
    keys = [("k", j) if j % 2 else j for j in range(nkeys)]
    submit = ex.submit

    def submit_one(i: int, action: int, opts: tuple[int, float | None] | None) -> Any:
        key = keys[rng.randrange(nkeys)]
        if opts is None:
            if rng.random() < 0.05:
                return ex.submit_unique(key, _keyed_body, state, i, key, action)
            return submit(key, _keyed_body, state, i, key, action)
        return ex.submit_task(
            key,
            Task(
                "t", _keyed_body, (state, i, key, action), priority=opts[0], start_timeout=opts[1]
            ),
        )

    state = _State(n)
    _drive(
        ex,
        rng,
        n,
        tally,
        no,
        state,
        stops,
        submit_one,
        None,
        final=lambda: ex.shutdown(wait=True),
        stats=lambda: ex._engine.stats(),
    )


class _Resource:
    __slots__ = ("id", "alive")

    def __init__(self, rid: int) -> None:
        self.id = rid
        self.alive = True


def _round_runner(core: ModuleType, rng: random.Random, n: int, tally: Tally, no: int) -> None:
    ids = itertools.count()
    created: list[int] = []
    destroyed: Counter[int] = Counter()
    book = threading.Lock()
    create_fail_p = rng.choice((0.0, 0.0, 0.05, 0.3))
    fail_rng = random.Random(rng.random())

    def on_create() -> _Resource:
        with book:
            if fail_rng.random() < create_fail_p:
                raise CreateFailed("injected on_create failure")
            r = _Resource(next(ids))
            created.append(r.id)
        return r

    def on_destroy(r: _Resource) -> None:
        with book:
            destroyed[r.id] += 1
        r.alive = False

    R = type(
        "Runner",
        (conexe.Runner,),
        {
            "_core": core,
            "_create_backoff": 0.0005,
            "_create_backoff_max": 0.005,
        },
    )
    max_retries = rng.randint(0, 2)
    bounded = rng.random() < 0.3
    on_full = rng.choice(("raise", "block"))
    runner = R(
        on_create,
        on_destroy,
        worker_count=rng.randint(1, 4),
        check_health=lambda exc: not isinstance(exc, Broken),
        max_retries=max_retries,
        resource_pool_size=rng.choice((0, 0, 1, 2)) if create_fail_p == 0 else 0,
        burst_task_threshold=rng.choice((None, 20)),
        burst_worker_count=2,
        burst_interval=0.002,
        max_queue_size=rng.randint(4, 256) if bounded else 0,
        on_full=on_full,
        block_timeout=0.005 if on_full == "block" else None,
    )
    stops = {"stop": runner.stop, "kill": runner.kill}
    breaks_of: dict[int, int] = {}

    def submit_one(i: int, action: int, opts: tuple[int, float | None] | None) -> Any:
        r = rng.random()
        breaks = 0 if r < 0.85 else (1 if r < 0.95 else 3)
        breaks_of[i] = breaks
        fn = functools.partial(_runner_body, state, i, action, breaks)
        once = rng.random() < 0.05
        priority = opts[0] if opts is not None else 0
        return runner.submit(fn, priority=priority, once=once), once

    def extra(i: int) -> None:
        if rng.random() < 0.005:
            try:
                got = runner.run_task(lambda res: res.id if res.alive else "dead")
            except (RuntimeError, CreateFailed):
                return
            tally.run_tasks += 1
            if got == "dead":
                tally.bad(no, "run_task got a destroyed resource")

    state = _State(n)
    _drive(
        runner,
        rng,
        n,
        tally,
        no,
        state,
        stops,
        submit_one,
        extra,
        final=runner.stop,
        stats=lambda: runner._engine.stats(),
        max_retries=max_retries,
        breaks_of=breaks_of,
    )
    tally.retried += runner._engine.stats()["retried"]
    with book:
        tally.resources += len(created)
        twice = [rid for rid, k in destroyed.items() if k != 1]
        missing = set(created) - set(destroyed)
        if twice or missing or len(created) != len(set(created)):
            tally.bad(
                no,
                f"resources destroyed more than once {twice[:5]}, "
                f"never destroyed {sorted(missing)[:5]}",
            )
    s = runner.stats()
    if s.active_workers or s.burst_workers or s.available_resources:
        tally.bad(no, f"Runner left workers/resources after stop: {s}")


def _drive(
    ex: Any,
    rng: random.Random,
    n: int,
    tally: Tally,
    no: int,
    state: _State,
    stops: dict[str, Callable[[], object]],
    submit_one: Callable[[int, int, Any], Any],
    extra: Callable[[int], None] | None,
    *,
    final: Callable[[], object],
    stats: Callable[[], dict[str, int]],
    max_retries: int = -1,
    breaks_of: dict[int, int] | None = None,
) -> None:
    """Submit ``n`` tasks with a random concurrent stop, then check."""
    before = set(threading.enumerate())
    stop_name = rng.choice([*stops, "none"])
    stop_at = rng.randrange(n + 1) if stop_name != "none" else -1
    stopper = _Stopper(stops.get(stop_name, lambda: None), stop_name)
    accepted: list[Row] = []
    cancels = rng.choice((0.0, 0.02, 0.2))
    refused_closed = 0
    try:
        for i in range(n):
            if i == stop_at:
                stopper.go.set()
            action = _pick_action(rng)
            opts = _maybe_task_options(rng)
            try:
                fut = submit_one(i, action, opts)
            except QueueFull:
                tally.refused += 1
                continue
            except RuntimeError:
                tally.refused += 1
                refused_closed += 1
                if refused_closed > 20:
                    break  # it is closed; enough checks that it stays so
                continue
            if fut is None:  # submit_unique: a duplicate key, nothing queued
                tally.refused += 1
                continue
            if max_retries >= 0:
                fut, once = fut
                assert breaks_of is not None
                accepted.append((i, action, fut, False, breaks_of[i], once))
            else:
                has_deadline = opts is not None and opts[1] is not None
                accepted.append((i, action, fut, has_deadline, 0, False))
            if cancels and accepted and rng.random() < cancels:
                accepted[rng.randrange(len(accepted))][2].cancel()
            if extra is not None:
                extra(i)
    finally:
        stopper.go.set()
        stopper.thread.join()
        final()
    tally.stops[stop_name] += 1
    if stopper.error is not None:
        tally.bad(no, f"{stop_name} from another thread raised {stopper.error!r}")
    if refused_closed and stop_name == "none":
        tally.bad(no, "submit raised RuntimeError with no shutdown")
    # Once closed, it stays closed.
    try:
        submit_one(n, OK, None)
    except RuntimeError:
        pass
    else:
        tally.bad(no, "submit accepted a task after shutdown")
    seen = _account(tally, no, state, accepted, max_retries)
    _check_counters(tally, no, stats(), seen, len(accepted))
    leaks = _thread_leaks(before)
    if leaks:
        tally.bad(no, f"threads alive after shutdown: {leaks}")


_ROUNDS = {"concurrent": _round_concurrent, "keyed": _round_keyed, "runner": _round_runner}


def stress(
    kind: str,
    core: str,
    tasks: int,
    seed: int = 0,
    seconds: float | None = None,
    round_size: tuple[int, int] = (100, 5000),
) -> Tally:
    """Run rounds of ``kind`` on ``core`` until ``tasks`` tasks were offered
    (or ``seconds`` passed); returns the :class:`Tally`."""
    rng = random.Random(f"{seed}-{kind}-{core}")
    tally = Tally(kind, core)
    t0 = time.monotonic()
    offered = 0
    while offered < tasks:
        if seconds is not None and time.monotonic() - t0 > seconds:
            break
        n = min(rng.randint(*round_size), tasks - offered)
        tally.rounds += 1
        _ROUNDS[kind](cores[core], rng, n, tally, tally.rounds)
        offered += n
    tally.seconds = time.monotonic() - t0
    return tally


def format_table(tallies: list[Tally]) -> str:
    cols = (
        "kind",
        "core",
        "rounds",
        "accepted",
        "refused",
        "ok",
        "failed",
        "base_exc",
        "expired",
        "cancelled",
        "retried",
        "resources",
        "seconds",
        "violations",
    )
    rows = [cols]
    for t in tallies:
        rows.append(
            (
                t.kind,
                t.core,
                str(t.rounds),
                str(t.accepted),
                str(t.refused),
                str(t.ok),
                str(t.failed),
                str(t.base_exceptions),
                str(t.expired),
                str(t.cancelled),
                str(t.retried),
                str(t.resources),
                f"{t.seconds:.1f}",
                str(len(t.violations)),
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(cols))]
    lines = [
        "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.stress",
        description="Stress every conexe executor on both cores and check that no "
        "task is lost, doubled or left pending.",
    )
    p.add_argument(
        "--tasks",
        type=int,
        default=60_000,
        help="tasks in total, split evenly over executors x cores (default 60000)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after about this many seconds in total, even if short of --tasks",
    )
    p.add_argument("--kinds", default=",".join(KINDS), help="comma list of " + ",".join(KINDS))
    p.add_argument("--cores", default=",".join(sorted(cores)), help="comma list: c,py")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    # Injected on_create failures and task errors would flood stderr.
    logging.getLogger("conexe").disabled = True
    kinds = args.kinds.split(",")
    use = args.cores.split(",")
    missing = [c for c in use if c not in cores]
    if missing:
        p.error(
            f"core(s) {missing} not available (build the extension: "
            "python setup.py build_ext --inplace)"
        )
    combos = [(k, c) for k in kinds for c in use]
    per = args.tasks // len(combos)
    budget = None if args.seconds is None else args.seconds / len(combos)
    tallies = []
    for kind, core in combos:
        t = stress(kind, core, per, args.seed, budget)
        tallies.append(t)
        print(
            f"{kind}/{core}: {t.accepted} accepted in {t.rounds} rounds, "
            f"{t.seconds:.1f} s, stops {dict(t.stops)}, {len(t.violations)} violations",
            flush=True,
        )
        for v in t.violations[:10]:
            print("  VIOLATION", v, flush=True)
    print(format_table(tallies))
    total = sum(t.accepted for t in tallies)
    print(f"total accepted: {total}; violations: {sum(len(t.violations) for t in tallies)}")
    return 1 if any(t.violations for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
