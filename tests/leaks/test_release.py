"""Arguments, results and exceptions are released once a task is over,
on every executor and both cores, by reference counting alone (the cyclic
GC is off during each test: a reference cycle counts as a leak here, since
under load it keeps every failed task's data until the next collection).

A task's arguments go when it ends (finished, failed, cancelled, expired);
its result or exception goes with its future. A failed task's traceback
holds its frame, and so its arguments, until the future goes.

"Goes" means at once on a GIL build. On a free-threaded build, an object
that a worker made (a result, an exception, its traceback's frame) and
another thread dropped goes when that worker next runs Python code: biased
reference counting hands the last decrement back to the thread that owns
the object. The tests then give the worker one more task and check that
the object is gone after it, which is what a long-lived pool guarantees.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import gc
import threading
import weakref
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import conexe
from conexe import Task
from support import Blocker, bind_core, let_worker_run

KINDS = ("concurrent", "keyed", "runner")
WAIT = 30.0


class Obj:
    """A weakref-able argument / result."""


class Boom(Exception):
    pass


class Exit(SystemExit):  # a BaseException that supports weakrefs
    pass


def _raise(kind: type[BaseException], arg: Any) -> None:
    raise kind(arg)


def _make_result(arg: Any) -> Obj:
    return Obj()


def _without_resource(fn: Callable[..., Any], args: tuple[Any, ...], resource: Any) -> Any:
    return fn(*args)


class Kit:
    """One executor of ``kind`` on ``core`` with one worker, seen through
    the same few calls."""

    def __init__(self, kind: str, core: ModuleType, **kwargs: Any) -> None:
        self.kind = kind
        self.gate = Blocker()
        if kind == "concurrent":
            self.ex = bind_core(conexe.ConcurrentExecutor, core)(1, **kwargs)
        elif kind == "keyed":
            self.ex = bind_core(conexe.KeyedExecutor, core)(1, **kwargs)
        else:
            self.ex = bind_core(conexe.Runner, core)(Obj, worker_count=1, **kwargs)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.kind == "concurrent":
            return self.ex.submit(fn, *args)
        if self.kind == "keyed":
            return self.ex.submit("k", fn, *args)
        return self.ex.submit(functools.partial(_without_resource, fn, args))

    def submit_task(self, task: Task) -> Any:
        if self.kind == "keyed":
            return self.ex.submit_task("k", task)
        return self.ex.submit_task(task)

    def block(self) -> Any:
        """Occupy the only worker until release()."""
        fut = self.submit(self.gate)
        assert self.gate.started.wait(WAIT)
        return fut

    def release(self) -> None:
        self.gate.release()

    def close(self, cancel: bool = False, release: bool = True) -> None:
        """Shut the executor down (``cancel``: dropping what is queued),
        releasing the blocker first unless ``release`` is False."""
        if release:
            self.gate.release()
        if self.kind == "runner":
            self.ex.kill() if cancel else self.ex.stop()
        else:
            self.ex.shutdown(wait=True, cancel_futures=cancel)


@pytest.fixture(autouse=True)
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest, core: ModuleType) -> Iterator[Kit]:
    k = Kit(request.param, core)
    yield k
    k.close(cancel=True)


def _gone(ref: weakref.ref[Any], wait_until: Any, what: str, kit: Kit | None = None) -> None:
    # The worker drops its last local references just after completing the
    # future: poll briefly rather than sleep. On a free-threaded build an
    # object the worker made is freed once that worker runs again (see
    # support.let_worker_run): with ``kit`` given, each poll gives it a task.
    def released() -> bool:
        if kit is not None and ref() is not None:
            let_worker_run(kit.submit)
        return ref() is None

    wait_until(released, WAIT, what)


def test_arguments_go_when_the_task_ends_and_the_result_with_its_future(
    kit: Kit, wait_until: Any
) -> None:
    arg = Obj()
    arg_ref = weakref.ref(arg)
    fut = kit.submit(_make_result, arg)
    del arg
    result_ref = weakref.ref(fut.result(WAIT))
    _gone(arg_ref, wait_until, "argument released while the future is alive")
    assert result_ref() is not None  # the future still holds it
    del fut
    _gone(result_ref, wait_until, "result released with its future", kit)


@pytest.mark.parametrize("error", [Boom, Exit], ids=["Exception", "SystemExit"])
def test_a_failed_tasks_exception_and_arguments_go_with_its_future(
    kit: Kit, wait_until: Any, error: type[BaseException]
) -> None:
    arg = Obj()
    arg_ref = weakref.ref(arg)
    fut = kit.submit(_raise, error, arg)
    del arg
    exc = fut.exception(WAIT)
    assert type(exc) is error
    exc_ref = weakref.ref(exc)
    del exc, fut
    _gone(exc_ref, wait_until, "exception released with its future", kit)
    _gone(arg_ref, wait_until, "argument released with the exception's traceback", kit)


def test_a_cancelled_tasks_arguments_go_at_cancel(kit: Kit, wait_until: Any) -> None:
    kit.block()
    arg = Obj()
    arg_ref = weakref.ref(arg)
    fut = kit.submit(_make_result, arg)
    del arg
    assert fut.cancel()
    # Still queued behind the blocker, and the future is alive: only the
    # task's own references had to go.
    _gone(arg_ref, wait_until, "cancelled task's argument released")
    kit.release()
    assert fut.cancelled()


def test_a_shutdown_that_cancels_releases_the_queued_tasks_arguments(
    kit: Kit, wait_until: Any
) -> None:
    kit.block()
    args = [Obj() for _ in range(5)]
    refs = [weakref.ref(a) for a in args]
    futs = [kit.submit(_make_result, a) for a in args]
    del args
    # The blocker stays put until the queued tasks are cancelled: released
    # first, the worker could start one of them before the cancel.
    stopper = threading.Thread(target=kit.close, kwargs={"cancel": True, "release": False})
    stopper.start()
    assert not cf.wait(futs, WAIT).not_done  # cancelled while the blocker runs
    kit.release()
    stopper.join(WAIT)
    assert all(f.cancelled() for f in futs)
    for ref in refs:
        _gone(ref, wait_until, "argument of a task cancelled by shutdown released")


@pytest.mark.parametrize("kind", ["concurrent", "keyed"])
def test_an_expired_tasks_arguments_go_at_its_deadline(
    core: ModuleType, kind: str, wait_until: Any
) -> None:
    kit = Kit(kind, core)
    try:
        kit.block()
        arg = Obj()
        arg_ref = weakref.ref(arg)
        fut = kit.submit_task(Task("t", _make_result, (arg,), start_timeout=0.01))
        del arg
        with pytest.raises(TimeoutError):
            fut.result(WAIT)
        _gone(arg_ref, wait_until, "expired task's argument released")
        assert fut.exception() is not None  # (a TimeoutError: no weakref to it)
    finally:
        kit.close(cancel=True)


@pytest.mark.parametrize("kind", ["concurrent", "runner"])
def test_a_task_run_by_the_caller_on_a_full_queue_releases_its_exception(
    core: ModuleType, kind: str, wait_until: Any
) -> None:
    kit = Kit(kind, core, max_queue_size=1, on_full="caller_runs")
    try:
        kit.block()
        kit.submit(_make_result, None)  # fills the queue
        arg = Obj()
        arg_ref = weakref.ref(arg)
        fut = kit.submit(_raise, Boom, arg)  # runs here, in the caller
        del arg
        exc_ref = weakref.ref(fut.exception(0))
        del fut
        _gone(exc_ref, wait_until, "caller-run task's exception released")
        _gone(arg_ref, wait_until, "caller-run task's argument released")
    finally:
        kit.close(cancel=True)


def test_map_chunks_release_their_items_exceptions(core: ModuleType, wait_until: Any) -> None:
    kit = Kit("concurrent", core)
    try:
        arg = Obj()
        arg_ref = weakref.ref(arg)
        fut = kit.submit(core.run_chunk, functools.partial(_raise, Boom), [(arg,)])
        del arg
        (item,) = fut.result(WAIT)
        exc_ref = weakref.ref(item.error)
        del item, fut
        _gone(exc_ref, wait_until, "chunk item's exception released", kit)
        _gone(arg_ref, wait_until, "chunk item's argument released", kit)
    finally:
        kit.close()


def test_runner_queue_task_releases_the_exception_it_raised(
    core: ModuleType, wait_until: Any
) -> None:
    kit = Kit("runner", core)
    try:
        try:
            kit.ex.queue_task(functools.partial(_without_resource, _raise, (Boom, None)))
        except Boom as exc:
            exc_ref = weakref.ref(exc)
        _gone(exc_ref, wait_until, "queue_task's exception released once caught", kit)
    finally:
        kit.close()
