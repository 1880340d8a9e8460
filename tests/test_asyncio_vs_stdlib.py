"""asyncio scenarios run side by side: conexe against the stdlib pool.

Each scenario is a coroutine given an executor; it returns what a coroutine
can observe (states, results, exception types, threads, contexts). It runs
once on ``concurrent.futures.ThreadPoolExecutor``, whose futures asyncio
chains to its own, and once on conexe's ``ThreadPoolExecutor`` (each core),
whose futures are asyncio's own inside their loop; the observations must be
equal. This is how uvloop tests itself against asyncio: the stdlib is the
specification, so a fast path that changes what asyncio code sees fails
here, however fast.

The invariant most of them check: a future asyncio has changes state, seen
from its loop, only in the loop's thread, so a coroutine that does not await
never sees it change (asgiref's ``sync_to_async`` cancellation relies on it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import inspect
import threading
import time
import types
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import bind_core

Scenario = Callable[[Any], Awaitable[Any]]
SCENARIOS: dict[str, Scenario] = {}

# How long a coroutine holds the loop without awaiting while a task ends
# in a worker: long enough for any worker to finish a task that is free to.
HOLD = 0.2


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def hold_the_loop_until(event: threading.Event) -> None:
    """Block the loop's thread (no await) until ``event``, then a little
    more: whatever a worker does meanwhile happens off the loop's thread."""
    assert event.wait(10)
    time.sleep(HOLD / 4)


class HeldTask:
    """A task that says when it starts and ends in its worker, and runs
    until ``release`` is set; it returns ``value``."""

    def __init__(self, value: str) -> None:
        self.started, self.release, self.ended = (threading.Event() for _ in range(3))
        self.value = value

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(10)
        self.ended.set()
        return self.value


def view(fut: Any) -> tuple[Any, ...]:
    """What a coroutine sees of an asyncio future right now."""
    state = "cancelled" if fut.cancelled() else "done" if fut.done() else "pending"
    outcome: Any
    try:
        outcome = ("result", fut.result())
    except BaseException as exc:  # noqa: BLE001 - the type is the observation
        outcome = ("raises", type(exc))
    return state, outcome


def ready_futures(ex: Any) -> dict[str, Callable[[Callable[[], Any]], Any]]:
    """The ways asyncio code gets a future for work in ``ex``."""
    loop = asyncio.get_running_loop()
    return {
        "run_in_executor": lambda fn: loop.run_in_executor(ex, fn),
        "run_in_executor(None)": lambda fn: loop.run_in_executor(None, fn),
        "wrap_future": lambda fn: asyncio.wrap_future(ex.submit(fn)),
        "ensure_future": lambda fn: ensure_future(ex.submit(fn)),
    }


def ensure_future(fut: Any) -> Any:
    """``asyncio.ensure_future(fut)`` for an awaitable future; the stdlib
    pool's are not awaitable, and wrap_future is their ensure_future."""
    return asyncio.ensure_future(fut) if inspect.isawaitable(fut) else asyncio.wrap_future(fut)


@scenario
async def a_future_ends_for_its_loop_only_between_awaits(ex: Any) -> Any:
    # The reproduction: the task ends while the coroutine polls.
    seen = {}
    for how, make in ready_futures(ex).items():
        go, ended = threading.Event(), threading.Event()

        def task(go: threading.Event = go, ended: threading.Event = ended) -> str:
            # Gated: on a loaded machine the loop's thread can lose its core for
            # longer than the task runs, and the task must end after `before`.
            assert go.wait(10)
            time.sleep(0.02)
            ended.set()
            return "ok"

        fut = make(task)
        before = view(fut)
        go.set()
        flipped = False
        deadline = time.monotonic() + HOLD
        while time.monotonic() < deadline:
            flipped |= fut.done() or fut.cancelled()
        assert ended.wait(10)
        during = view(fut)
        await asyncio.sleep(0)
        while not fut.done():
            await asyncio.sleep(0.001)
        seen[how] = (before, flipped, during, view(fut), await fut)
    return seen


@scenario
async def cancelling_the_awaiting_task_while_the_thread_runs(ex: Any) -> Any:
    task = HeldTask("dropped")
    loop = asyncio.get_running_loop()
    handled: list[Any] = []
    loop.set_exception_handler(lambda loop, context: handled.append(context))
    fut = loop.run_in_executor(ex, task)
    awaiting = asyncio.ensure_future(fut)
    while not task.started.is_set():
        await asyncio.sleep(0.001)
    awaiting.cancel()
    begun = time.monotonic()
    try:
        await awaiting
        outcome: Any = "returned"
    except asyncio.CancelledError:
        outcome = "CancelledError"
    prompt = time.monotonic() - begun < 1
    task.release.set()
    await loop.run_in_executor(None, task.ended.wait, 10)
    await asyncio.sleep(0.05)
    return outcome, prompt, task.ended.is_set(), view(fut), view(awaiting), handled


@scenario
async def cancel_with_a_message(ex: Any) -> Any:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blocker = loop.run_in_executor(ex, release.wait, 10)
    queued = loop.run_in_executor(ex, release.wait, 10)
    seen = []
    for fut in (blocker, queued):
        seen.append(fut.cancel("why"))
        seen.append(fut.cancel("again"))
        try:
            await fut
        except asyncio.CancelledError as exc:
            seen.append(("CancelledError", exc.args))
        seen.append(view(fut))
    task = asyncio.ensure_future(loop.run_in_executor(ex, release.wait, 10))
    await asyncio.sleep(0)
    task.cancel("task's")
    try:
        await task
    except asyncio.CancelledError as exc:
        seen.append(("task", exc.args))
    release.set()
    return seen


@scenario
async def shield_cancel_and_an_inner_task_that_swallows_it(ex: Any) -> Any:
    # asgiref's SyncToAsync.__call__, cut down: the awaiting task is
    # cancelled, the inner work is told to stop and ends on its own, and the
    # outer code decides from exec_fut.done() whether to re-raise.
    loop = asyncio.get_running_loop()
    work = HeldTask("finished")

    async def call() -> Any:
        exec_fut = loop.run_in_executor(ex, work)
        try:
            return await asyncio.shield(exec_fut)
        except asyncio.CancelledError:
            work.release.set()  # the inner side swallows the cancellation
            hold_the_loop_until(work.ended)
            if exec_fut.done():
                raise
            return ("swallowed", view(exec_fut), await exec_fut)

    outer = asyncio.ensure_future(call())
    while not work.started.is_set():
        await asyncio.sleep(0.001)
    outer.cancel()
    try:
        return ("returned", await outer)
    except asyncio.CancelledError:
        return "re-raised"


@scenario
async def wait_for_times_out_and_the_thread_runs_on(ex: Any) -> Any:
    loop = asyncio.get_running_loop()
    finished = threading.Event()

    def slow() -> str:
        time.sleep(0.1)
        finished.set()
        return "late"

    fut = loop.run_in_executor(ex, slow)
    begun = time.monotonic()
    try:
        await asyncio.wait_for(fut, 0.01)
        outcome: Any = "returned"
    except TimeoutError:
        outcome = "TimeoutError"
    prompt = time.monotonic() - begun < 0.09
    await loop.run_in_executor(None, finished.wait, 10)
    in_time = await asyncio.wait_for(loop.run_in_executor(ex, abs, -3), 10)
    return outcome, prompt, view(fut), finished.is_set(), in_time


@scenario
async def gather_with_return_exceptions(ex: Any) -> Any:
    loop = asyncio.get_running_loop()
    release = threading.Event()

    def fail() -> None:
        raise ValueError("no")

    blocker = loop.run_in_executor(ex, release.wait, 10)
    futs = [
        loop.run_in_executor(ex, abs, -1),
        loop.run_in_executor(ex, fail),
        loop.run_in_executor(ex, release.wait, 10),
        asyncio.wrap_future(ex.submit(pow, 2, 3)),
    ]
    futs[2].cancel()
    got = await asyncio.gather(*futs, return_exceptions=True)
    release.set()
    await blocker
    return [type(x).__name__ if isinstance(x, BaseException) else x for x in got]


@scenario
async def exception_types_and_invalid_state(ex: Any) -> Any:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    seen = []
    pending = loop.run_in_executor(ex, release.wait, 10)
    for read in (pending.result, pending.exception):
        try:
            read()
        except BaseException as exc:  # noqa: BLE001
            seen.append((type(exc).__module__, type(exc).__name__))
    cancelled = loop.run_in_executor(ex, release.wait, 10)
    cancelled.cancel()
    await asyncio.sleep(0)
    for read in (cancelled.result, cancelled.exception):
        try:
            read()
        except BaseException as exc:  # noqa: BLE001
            seen.append(type(exc) is asyncio.CancelledError)
    release.set()
    failed = loop.run_in_executor(ex, int, "x")
    try:
        await failed
    except ValueError as exc:
        seen.append(("ValueError", failed.exception() is exc))
    seen.append(await pending)
    return seen


var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@scenario
async def callbacks_run_in_the_loop_thread_in_their_context(ex: Any) -> Any:
    loop = asyncio.get_running_loop()
    me = threading.get_ident()
    calls: list[Any] = []

    def record(tag: str) -> Callable[[Any], None]:
        return lambda fut: calls.append((tag, threading.get_ident() == me, var.get()))

    go = threading.Event()  # the task ends only once the callbacks are in
    fut = loop.run_in_executor(ex, go.wait)
    var.set("when added")
    fut.add_done_callback(record("default context"))
    given = contextvars.copy_context()
    given.run(var.set, "given")
    fut.add_done_callback(record("given context"), context=given)
    removed = record("removed")
    fut.add_done_callback(removed)
    fut.add_done_callback(removed)
    count = fut.remove_done_callback(removed)
    var.set("later")
    go.set()
    await fut
    await asyncio.sleep(0)
    fut.add_done_callback(record("added when done"))
    immediately = list(calls)
    await asyncio.sleep(0)
    return count, immediately, calls


@scenario
async def yield_from_in_a_generator_based_coroutine(ex: Any) -> Any:
    loop = asyncio.get_running_loop()

    @types.coroutine
    def old_style() -> Any:
        first = yield from loop.run_in_executor(ex, abs, -5)
        second = yield from loop.run_in_executor(None, pow, 2, 4)
        return first, second

    return await old_style()


def awaitable(fut: Any) -> Any:
    """What ``await`` is given for ``fut``: itself when it is awaitable
    (conexe's), else the asyncio future wrap_future makes (the stdlib's)."""
    return fut if inspect.isawaitable(fut) else asyncio.wrap_future(fut)


@scenario
async def a_future_that_ended_before_asyncio_first_sees_it(ex: Any) -> Any:
    # What asyncio's own future for it shows differs by version: before 3.14
    # wrap_future copies the state with call_soon_threadsafe, so the loop sees
    # the end on its next turn (and `await` yields once); from 3.14 it copies
    # at once in the loop's thread. Either way, callbacks run a turn later.
    ways: dict[str, Callable[[Any], Any]] = {
        "wrap_future": asyncio.wrap_future,
        "ensure_future": ensure_future,
        "gather": lambda fut: asyncio.gather(awaitable(fut)),
    }
    submitters = {
        "submitted in the loop": lambda: ex.submit(abs, -1),
        "submitted in another thread": lambda: asyncio.to_thread(ex.submit, abs, -2),
    }
    seen: dict[str, Any] = {}
    for where, submit in submitters.items():
        for how, wrap in ways.items():
            fut = submit()
            if inspect.isawaitable(fut) and not isinstance(fut, cf.Future):
                fut = await fut  # to_thread's: the future submitted there
            cf.wait([fut])  # ended, and no asyncio code has looked at it
            order: list[str] = []
            seen_by_asyncio = wrap(fut)
            seen_by_asyncio.add_done_callback(lambda _, order=order: order.append("callback"))
            before = view(seen_by_asyncio)
            order.append("before the turn")
            await asyncio.sleep(0)
            seen[f"{where}, {how}"] = (before, view(seen_by_asyncio), list(order))
        # `await fut` itself: whether a task scheduled before runs first
        # (the coroutine yields to the loop) is what `await wrap_future(fut)` does.
        fut = submit()
        if inspect.isawaitable(fut) and not isinstance(fut, cf.Future):
            fut = await fut
        cf.wait([fut])
        order = []

        async def other(order: list[str] = order) -> None:
            order.append("another task")

        first = asyncio.ensure_future(other())
        order.append(f"awaited {await awaitable(fut)}")
        await first
        seen[f"{where}, await"] = order
    return seen


@scenario
async def the_future_protocol_asyncio_relies_on(ex: Any) -> Any:
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(ex, time.sleep, 0.01)
    seen: list[Any] = [
        asyncio.isfuture(fut),
        fut.get_loop() is loop,
        fut._asyncio_future_blocking,
        callable(getattr(fut, "__await__", None)),
        callable(getattr(fut, "__iter__", None)),
    ]
    await fut
    seen.append(fut._asyncio_future_blocking)
    seen.append(await asyncio.wait_for(asyncio.shield(fut), 1))
    done, _ = await asyncio.wait([fut, loop.run_in_executor(ex, abs, -1)])
    seen.append(len(done))
    return seen


def run_on(scenario: Scenario, make: Callable[[], Any]) -> Any:
    ex = make()

    async def main() -> Any:
        asyncio.get_running_loop().set_default_executor(make())
        return await scenario(ex)

    try:
        return asyncio.run(main())
    finally:
        ex.shutdown(wait=True)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_conexe_shows_asyncio_what_the_stdlib_pool_shows(core: ModuleType, name: str) -> None:
    pool = bind_core(conexe.ThreadPoolExecutor, core)
    expected = run_on(SCENARIOS[name], lambda: cf.ThreadPoolExecutor(2))
    assert run_on(SCENARIOS[name], lambda: pool(2)) == expected


def test_a_loop_closed_with_work_in_flight(core: ModuleType) -> None:
    # Nothing is observed in the loop after it closes, so this one compares
    # what outlives it: the task runs to its end, the futures kept outside
    # see its result, and closing raises nothing.
    pool = bind_core(conexe.ThreadPoolExecutor, core)

    def outlive(make: Callable[[], Any]) -> Any:
        ex = make()
        release, finished = threading.Event(), threading.Event()

        def task() -> str:
            release.wait(10)
            finished.set()
            return "after close"

        loop = asyncio.new_event_loop()
        kept: list[Any] = []

        async def submit() -> None:
            kept.append(ex.submit(task))
            asyncio.ensure_future(asyncio.wrap_future(kept[0]))
            loop.run_in_executor(ex, task)

        loop.run_until_complete(submit())
        loop.close()
        release.set()
        try:
            return kept[0].result(10), finished.wait(10), loop.is_closed()
        finally:
            ex.shutdown(wait=True)

    assert outlive(lambda: pool(2)) == outlive(lambda: cf.ThreadPoolExecutor(2))
