"""Helpers shared by the test modules (importable as ``support``; pytest
puts ``tests/`` on sys.path). Fixtures live in ``conftest.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


def bind_core(cls: type, core: ModuleType) -> type:
    """``cls`` with its core swapped (a subclass; same name)."""
    return type(cls.__name__, (cls,), {"_core": core})


class Blocker:
    """A task that holds its worker until released: ``started`` is set when
    it runs, ``release()`` lets it (and any other holder) return."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()

    def __call__(self, value: Any = None) -> Any:
        self.started.set()
        if not self.gate.wait(30):
            raise RuntimeError("Blocker was never released")
        return value

    def release(self) -> None:
        self.gate.set()


def wait_until(
    check: Callable[[], T], timeout: float = 10.0, what: str = "condition", poll: float = 0.002
) -> T:
    """Poll ``check()`` until it returns something truthy, and return that;
    fail after ``timeout`` seconds with the last value seen. For state that
    has no event to wait on (counters, stats); everything else waits on an
    event (see :class:`Blocker`)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: wait() is an interruptible sleep
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s; last: {last!r}")
        pause.wait(poll)
