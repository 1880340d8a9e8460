"""Shared fixtures: every behaviour test runs against both cores.

``core`` is parametrized over the available cores (``"c"``, the Cython
extension, and ``"py"``, its pure-Python twin). ``make`` builds an API class
(``ConcurrentExecutor``, ``KeyedExecutor``, ``Runner``...) bound to that core.
The C runs carry the ``c_extension`` marker: ``--no-c-extensions`` deselects
them (a pure install); without it, a missing extension fails those tests
instead of silently testing only the twin. ``CONEXE_REQUIRE_EXTENSION=1``
(CI sets it) fails the whole run at once.
"""

from __future__ import annotations

import argparse
import os
import signal
from types import ModuleType
from typing import Any

import pytest

import support
from conexe._impl import cores
from support import bind_core

if os.environ.get("CONEXE_REQUIRE_EXTENSION") and "c" not in cores:
    raise RuntimeError("CONEXE_REQUIRE_EXTENSION is set but conexe._core is not importable")


C_EXTENSION = pytest.mark.c_extension

# Other projects' own suites, vendored to run with conexe in their executor
# slots; each runs in a child pytest with its own settings (see the
# test_*_suite.py that drives it), never collected with conexe's.
collect_ignore = ["thirdparty"]


# `.ci/run` sets CONEXE_SKIPPED_LOG for the README's test command (the test extra
# only): every test, module or folder it skips is listed there, and CI's main job
# runs just those again with every extra installed.
class SkippedLog:
    """Writes the node id of each skipped test or collector to a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _log(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped:
            with open(self.path, "a", encoding="utf-8") as log:
                log.write(report.nodeid + "\n")

    # A plugin, not conftest hooks: a folder whose own conftest skips it (tests/server)
    # is reported where the conftest hooks of this file are not consulted.
    pytest_collectreport = pytest_runtest_logreport = _log


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CONEXE_SKIPPED_LOG"):
        config.pluginmanager.register(SkippedLog(os.environ["CONEXE_SKIPPED_LOG"]))


# A shell starts a background job (`pytest ... &`, a CI runner's step) with SIGINT
# ignored, and an ignored signal stays ignored across exec: the Ctrl-C tests'
# child interpreters would never get theirs. A caught signal is reset to the
# default at exec, so catching it here gives every child a normal Ctrl-C.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=[pytest.param("c", marks=C_EXTENSION), "py"])
def core(request: pytest.FixtureRequest) -> ModuleType:
    """The core under test: the Cython extension ("c") or its twin ("py")."""
    if request.param not in cores:
        pytest.fail("conexe._core is not built: build it, or pass --no-c-extensions")
    return cores[request.param]  # type: ignore[return-value]


@pytest.fixture
def Executor(core: ModuleType) -> Any:  # noqa: N802 - it is a class
    import conexe

    return bind_core(conexe.ConcurrentExecutor, core)


@pytest.fixture
def make_executor(Executor: Any) -> Any:
    """``make_executor(*args, **kwargs)``: an executor bound to the core
    under test, shut down (queued work cancelled) when the test ends."""
    made: list[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        ex = Executor(*args, **kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def wait_until() -> Any:
    """``wait_until(predicate, timeout=10, what=...)``: poll until true, for
    state with no event to wait on (counters); fails the test on timeout."""
    return support.wait_until


# -- slow tests (stress, soak): skipped unless asked for ------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (long stress and leak runs)",
    )
    parser.addoption(
        "--c-extensions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the tests of the C core (marked c_extension); --no-c-extensions skips them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--c-extensions"):
        kept = [item for item in items if "c_extension" not in item.keywords]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    # `-m slow` (or any -m naming slow) selects them explicitly; otherwise a
    # plain `python -m pytest` stays quick.
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
