"""Shared fixtures: every behaviour test runs against both cores.

``core`` is parametrized over the available cores (``"c"``, the Cython
extension, and ``"py"``, its pure-Python twin). ``make`` builds an API class
(``ConcurrentExecutor``, ``KeyedExecutor``, ``Runner``...) bound to that core.
Set ``CONEXE_REQUIRE_EXTENSION=1`` (CI does) to fail if the extension is
missing instead of silently testing only the twin.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest

from conexe._impl import cores

if os.environ.get("CONEXE_REQUIRE_EXTENSION") and "c" not in cores:
    raise RuntimeError("CONEXE_REQUIRE_EXTENSION is set but conexe._core is not importable")


def bind_core(cls: type, core: ModuleType) -> type:
    """``cls`` with its core swapped (a subclass; same name)."""
    return type(cls.__name__, (cls,), {"_core": core})


@pytest.fixture(params=sorted(cores))
def core(request: pytest.FixtureRequest) -> ModuleType:
    return cores[request.param]


@pytest.fixture
def Executor(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    import conexe

    return bind_core(conexe.ConcurrentExecutor, core)
