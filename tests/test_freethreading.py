"""Free-threaded CPython (3.13t and later): conexe declares the C core
compatible, so importing it leaves the GIL off, and worker threads run Python
code in parallel. On a GIL build these tests check what can be checked there
(the declaration is compiled in) and skip the rest, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from types import ModuleType

import pytest

from conexe._impl import cores

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
needs_free_threading = pytest.mark.skipif(
    not FREE_THREADED, reason="needs a free-threaded (--disable-gil) CPython"
)


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter with PYTHON_GIL unset, as a user would."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_free_threading
@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
def test_importing_conexe_leaves_the_gil_off() -> None:
    # -W error turns "the GIL has been enabled to load module ..." into a failed import.
    proc = _fresh_python(
        "import sys, conexe, conexe._core, conexe.keyed, conexe.runner\n"
        "assert conexe.IMPLEMENTATION == 'c', conexe.IMPLEMENTATION\n"
        "with conexe.ConcurrentExecutor(2) as ex:\n"
        "    assert ex.submit(sum, [1, 2]).result() == 3\n"
        "print('gil', sys._is_gil_enabled())\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gil False", (proc.stdout, proc.stderr)


@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
def test_the_c_core_declares_it_does_not_need_the_gil() -> None:
    # The declaration sits in the module's slots, where no Python API reads
    # it; the Cython directive is the source of truth, checked in the source
    # that built the installed module.
    import conexe

    pyx = os.path.join(os.path.dirname(conexe.__file__), "_core.pyx")
    with open(pyx, encoding="utf-8") as fh:
        head = [next(fh) for _ in range(5)]
    assert "# cython: freethreading_compatible=True\n" in head


@needs_free_threading
def test_the_gil_stays_off_while_every_api_runs_tasks(core: ModuleType) -> None:
    # Nothing conexe imports or starts on the way (executor, keyed executor,
    # Runner, asyncio bridge, both cores) turns the GIL back on in this
    # process. How much the workers then run in parallel is measured by
    # `python -m conexe bench --scaling`, not here: on a loaded 2-core
    # machine two threads rarely hold both cores at once.
    import asyncio

    import conexe
    from support import bind_core

    with bind_core(conexe.ConcurrentExecutor, core)(2) as ex:
        assert sum(ex.map(abs, range(-100, 0))) == 5050

        async def via_loop() -> int:
            return await asyncio.get_running_loop().run_in_executor(ex, sum, [1, 2])

        assert asyncio.run(via_loop()) == 3
    with bind_core(conexe.KeyedExecutor, core)(2) as keyed:
        assert keyed.submit("k", pow, 2, 3).result(timeout=30) == 8
    runner = bind_core(conexe.Runner, core)(lambda: 10, worker_count=2)
    try:
        assert runner.submit(lambda resource: resource + 1).result(timeout=30) == 11
    finally:
        runner.stop()
    assert not sys._is_gil_enabled()


def _register_while_it_completes(core: ModuleType, rounds: int) -> None:
    import concurrent.futures as cf

    import conexe
    from support import bind_core

    with bind_core(conexe.ConcurrentExecutor, core)(2) as ex:
        for _ in range(rounds):
            # A container result puts the future under the cyclic GC as it
            # completes; the waiter wait() registers does too, at the same
            # moment on another thread.
            fut = ex.submit(list, (1, 2))
            done, _ = cf.wait([fut], timeout=30)
            assert done == {fut} and fut.result() == [1, 2]


@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
def test_a_waiter_registering_while_the_worker_completes_does_not_abort() -> None:
    # The worker and the waiter both put the future under the cyclic GC if
    # it is untracked (GIL builds; free-threaded ones track it from the
    # start); tracking an object twice aborts the interpreter, so this
    # runs in a child process (an abort there is a failed assertion here).
    proc = _fresh_python(
        "import sys; sys.path.insert(0, %r)\n"
        "from conexe._impl import cores\n"
        "from test_freethreading import _register_while_it_completes\n"
        "_register_while_it_completes(cores['c'], 50000)\n"
        "print('ok')\n" % os.path.dirname(__file__)
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr)


def test_resizing_across_the_core_count_loses_no_task(core: ModuleType) -> None:
    # A pool with more workers than cores takes its engine lock another way
    # (include/conexe/mutex.h, free-threaded Linux builds): the switch
    # happens with the lock held while producers and workers wait on it.
    # Any window where two threads held "the" lock shows as a lost or
    # doubled task, a counter off, or a fatal "unlocking mutex that is not
    # locked" from CPython. On other builds the lock does not switch, and
    # this is a resize-under-load test. The tasks take 30 us, so they never
    # count as short (awake_policy.pxi): a short-task pool larger than the
    # cores is capped and keeps the PyMutex, and the lock would not switch.
    import threading
    import time

    import conexe
    from conexe._options import usable_cores
    from support import bind_core

    cores_here = usable_cores()
    sizes = [1, cores_here + 2, cores_here, 2 * cores_here + 1]
    per_producer = 20_000
    ex = bind_core(conexe.ConcurrentExecutor, core)(1)
    futures: list[list[object]] = [[], []]
    producing = threading.Event()
    producing.set()

    def thirty_us_abs(i: int) -> int:
        until = time.perf_counter_ns() + 30_000
        while time.perf_counter_ns() < until:
            pass
        return abs(i)

    def produce(out: list[object]) -> None:
        for i in range(per_producer):
            out.append(ex.submit(thirty_us_abs, -i))

    def resize() -> None:
        turn = 0
        while producing.is_set():
            ex.resize(sizes[turn % len(sizes)])
            turn += 1

    resizer = threading.Thread(target=resize)
    producers = [threading.Thread(target=produce, args=(out,)) for out in futures]
    resizer.start()
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    producing.clear()
    resizer.join()
    try:
        for out in futures:
            assert [f.result(timeout=60) for f in out] == list(range(per_producer))
        stats = ex.stats()
        assert stats.submitted == stats.completed == 2 * per_producer
        assert stats.queued == stats.running == stats.failed == 0
    finally:
        ex.shutdown()


@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
def test_a_queued_future_is_under_the_cyclic_gc_only_without_a_young_generation() -> None:
    # GIL builds: untracked while queued, so young-generation passes skip
    # the futures in flight. Free-threaded builds: tracked from the start,
    # so their collector (whole heap each pass, scheduled against the
    # tracked survivors) counts the futures in flight and runs less often.
    import gc
    import threading

    import conexe

    gate = threading.Event()
    with conexe.ConcurrentExecutor(1) as ex:
        blocker = ex.submit(gate.wait, 30)
        queued = ex.submit(int)
        try:
            assert not queued.done()
            assert gc.is_tracked(queued) == FREE_THREADED
        finally:
            gate.set()
        assert blocker.result(30) and queued.result(30) == 0


@pytest.mark.parametrize("size", ["cores+1", "2*cores+4"])
def test_blocking_tasks_after_short_ones_all_run_at_once(core: ModuleType, size: str) -> None:
    # With the GIL off, a pool larger than the cores fed short tasks keeps
    # only as many workers awake as there are cores; its watcher must wake
    # the others as soon as the awake ones block. Here every worker must be
    # in a task at once for the barrier to open: a pool that left one
    # asleep breaks it. One worker more than the cores is the smallest pool
    # capped, twice the cores and more the one that always was.
    import threading

    import conexe
    from conexe._options import usable_cores
    from support import bind_core

    cores = usable_cores()
    workers = cores + 1 if size == "cores+1" else 2 * cores + 4
    with bind_core(conexe.ConcurrentExecutor, core)(workers) as ex:
        for _ in range(3):
            futures = [ex.submit(abs, -i) for i in range(5_000)]
            assert [f.result(timeout=60) for f in futures] == list(range(5_000))
        barrier = threading.Barrier(workers, timeout=30)
        waits = [ex.submit(barrier.wait) for _ in range(workers)]
        assert sorted(f.result(timeout=60) for f in waits) == list(range(workers))
        # Short tasks again, then a second wave of blockers behind them.
        futures = [ex.submit(abs, -i) for i in range(5_000)]
        waits = [ex.submit(barrier.wait) for _ in range(workers)]
        assert [f.result(timeout=60) for f in futures] == list(range(5_000))
        assert sorted(f.result(timeout=60) for f in waits) == list(range(workers))


def test_a_capped_pool_shrunk_and_grown_under_short_tasks_still_runs_blockers_at_once(
    core: ModuleType,
) -> None:
    # Shrinking while short tasks are queued retires workers that may be
    # the watcher, or on their way to watch; the pool grown again must
    # still wake every worker for blocking tasks.
    import threading

    import conexe
    from conexe._options import usable_cores
    from support import bind_core

    workers = 2 * usable_cores() + 4
    with bind_core(conexe.ConcurrentExecutor, core)(workers) as ex:
        for size in (1, 2, workers):
            futures = [ex.submit(abs, -i) for i in range(20_000)]
            ex.resize(size)
            assert [f.result(timeout=60) for f in futures] == list(range(20_000))
        barrier = threading.Barrier(workers, timeout=30)
        waits = [ex.submit(barrier.wait) for _ in range(workers)]
        assert sorted(f.result(timeout=60) for f in waits) == list(range(workers))
        stats = ex.stats()
        assert stats.submitted == stats.completed == 3 * 20_000 + workers


class _Payload:
    pass


class _Boom(Exception):
    pass


def _raise_boom() -> None:
    raise _Boom


@needs_free_threading
@pytest.mark.skipif("c" not in cores, reason="the C core is not built")
@pytest.mark.parametrize("outcome", ["result", "exception"])
def test_what_a_parked_worker_made_goes_with_its_future(outcome: str) -> None:
    # A free-threaded build counts the references of an object made by one
    # thread and dropped by another apart, and frees it only once its maker
    # runs Python code again. The C core hands the future's reference to a
    # result or exception over to the shared count (include/conexe/refs.h),
    # so it goes with the future here although its worker stays parked.
    # Without that, the weak reference outlives the future.
    import gc
    import weakref

    import conexe
    from support import wait_until

    enabled = gc.isenabled()
    gc.disable()  # the collector must not be what frees it
    try:
        with conexe.ConcurrentExecutor(1) as ex:
            if outcome == "result":
                fut = ex.submit(_Payload)
                ref = weakref.ref(fut.result(timeout=30))
            else:
                fut = ex.submit(_raise_boom)
                ref = weakref.ref(fut.exception(timeout=30))
            # The worker has let go of it once it is back among the idle.
            wait_until(lambda: ex.stats().idle == 1, 30, "the worker parked")
            assert ref() is not None
            del fut
            assert ref() is None
    finally:
        if enabled:
            gc.enable()
