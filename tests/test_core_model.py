"""Hypothesis stateful tests: the core's lanes, priorities, bound, key map,
dedup and cancellation against a plain-Python model, for both cores.

One worker is held on a gate while the rules queue work; at teardown the
gate opens and the order in which tasks really ran must be the model's:
highest priority first, FIFO within a level, a key's tasks one at a time in
submission order, a key's next task joining the tail of its lane when the
previous one ends, cancelled tasks skipped (their key still advancing).
"""

from __future__ import annotations

import threading
from collections import deque
from types import ModuleType
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conexe import QueueFull
from conexe._impl import cores
from support import Blocker

MAX_QUEUE = 12
PRIORITIES = st.sampled_from([-1, 0, 0, 2, 5])
KEYS = st.sampled_from(["a", "b", "c", 7, (1, 2)])


class Model:
    """What a single worker must do, given what was queued."""

    def __init__(self) -> None:
        self.lanes: dict[int, deque[int]] = {}
        self.chains: dict[Any, deque[int]] = {}  # key -> tasks waiting behind its head
        self.key_of: dict[int, Any] = {}
        self.priority: dict[int, int] = {}
        self.cancelled: set[int] = set()
        self.queued = 0

    def enqueue(self, task: int) -> None:
        self.lanes.setdefault(self.priority[task], deque()).append(task)

    def submit(self, task: int, priority: int, key: Any = None, keyed: bool = False) -> None:
        self.priority[task] = priority
        self.queued += 1
        if keyed:
            self.key_of[task] = key
            if key in self.chains:
                self.chains[key].append(task)
                return
            self.chains[key] = deque()
        self.enqueue(task)

    def run_all(self) -> list[int]:
        ran = []
        while any(self.lanes.values()):
            top = max(p for p, lane in self.lanes.items() if lane)
            task = self.lanes[top].popleft()
            if task not in self.cancelled:
                ran.append(task)
            if task in self.key_of:
                key = self.key_of[task]
                if self.chains[key]:
                    self.enqueue(self.chains[key].popleft())
                else:
                    del self.chains[key]
        return ran


def make_machine(core: ModuleType) -> type[RuleBasedStateMachine]:
    class CoreMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.engine = core.Engine(MAX_QUEUE)
            self.worker = core.Worker()
            self.engine.add_workers(1)
            self.thread = threading.Thread(target=self.engine.worker_loop, args=(self.worker,))
            self.thread.start()
            self.gate = Blocker()
            self.engine.submit(self.gate, (), None)
            assert self.gate.started.wait(10)
            self.model = Model()
            self.ran: list[int] = []
            self.futures: dict[int, Any] = {}
            self.next_task = 0
            self.rejected = 0

        def _new(self) -> int:
            self.next_task += 1
            return self.next_task

        @rule(priority=PRIORITIES)
        def submit(self, priority: int) -> None:
            task = self._new()
            if self.model.queued >= MAX_QUEUE:
                try:
                    self.engine.submit_with(self.ran.append, (task,), None, priority=priority)
                except QueueFull:
                    self.rejected += 1
                    return
                raise AssertionError("a full queue accepted a task")
            fut = self.engine.submit_with(self.ran.append, (task,), None, priority=priority)
            self.futures[task] = fut
            self.model.submit(task, priority)

        @rule(key=KEYS, priority=PRIORITIES, unique=st.booleans())
        def submit_keyed(self, key: Any, priority: int, unique: bool) -> None:
            task = self._new()
            busy = key in self.model.chains
            assert self.engine.key_active(key) == busy
            if unique and busy:
                assert (
                    self.engine.submit_keyed(key, self.ran.append, (task,), None, unique=True)
                    is None
                )
                return
            if self.model.queued >= MAX_QUEUE:
                try:
                    self.engine.submit_keyed(
                        key, self.ran.append, (task,), None, priority=priority, unique=unique
                    )
                except QueueFull:
                    self.rejected += 1
                    return
                raise AssertionError("a full queue accepted a keyed task")
            fut = self.engine.submit_keyed(
                key, self.ran.append, (task,), None, priority=priority, unique=unique
            )
            assert fut is not None
            self.futures[task] = fut
            self.model.submit(task, priority, key, keyed=True)

        @precondition(lambda self: self.futures)
        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            task = data.draw(st.sampled_from(sorted(self.futures)))
            assert self.futures[task].cancel()
            self.model.cancelled.add(task)

        @invariant()
        def counters_match(self) -> None:
            s = self.engine.stats()
            assert s["queued"] == self.model.queued
            assert s["active_keys"] == len(self.model.chains)
            assert s["rejected"] == self.rejected

        def teardown(self) -> None:
            self.gate.release()
            for fut in self.futures.values():
                if not fut.cancelled():
                    fut.result(timeout=10)
            self.engine.close()
            self.thread.join(10)
            assert self.ran == self.model.run_all()
            s = self.engine.stats()
            assert s["queued"] == 0 and s["active_keys"] == 0 and s["running"] == 0
            assert s["submitted"] == s["completed"] + s["failed"] + s["cancelled"]
            assert s["cancelled"] == len(self.model.cancelled)

    CoreMachine.TestCase.settings = settings(
        max_examples=60,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return CoreMachine


for _name, _core in cores.items():
    globals()[f"TestCoreModel_{_name}"] = make_machine(_core).TestCase
