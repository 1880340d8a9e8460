"""Helpers shared by the test modules (importable as ``support``; pytest
puts ``tests/`` on sys.path). Fixtures live in ``conftest.py``."""

from __future__ import annotations

from types import ModuleType


def bind_core(cls: type, core: ModuleType) -> type:
    """``cls`` with its core swapped (a subclass; same name)."""
    return type(cls.__name__, (cls,), {"_core": core})
