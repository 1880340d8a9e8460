"""KeyedExecutor against a plain-Python model: random interleavings of
submits on a few keys, dedup, failures, a gate that holds every task until
it opens, and a final shutdown (draining or cancelling). Whatever the
timing, each key's tasks run in submission order, one at a time, and every
accepted task is accounted for exactly once."""

from __future__ import annotations

import threading
from collections import defaultdict
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conexe import KeyedExecutor
from support import bind_core

WAIT = 30

KEYS = st.sampled_from(["a", "b", 3, ("t", 1), None])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), KEYS, st.booleans()),
        st.tuples(st.just("unique"), KEYS, st.booleans()),
        st.tuples(st.just("open"), st.none(), st.just(False)),
    ),
    max_size=40,
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class Boom(Exception):
    pass


@pytest.fixture
def Keyed(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    return bind_core(KeyedExecutor, core)


class Probe:
    """What actually ran: per key, the order tasks started in, which have
    finished, and the most tasks of one key ever in flight together."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.lock = threading.Lock()
        self.started: dict[Any, list[int]] = defaultdict(list)
        self.finished: set[int] = set()
        self.in_flight: dict[Any, int] = defaultdict(int)
        self.max_overlap = 0

    def task(self, key: Any, seq: int, fails: bool) -> int:
        self.gate.wait(WAIT)
        with self.lock:
            self.in_flight[key] += 1
            self.max_overlap = max(self.max_overlap, self.in_flight[key])
            self.started[key].append(seq)
        try:
            threading.Event().wait(0.0001)  # let a wrong overlap happen
            if fails:
                raise Boom(seq)
            return seq
        finally:
            with self.lock:
                self.in_flight[key] -= 1
                self.finished.add(seq)


@SETTINGS
@given(ops=OPS, workers=st.integers(1, 4), cancel=st.booleans())
def test_random_interleavings_match_the_model(
    Keyed: Any, ops: list[tuple[str, Any, bool]], workers: int, cancel: bool
) -> None:
    gate = threading.Event()
    probe = Probe(gate)
    model: dict[Any, list[int]] = defaultdict(list)  # per key, accepted seqs in order
    futures: dict[int, Any] = {}
    fails: dict[int, bool] = {}
    ex = Keyed(max_workers=workers)
    try:
        for seq, (op, key, fail) in enumerate(ops):
            if op == "open":
                gate.set()
                continue
            if op == "submit":
                fut = ex.submit(key, probe.task, key, seq, fail)
            else:
                fut = ex.submit_unique(key, probe.task, key, seq, fail)
                if not gate.is_set():
                    # Nothing can finish while the gate is shut: a key with
                    # any accepted task is busy.
                    assert (fut is None) == bool(model[key]), (key, model[key])
                elif fut is not None:
                    # Accepted only once every earlier task of the key ended.
                    with probe.lock:
                        assert all(s in probe.finished for s in model[key])
            if fut is not None:
                model[key].append(seq)
                futures[seq] = fut
                fails[seq] = fail
    finally:
        if cancel:
            ex.shutdown(wait=False, cancel_futures=True)
        gate.set()
        ex.shutdown(wait=True)

    assert probe.max_overlap <= 1
    executed = 0
    for key, seqs in model.items():
        ran = probe.started.get(key, [])
        assert ran == seqs[: len(ran)], key  # a prefix, in submission order
        if not cancel:
            assert ran == seqs
        for seq in seqs[len(ran) :]:
            assert futures[seq].cancelled()
        for seq in ran:
            if fails[seq]:
                assert isinstance(futures[seq].exception(timeout=WAIT), Boom)
            else:
                assert futures[seq].result(timeout=WAIT) == seq
        executed += len(ran)
    s = ex.stats()
    n_failed = sum(1 for seqs in probe.started.values() for q in seqs if fails[q])
    assert s.submitted == len(futures)
    assert (s.completed, s.failed) == (executed - n_failed, n_failed)
    assert s.cancelled == len(futures) - executed
    assert (s.pending, s.running, s.active_keys) == (0, 0, 0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.lists(st.tuples(st.integers(0, 2), KEYS), min_size=1, max_size=60),
    workers=st.integers(1, 4),
)
def test_each_producers_tasks_on_a_key_keep_that_producers_order(
    Keyed: Any, plan: list[tuple[int, Any]], workers: int
) -> None:
    gate = threading.Event()
    gate.set()
    probe = Probe(gate)
    by_producer: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for seq, (producer, key) in enumerate(plan):
        by_producer[producer].append((seq, key))
    start = threading.Barrier(len(by_producer))

    def produce(ex: Any, items: list[tuple[int, Any]]) -> None:
        start.wait(WAIT)
        for seq, key in items:
            ex.submit(key, probe.task, key, seq, False)

    with Keyed(max_workers=workers) as ex:
        threads = [
            threading.Thread(target=produce, args=(ex, items)) for items in by_producer.values()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
    assert probe.max_overlap <= 1
    for items in by_producer.values():
        for key in {k for _, k in items}:
            mine = [seq for seq, k in items if k == key]
            assert [seq for seq in probe.started[key] if seq in mine] == mine
    assert ex.stats().completed == len(plan)
