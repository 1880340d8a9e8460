"""Fixtures for the behaviour tests shared by the local executors and their
Dask twins (``conexe.dask``).

``backend`` is parametrized over ``local-<core>`` (each available core) and
``dask``: a real ``LocalCluster`` of 2 worker processes with one thread
each, started once per session and closed at the end. A backend builds a
ConcurrentExecutor, KeyedExecutor or Runner with 2 workers, the same
options, and its own first argument (``max_workers``/``worker_count`` 2, or
the Dask client).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import conexe
from conexe._impl import cores
from support import wait_until

WORKERS = 2


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    import dask

    # worker-saturation 1.0: the scheduler hands a worker only as many tasks
    # as it has threads and keeps the rest queued in priority order.
    # No statistical profiler: its thread reads every other thread's frames
    # (sys._current_frames), which free-threaded 3.13 does not make safe
    # (CI's 3.13t run crashed in distributed/profile.py reading f_lineno).
    settings = {
        "distributed.scheduler.worker-saturation": 1.0,
        "distributed.worker.profile.enabled": False,
    }
    with dask.config.set(settings):
        cluster = distributed.LocalCluster(
            n_workers=WORKERS,
            processes=True,
            threads_per_worker=1,
            # Any free port: with None the scheduler's HTTP server still
            # takes 8787, and a second cluster on the machine then fails.
            dashboard_address=":0",
        )
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


class Backend:
    """Makes the executors of one implementation, with the same options."""

    def __init__(self, name: str, core: Any = None, client: Any = None) -> None:
        self.name = name
        self.core = core
        self.client = client

    @property
    def is_dask(self) -> bool:
        return self.client is not None

    def bound(self, queued: int) -> int:
        """The ``max_queue_size`` that lets ``queued`` tasks wait while every
        worker is busy: the local executors bound the queued tasks, the Dask
        ones the tasks in flight (queued and running)."""
        return queued + WORKERS if self.is_dask else queued

    def cancelled_on_cluster(self, ex: Any, futures: list[Any]) -> Callable[[], None]:
        """Returns a function that waits until the cluster has dropped
        these tasks (no-op locally); call it after cancelling them.

        Dask cancels asynchronously: the scheduler tells the worker holding
        a task to drop it a moment after ``cancel()`` returns, and a worker
        that frees up in that moment starts it. Tests that cancel and then
        free the workers wait, so that "it never ran" is deterministic."""
        if not self.is_dask:
            return lambda: None
        import _dask_tasks

        def on_scheduler(key: Any) -> bool:
            return bool(self.client.run_on_scheduler(_dask_tasks.scheduler_knows, key))

        def held_by_a_worker() -> bool:
            return any(self.client.run(_dask_tasks.worker_holds, keys).values())

        keys = [ex._pending[fut].key for fut in futures]
        for key in keys:  # the submission first (a cancel could overtake it)
            wait_until(lambda key=key: on_scheduler(key), what=f"the scheduler to know {key}")

        def wait() -> None:
            for key in keys:
                wait_until(
                    lambda key=key: not on_scheduler(key), what=f"the scheduler to drop {key}"
                )
            wait_until(lambda: not held_by_a_worker(), what="the workers to drop the tasks")

        return wait

    def _bind(self, cls: type) -> Any:
        return type(cls.__name__, (cls,), {"_core": self.core})

    def executor(self, max_queue_size: int = 0, **options: Any) -> Any:
        if self.is_dask:
            from conexe import dask as conexe_dask

            return conexe_dask.ConcurrentExecutor(self.client, max_queue_size, **options)
        return self._bind(conexe.ConcurrentExecutor)(WORKERS, max_queue_size, **options)

    def keyed(self, max_queue_size: int = 0, **options: Any) -> Any:
        if self.is_dask:
            from conexe import dask as conexe_dask

            return conexe_dask.KeyedExecutor(self.client, max_queue_size, **options)
        return self._bind(conexe.KeyedExecutor)(WORKERS, max_queue_size, **options)

    def runner(self, on_create: Callable[[], Any], on_destroy: Any = None, **options: Any) -> Any:
        if self.is_dask:
            from conexe import dask as conexe_dask

            return conexe_dask.Runner(self.client, on_create, on_destroy, **options)
        return self._bind(conexe.Runner)(on_create, on_destroy, worker_count=WORKERS, **options)

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=[pytest.param("local-c", marks=pytest.mark.c_extension), "local-py", "dask"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "dask":
        return Backend("dask", cores[conexe.IMPLEMENTATION], request.getfixturevalue("dask_client"))
    core = request.param.removeprefix("local-")
    if core not in cores:
        pytest.fail("conexe._core is not built: build it, or pass --no-c-extensions")
    return Backend(request.param, cores[core])
