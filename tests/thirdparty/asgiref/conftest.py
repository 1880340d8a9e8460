"""conexe in every executor slot of asgiref's own test suite.

Run by ``tests/test_asgiref_suite.py`` in a child pytest with this folder as
its root (``pytest.ini`` here, not conexe's settings). ``CONEXE_CORE`` names
the core ("c" or "py"); unset or "stdlib", the suite runs on the stdlib pool,
the baseline the conexe runs are held to.

``concurrent.futures.ThreadPoolExecutor`` is replaced before asgiref and the
test modules import it, so every pool asgiref makes (``SyncToAsync``'s
single-thread and thread-sensitive executors), every pool the tests make, and
every loop's default executor (asyncio creates it through that same name) is
a conexe ``ThreadPoolExecutor`` bound to the core under test.
"""

from __future__ import annotations

import concurrent.futures
import os

import pytest

_CORE = os.environ.get("CONEXE_CORE", "stdlib")

if _CORE != "stdlib":
    import conexe
    from conexe._impl import cores

    if _CORE not in cores:
        raise RuntimeError(f"CONEXE_CORE={_CORE!r}: no such core here ({sorted(cores)})")
    slot = type("ThreadPoolExecutor", (conexe.ThreadPoolExecutor,), {"_core": cores[_CORE]})
    concurrent.futures.ThreadPoolExecutor = slot  # type: ignore[misc]

    import asgiref.sync

    asgiref.sync.ThreadPoolExecutor = slot  # type: ignore[misc]


def pytest_report_header(config: pytest.Config) -> str:
    return f"executor under test: {concurrent.futures.ThreadPoolExecutor!r} (CONEXE_CORE={_CORE})"
