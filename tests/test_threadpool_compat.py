"""conexe in the slots a ``concurrent.futures.ThreadPoolExecutor`` fills.

asyncio's default executor (``set_default_executor`` requires a
ThreadPoolExecutor instance since 3.11), ``conexe.ThreadPoolExecutor``'s
stdlib signature, the private names code reads off a ThreadPoolExecutor
(``_threads``, ``_max_workers``, ``_shutdown``, ``_broken``,
``_work_queue``), and ``CONEXE_NO_EXTENSIONS=1`` keeping the extension out of
the process. Every behaviour test runs on both cores.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import logging
import os
import re
import subprocess
import sys
import threading
import warnings
from types import ModuleType
from typing import Any

import pytest

import conexe
from support import Blocker, bind_core


@pytest.fixture(params=["ConcurrentExecutor", "ThreadPoolExecutor"])
def pool_class(request: pytest.FixtureRequest, core: ModuleType) -> Any:
    """Each of conexe's two ThreadPoolExecutor-compatible classes, on the
    core under test."""
    return bind_core(getattr(conexe, request.param), core)


@pytest.fixture
def make_pool(pool_class: Any) -> Any:
    made: list[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        ex = pool_class(*args, **kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)


def test_both_classes_are_thread_pool_executors(make_pool: Any) -> None:
    ex = make_pool(2)
    assert isinstance(ex, cf.ThreadPoolExecutor)
    assert isinstance(ex, conexe.ConcurrentExecutor)
    assert ex.submit(pow, 3, 3).result() == 27


# -- asyncio's default executor -------------------------------------------------


def test_to_thread_and_run_in_executor_none_run_on_the_conexe_default_executor(
    make_pool: Any,
) -> None:
    ex = make_pool(4, thread_name_prefix="aio")
    request_id = contextvars.ContextVar("request_id", default="-")

    def where(x: int) -> tuple[int, str, str]:
        return x * x, threading.current_thread().name, request_id.get()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ex)
        request_id.set("r42")
        via_to_thread = await asyncio.gather(*(asyncio.to_thread(where, i) for i in range(50)))
        via_none = await loop.run_in_executor(None, where, 7)
        return via_to_thread, via_none

    via_to_thread, via_none = asyncio.run(main())
    assert [sq for sq, _, _ in via_to_thread] == [i * i for i in range(50)]
    # to_thread carries the caller's context into the worker.
    assert {ctx for _, _, ctx in via_to_thread} == {"r42"}
    assert via_none[0] == 49
    names = {name for _, name, _ in via_to_thread} | {via_none[1]}
    assert all(name.startswith("aio_") for name in names), names
    assert ex.stats().submitted == 51


def test_asyncio_run_shuts_the_default_executor_down_after_its_work(make_pool: Any) -> None:
    ex = make_pool(2)
    done: list[int] = []

    def slow_append(i: int) -> None:
        threading.Event().wait(0.01)
        done.append(i)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ex)
        await asyncio.to_thread(slow_append, 0)
        # Not awaited: asyncio.run's shutdown_default_executor must let it end.
        loop.run_in_executor(None, slow_append, 1)

    asyncio.run(main())
    assert ex._shutdown
    assert sorted(done) == [0, 1]
    assert len(ex._threads) == 0  # shutdown(wait=True) joined them
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(int)


def _timed_default_executor_shutdown(ex: Any) -> tuple[bool, Any, bool]:
    """``shutdown_default_executor(timeout=0.2)`` while a task holds the only
    worker for a second: (warned, the task's result, shut down after)."""
    blocker = Blocker()
    loop = asyncio.new_event_loop()
    try:
        loop.set_default_executor(ex)
        fut = loop.run_in_executor(None, blocker, "finished")
        assert blocker.started.wait(10)
        threading.Timer(1.0, blocker.release).start()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loop.run_until_complete(loop.shutdown_default_executor(timeout=0.2))
        warned = any(
            issubclass(w.category, RuntimeWarning) and "did not finish" in str(w.message)
            for w in caught
        )
        shut_down = ex._shutdown
        return warned, loop.run_until_complete(asyncio.wait_for(fut, 10)), shut_down
    finally:
        blocker.release()
        loop.close()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="its timeout is 3.12+")
def test_shutdown_default_executor_timeout_acts_as_with_thread_pool_executor(
    make_pool: Any,
) -> None:
    # Python 3.12.1 applies the timeout only after the executor's own
    # shutdown(wait=True) has returned, 3.13 while it waits: conexe must do
    # whatever ThreadPoolExecutor does on the Python it runs on.
    stdlib = cf.ThreadPoolExecutor(1)
    expected = _timed_default_executor_shutdown(stdlib)
    stdlib.shutdown()
    got = _timed_default_executor_shutdown(make_pool(1))
    assert got == expected
    assert got[1:] == ("finished", True)
    if sys.version_info >= (3, 13):
        # Timed out: asyncio fell back to shutdown(wait=False), and the task
        # that was running still delivered.
        assert got[0] is True


def test_the_stdlib_still_refuses_what_is_not_a_thread_pool_executor() -> None:
    # The check conexe now passes is a real one: a conexe executor that is
    # not ThreadPoolExecutor-shaped (its submit takes a key) is refused.
    loop = asyncio.new_event_loop()
    keyed = conexe.KeyedExecutor(1)
    try:
        with pytest.raises(TypeError, match="ThreadPoolExecutor"):
            loop.set_default_executor(keyed)
    finally:
        keyed.shutdown()
        loop.close()


# -- conexe.ThreadPoolExecutor: the stdlib's signature ------------------------------


def test_thread_pool_executor_takes_the_stdlib_arguments_positionally(core: ModuleType) -> None:
    seen: list[str] = []

    def init(tag: str) -> None:
        seen.append(f"{tag}:{threading.current_thread().name}")

    tpe = bind_core(conexe.ThreadPoolExecutor, core)
    with tpe(2, "named", init, ("ready",)) as ex:
        assert ex.submit(threading.current_thread).result().name.startswith("named_")
        assert ex._max_workers == 2
    assert seen and all(s.startswith("ready:named_") for s in seen)


def test_thread_pool_executor_takes_none_for_the_default_prefix(core: ModuleType) -> None:
    tpe = bind_core(conexe.ThreadPoolExecutor, core)
    with tpe(1, None) as ex:
        assert re.fullmatch(
            r"ThreadPoolExecutor-\d+_0", ex.submit(threading.current_thread).result().name
        )
    with tpe(1, "") as ex, cf.ThreadPoolExecutor(1) as stdlib:
        ours = ex.submit(threading.current_thread).result().name
        theirs = stdlib.submit(threading.current_thread).result().name
        assert ours.rsplit("-", 1)[0] == theirs.rsplit("-", 1)[0] == "ThreadPoolExecutor"
    with pytest.raises(TypeError, match="thread_name_prefix must be a str"):
        tpe(1, 5)


def test_thread_pool_executor_keeps_conexes_options_keyword_only(core: ModuleType) -> None:
    tpe = bind_core(conexe.ThreadPoolExecutor, core)
    with pytest.raises(TypeError):
        tpe(1, "", None, (), 10)  # max_queue_size is not positional here
    blocker = Blocker()
    with tpe(1, max_queue_size=1) as ex:
        ex.submit(blocker)
        assert blocker.started.wait(10)
        ex.submit(int)
        with pytest.raises(conexe.QueueFull):
            ex.submit(int)
        blocker.release()


def test_default_max_workers_is_thread_pool_executors(make_pool: Any) -> None:
    cpu_count = getattr(os, "process_cpu_count", os.cpu_count)
    assert make_pool()._max_workers == min(32, (cpu_count() or 1) + 4)


# -- the private names code reads off a ThreadPoolExecutor -----------------------------


def test_threads_iterates_the_live_worker_threads(make_pool: Any) -> None:
    ex = make_pool(3)
    assert len(ex._threads) == 0 and not ex._threads
    blocker = Blocker()
    futs = [ex.submit(blocker) for _ in range(3)]
    ex_threads = list(ex._threads)
    assert len(ex._threads) == 3 == len(ex_threads)
    assert all(isinstance(t, threading.Thread) and t.is_alive() for t in ex_threads)
    assert threading.current_thread() not in ex._threads
    blocker.release()
    for f in futs:
        f.result(10)
    ex.shutdown()
    for t in ex_threads:  # what CPython's own tests do after shutdown
        t.join(10)
        assert not t.is_alive()
    assert list(ex._threads) == []


def test_shutdown_work_queue_and_adjust_thread_count(make_pool: Any) -> None:
    ex = make_pool(1)
    assert ex._shutdown is False
    blocker = Blocker()
    ex.submit(blocker)
    assert blocker.started.wait(10)
    queued = [ex.submit(int) for _ in range(3)]
    assert ex._work_queue.qsize() == 3 and not ex._work_queue.empty()
    with pytest.raises(TypeError, match="submit\\(\\) work to the executor instead"):
        ex._work_queue.put(None)
    ex._adjust_thread_count()  # a no-op: the engine sizes the pool itself
    assert len(ex._threads) == 1
    blocker.release()
    assert [f.result(10) for f in queued] == [0, 0, 0]
    assert ex._work_queue.empty()
    ex.shutdown()
    assert ex._shutdown is True


def test_broken_is_false_then_the_reason_like_thread_pool_executors(
    make_pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> None:
        raise ValueError("no")

    assert make_pool(1)._broken is False
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        ex = make_pool(1, initializer=fail)
        with pytest.raises(cf.BrokenExecutor):
            ex.submit(int).result(10)
    assert isinstance(ex._broken, str) and "initializer failed" in ex._broken


# -- CONEXE_NO_EXTENSIONS=1 ----------------------------------------------------------


def _modules_after_import(env_value: str | None) -> list[str]:
    env = dict(os.environ)
    env.pop("CONEXE_NO_EXTENSIONS", None)
    env.pop("CONEXE_REQUIRE_EXTENSION", None)
    if env_value is not None:
        env["CONEXE_NO_EXTENSIONS"] = env_value
    code = (
        "import sys, conexe\n"
        "with conexe.ConcurrentExecutor(1) as ex: assert ex.submit(abs, -3).result() == 3\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('conexe._core'))\n"
        "print(conexe.IMPLEMENTATION, *loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.split()


def test_no_extensions_never_imports_the_extension() -> None:
    assert _modules_after_import("1") == ["py", "conexe._core_py"]


@pytest.mark.skipif("c" not in conexe._impl.cores, reason="the extension is not built")
def test_without_the_variable_the_extension_is_loaded() -> None:
    assert _modules_after_import(None)[:2] == ["c", "conexe._core"]
