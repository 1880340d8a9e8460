"""Helpers shared by the test modules (importable as ``support``; pytest
puts ``tests/`` on sys.path). Fixtures live in ``conftest.py``."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any


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
