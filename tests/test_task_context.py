"""No context crosses between tasks: each runs in a copy of its submitter's
``contextvars`` context (``context="copy"``, the default) or in a new, empty
one (``context="fresh"``), on every executor and both cores, never in one
another task wrote to, and no worker keeps the context of the thread that
happened to start it.

A web app's request id set before ``submit`` must reach that task and no
other (the stdlib pool leaks a worker's context from task to task on every
Python, and on free-threaded 3.14 a worker starts in its starter's)."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import bind_core, child_env
from test_executor_process import script

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")

MODES = ["copy", "fresh"]


def expected(mode: str, submitter: str) -> str:
    """What a task reads of ``request`` when its submitter had ``submitter``."""
    return submitter if mode == "copy" else "none"


def make(kind: str, core: ModuleType, mode: str) -> tuple[Any, Callable[..., Any]]:
    """An executor of ``kind`` (1 worker, so every task meets what the last
    one left) and ``submit(fn, *args) -> future`` for it."""
    if kind == "keyed":
        keyed = bind_core(conexe.KeyedExecutor, core)(1, context=mode)
        return keyed, lambda fn, *args: keyed.submit("one key", fn, *args)
    if kind == "runner":
        runner = bind_core(conexe.Runner, core)(lambda: None, worker_count=1, context=mode)
        return runner, lambda fn, *args: runner.submit(lambda _resource: fn(*args))
    cls = conexe.ThreadPoolExecutor if kind == "tpe" else conexe.ConcurrentExecutor
    ex = bind_core(cls, core)(1, context=mode)
    return ex, ex.submit


def close(ex: Any) -> None:
    (ex.stop if isinstance(ex, conexe.Runner) else ex.shutdown)()


KINDS = ["concurrent", "tpe", "keyed", "runner"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_task_sees_its_submitter_and_no_other_task(
    core: ModuleType, kind: str, mode: str
) -> None:
    ex, submit = make(kind, core, mode)
    try:

        def in_thread(value: str) -> list[str]:
            # Each submitter in its own thread, as a request handler is.
            seen: list[str] = []

            def handler() -> None:
                request.set(value)
                seen.append(submit(request.get).result(10))
                submit(request.set, "written by a task").result(10)
                seen.append(submit(request.get).result(10))
                seen.append(request.get())

            t = threading.Thread(target=handler)
            t.start()
            t.join(20)
            return seen

        want = expected(mode, "user-A")
        assert in_thread("user-A") == [want, want, "user-A"]
        want = expected(mode, "user-B")
        assert in_thread("user-B") == [want, want, "user-B"]
    finally:
        close(ex)


@pytest.mark.parametrize("mode", MODES)
def test_map_items_see_the_submitter_not_each_other(core: ModuleType, mode: str) -> None:
    ex = bind_core(conexe.ConcurrentExecutor, core)(1, context=mode)

    def read_then_write(i: int) -> str:
        seen = request.get()
        request.set(f"item {i}")
        return seen

    try:
        token = request.set("mapper")
        try:
            got = list(ex.map(read_then_write, range(50), chunksize=10))
        finally:
            request.reset(token)
        assert got == [expected(mode, "mapper")] * 50
    finally:
        ex.shutdown()


@pytest.mark.parametrize("mode", MODES)
def test_a_runner_retry_runs_in_the_context_its_first_try_had(core: ModuleType, mode: str) -> None:
    runner = bind_core(conexe.Runner, core)(
        object, worker_count=1, max_retries=2, check_health=lambda exc: False, context=mode
    )
    tries: list[str] = []

    def flaky(_resource: object) -> str:
        tries.append(request.get())
        if len(tries) == 1:
            request.set("first try wrote this")
            raise ConnectionError("broken")
        return "ok"

    try:
        token = request.set("caller")
        try:
            assert runner.submit(flaky).result(10) == "ok"
        finally:
            request.reset(token)
        if mode == "copy":
            assert tries == ["caller", "first try wrote this"]
        else:
            assert tries == ["none", "none"]
    finally:
        runner.stop()


@pytest.mark.parametrize("mode", MODES)
def test_an_interrupted_task_leaves_a_clean_worker(core: ModuleType, mode: str) -> None:
    # KeyboardInterrupt raised inside a task leaves its context on the way
    # out: the next task on that worker runs in its own.
    ex = bind_core(conexe.ConcurrentExecutor, core)(1, context=mode)

    def interrupted() -> None:
        request.set("interrupted task")
        raise KeyboardInterrupt

    try:
        request.set("caller")
        fut = ex.submit(interrupted)
        with pytest.raises(KeyboardInterrupt):
            fut.result(10)
        assert ex.submit(request.get).result(10) == expected(mode, "caller")
    finally:
        ex.shutdown()


@pytest.mark.parametrize("mode", MODES)
def test_workers_start_in_an_empty_context(core: ModuleType, mode: str) -> None:
    # The initializer runs in the worker's own context: empty, whoever
    # started the thread (on free-threaded 3.14 a thread otherwise inherits
    # its starter's, sys.flags.thread_inherit_context).
    seen: list[str] = []
    request.set("whoever started the worker")
    ex = bind_core(conexe.ThreadPoolExecutor, core)(
        1, initializer=lambda: seen.append(request.get()), context=mode
    )
    try:
        ex.submit(abs, 1).result(10)
        assert seen == ["none"]
    finally:
        ex.shutdown()


def test_tasks_left_at_interpreter_exit_run_in_their_submitters_context(
    core: ModuleType,
) -> None:
    body = """
        import contextvars
        request = contextvars.ContextVar("request", default="none")
        ex = Executor(1, context="copy")
        gate = threading.Event()
        ex.submit(gate.wait)
        for user in ("a", "b", "c"):
            request.set(user)
            ex.submit(lambda: os.write(1, request.get().encode() + b"\\n"))
        gate.set()
        # no shutdown(): the interpreter exits with the tasks queued
        """
    proc = subprocess.run(
        [sys.executable, "-c", script(core, body)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["a", "b", "c"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_context_is_refused_at_the_call(core: ModuleType, kind: str) -> None:
    with pytest.raises(ValueError, match="context must be 'copy' or 'fresh', got 'inherit'"):
        make(kind, core, "inherit")


def test_each_executor_keeps_what_reached_its_tasks_before(core: ModuleType) -> None:
    # The defaults: nothing of the submitter's (as the stdlib pool) for
    # ConcurrentExecutor, ThreadPoolExecutor and Runner; a copy for
    # KeyedExecutor, which always made one.
    token = request.set("submitter")
    try:
        for kind, want in [("concurrent", "none"), ("tpe", "none"), ("keyed", "submitter")]:
            cls = {
                "concurrent": conexe.ConcurrentExecutor,
                "tpe": conexe.ThreadPoolExecutor,
                "keyed": conexe.KeyedExecutor,
            }[kind]
            ex = bind_core(cls, core)(1)
            try:
                fut = ex.submit("k", request.get) if kind == "keyed" else ex.submit(request.get)
                assert fut.result(10) == want, kind
            finally:
                ex.shutdown()
        runner = bind_core(conexe.Runner, core)(lambda: None, worker_count=1)
        try:
            assert runner.submit(lambda _resource: request.get()).result(10) == "none"
        finally:
            runner.stop()
    finally:
        request.reset(token)
