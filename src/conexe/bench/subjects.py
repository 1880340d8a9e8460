"""What ``python -m conexe bench`` runs its idioms on: for each kind of
work, the ThreadPoolExecutor way ("TPE") and the conexe way on each core.

    >>> with open_subject("py", "noop", 2) as s:
    ...     s.submit_one().result() is None
    True
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .baselines import ChainedKeyedPool, tpe_make_resource, tpe_use_resource, use_resource
from .idioms import Subject

__all__ = ["KINDS", "REFERENCE", "Factory", "executor_factories", "open_subject", "warm"]

Factory = Callable[[int], cf.Executor]
REFERENCE = "TPE"  # every ratio divides by it
KEYS = 64  # keys the keyed work spreads over
SLEEP_S = 0.001

# kind -> what the TPE column runs for it
KINDS = {
    "noop": "ThreadPoolExecutor",
    "sleep": "ThreadPoolExecutor",
    "keyed": "ThreadPoolExecutor + per-key chained futures",
    "runner": "ThreadPoolExecutor + a thread-local resource",
}


def noop(*_: object) -> None:
    return None


def executor_factories() -> dict[str, Factory]:
    """``{"TPE": ..., "c": ..., "py": ...}``: ``factory(max_workers)`` makes an
    executor; "c" is missing when the extension isn't built.

        >>> with executor_factories()["py"](2) as ex:
        ...     ex.submit(abs, -3).result()
        3
    """
    from .. import ConcurrentExecutor
    from .._impl import cores

    out: dict[str, Factory] = {REFERENCE: lambda n: cf.ThreadPoolExecutor(max_workers=n)}
    for name in ("c", "py"):
        if name in cores:
            # A subclass with its core swapped, exactly as the tests bind one.
            bound = {"_core": cores[name]}
            out[name] = type(ConcurrentExecutor.__name__, (ConcurrentExecutor,), bound)
    return out


def warm(ex: Any, workers: int, timeout: float = 30.0) -> None:
    """Start all ``workers`` threads of ``ex`` (anything with ``submit``)
    before anything is timed: a barrier that opens only once ``workers``
    tasks run at once forces every thread into being, so thread start-up
    is never part of a measurement."""
    barrier = threading.Barrier(workers + 1)
    futs = [ex.submit(barrier.wait, timeout) for _ in range(workers)]
    barrier.wait(timeout)
    for f in futs:
        f.result()


@contextlib.contextmanager
def _executor_subject(impl: str, kind: str, workers: int) -> Iterator[Subject]:
    ex = executor_factories()[impl](workers)
    task: Callable[..., Any] = time.sleep if kind == "sleep" else noop
    arg: Any = SLEEP_S if kind == "sleep" else None
    try:
        warm(ex, workers)
        submit = ex.submit
        yield Subject(lambda: submit(task, arg), ex, task, arg)
    finally:
        ex.shutdown(wait=True)


@contextlib.contextmanager
def _keyed_subject(impl: str, workers: int) -> Iterator[Subject]:
    from .. import KeyedExecutor
    from .._impl import cores

    pool: Any = (
        ChainedKeyedPool(workers)
        if impl == REFERENCE
        else type("KeyedExecutor", (KeyedExecutor,), {"_core": cores[impl]})(workers)
    )
    keys = itertools.cycle(range(KEYS)).__next__
    submit = pool.submit
    try:
        for f in [submit(k, noop) for k in range(1000)]:  # threads started
            f.result()
        yield Subject(lambda: submit(keys(), noop))
    finally:
        pool.shutdown()


@contextlib.contextmanager
def _runner_subject(impl: str, workers: int) -> Iterator[Subject]:
    from .. import Runner
    from .._impl import cores

    if impl == REFERENCE:
        ex = cf.ThreadPoolExecutor(workers, initializer=tpe_make_resource)
        warm(ex, workers)
        try:
            submit = ex.submit
            yield Subject(lambda: submit(tpe_use_resource))
        finally:
            ex.shutdown()
        return
    runner = type("Runner", (Runner,), {"_core": cores[impl]})(object, worker_count=workers)
    try:
        rsubmit = runner.submit
        for f in [rsubmit(use_resource) for _ in range(1000)]:
            f.result()
        yield Subject(lambda: rsubmit(use_resource))
    finally:
        runner.stop()


def open_subject(impl: str, kind: str, workers: int) -> contextlib.AbstractContextManager[Subject]:
    """A context manager giving the :class:`Subject` for ``impl`` ("TPE",
    "c", "py") and ``kind`` (see :data:`KINDS`) on ``workers`` warm workers."""
    if kind == "keyed":
        return _keyed_subject(impl, workers)
    if kind == "runner":
        return _runner_subject(impl, workers)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    return _executor_subject(impl, kind, workers)
