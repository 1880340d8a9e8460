"""The ways a caller waits for many tasks, each timed the same way on any
executor-like *subject*, for ``python -m conexe bench``.

An idiom takes a :class:`Subject` and a task count, submits that many tasks
and waits for all of them in its own way; it returns the seconds that took.

    >>> import concurrent.futures as cf
    >>> with cf.ThreadPoolExecutor(2) as ex:
    ...     subject = Subject(lambda: ex.submit(abs, -1), ex)
    ...     IDIOMS["wait"].run(subject, 100) > 0
    True
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["IDIOMS", "Idiom", "Subject"]

# How many tasks a FIRST_COMPLETED refill loop keeps in flight.
REFILL_WINDOW = 256
NOT_ACCEPTED = "not accepted"


@dataclass
class Subject:
    """What an idiom drives: ``submit_one()`` submits one task and returns
    its future; ``executor`` is the executor itself where the idiom needs
    one (``map``, asyncio's default executor), else None; ``task`` and
    ``args`` are the task ``map`` runs."""

    submit_one: Callable[[], cf.Future[Any]]
    executor: cf.Executor | None = None
    task: Callable[..., Any] | None = None
    arg: Any = None


@dataclass
class Idiom:
    key: str
    title: str
    run: Callable[[Subject, int], float]
    needs_executor: bool = False


class NotAccepted(Exception):
    """The executor can't be used this way (e.g. asyncio refuses it)."""


def _executor_parts(s: Subject) -> tuple[cf.Executor, Callable[..., Any], Any]:
    if s.executor is None or s.task is None:
        raise ValueError("this way of waiting needs the executor itself")
    return s.executor, s.task, s.arg


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def result_loop(s: Subject, n: int) -> float:
    """``for f in futures: f.result()``."""

    def go() -> None:
        futs = [s.submit_one() for _ in range(n)]
        for f in futs:
            f.result()

    return _timed(go)


def map_all(s: Subject, n: int) -> float:
    """``deque(ex.map(task, [arg] * n), 0)``."""
    ex, task, arg = _executor_parts(s)
    args = [arg] * n
    return _timed(lambda: deque(ex.map(task, args), 0))


def wait_all(s: Subject, n: int) -> float:
    """``concurrent.futures.wait(futures)``."""

    def go() -> None:
        futs = [s.submit_one() for _ in range(n)]
        if cf.wait(futs).not_done:
            raise RuntimeError("wait() returned before every future was done")

    return _timed(go)


def iterate_as_completed(s: Subject, n: int) -> float:
    """``for f in concurrent.futures.as_completed(futures): f.result()``."""

    def go() -> None:
        futs = [s.submit_one() for _ in range(n)]
        for f in cf.as_completed(futs):
            f.result()

    return _timed(go)


def first_completed_loop(s: Subject, n: int) -> float:
    """Keep ``REFILL_WINDOW`` tasks in flight: ``wait(pending,
    return_when=FIRST_COMPLETED)``, then submit one task per finished one."""

    def go() -> None:
        first = min(n, REFILL_WINDOW)
        pending = {s.submit_one() for _ in range(first)}
        left = n - first
        while pending:
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for f in done:
                f.result()
                if left:
                    left -= 1
                    pending.add(s.submit_one())

    return _timed(go)


def done_callbacks(s: Subject, n: int) -> float:
    """``f.add_done_callback(cb)`` on each future; the last callback to run
    sets an Event the caller waits on."""

    def go() -> None:
        all_done = threading.Event()
        count = itertools.count(1).__next__  # atomic, so callbacks need no lock

        def cb(_: cf.Future[Any]) -> None:
            if count() == n:
                all_done.set()

        for _ in range(n):
            s.submit_one().add_done_callback(cb)
        if not all_done.wait(600):
            raise RuntimeError("the callbacks did not all run")

    return _timed(go)


def wrap_futures(s: Subject, n: int) -> float:
    """Futures submitted outside any event loop, then, in one:
    ``await asyncio.gather(*[asyncio.wrap_future(f) for f in futures])``."""

    async def gather(futs: list[cf.Future[Any]]) -> None:
        await asyncio.gather(*[asyncio.wrap_future(f) for f in futs])

    def go() -> None:
        futs = [s.submit_one() for _ in range(n)]
        asyncio.run(gather(futs))

    return _timed(go)


def run_in_executor(s: Subject, n: int) -> float:
    """``await asyncio.gather(*[loop.run_in_executor(ex, task, arg)...])``."""
    ex, task, arg = _executor_parts(s)

    async def flood() -> float:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        await asyncio.gather(*[loop.run_in_executor(ex, task, arg) for _ in range(n)])
        return time.perf_counter() - t0

    return asyncio.run(flood())


def to_thread(s: Subject, n: int) -> float:
    """``loop.set_default_executor(ex)``, then
    ``await asyncio.gather(*[asyncio.to_thread(task, arg)...])``. Raises
    :class:`NotAccepted` if asyncio refuses the executor."""
    ex, task, arg = _executor_parts(s)

    async def flood() -> float:
        loop = asyncio.get_running_loop()
        try:
            loop.set_default_executor(ex)
        except TypeError as exc:
            raise NotAccepted(str(exc)) from None
        t0 = time.perf_counter()
        await asyncio.gather(*[asyncio.to_thread(task, arg) for _ in range(n)])
        return time.perf_counter() - t0

    # The subject's owner shuts the executor down, not the loop: asyncio.run()
    # and loop.close() both shut the default executor down, so the loop is
    # closed with none installed (no public call uninstalls one).
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(flood())
    finally:
        loop._default_executor = None  # type: ignore[attr-defined]
        loop.close()


IDIOMS: dict[str, Idiom] = {
    i.key: i
    for i in (
        Idiom("result", "for f in futures: f.result()", result_loop),
        Idiom("map", "ex.map(task, items)", map_all, needs_executor=True),
        Idiom("wait", "concurrent.futures.wait(futures)", wait_all),
        Idiom("as_completed", "for f in as_completed(futures)", iterate_as_completed),
        Idiom(
            "first_completed",
            f"wait(FIRST_COMPLETED) refill loop, {REFILL_WINDOW} in flight",
            first_completed_loop,
        ),
        Idiom("callback", "f.add_done_callback(cb) per task", done_callbacks),
        Idiom("wrap_future", "asyncio.wrap_future(f), gathered", wrap_futures),
        Idiom(
            "run_in_executor",
            "loop.run_in_executor(ex, task), gathered",
            run_in_executor,
            needs_executor=True,
        ),
        Idiom(
            "to_thread",
            "asyncio.to_thread(task) with set_default_executor(ex)",
            to_thread,
            needs_executor=True,
        ),
    )
}
