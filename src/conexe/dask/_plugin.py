"""The worker side of ``conexe.dask.Runner``: a WorkerPlugin that owns the
resources on one Dask worker, and the function every Runner task runs.

Dask calls ``setup(worker)`` once per Dask worker (when the Runner
registers the plugin, and on every worker that joins later) and
``teardown(worker)`` when the Runner stops (or the worker closes). Like the
local Runner, where each worker thread owns one resource, each of the Dask
worker's task threads owns one: made by ``on_create()`` in that thread
(``setup`` makes the first one, in a task thread), used by one task at a
time, destroyed by ``on_destroy(resource)``.

    >>> plugin = ResourcePlugin(lambda: "conn", None, None)
    >>> plugin.run(str.upper)
    'CONN'
    >>> plugin.close()
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from distributed import WorkerPlugin, get_worker

__all__ = ["BrokenResource", "ResourcePlugin", "run_on_resource"]

_log = logging.getLogger("conexe")


class BrokenResource(Exception):
    """Raised on the worker when ``check_health(exc)`` said the task broke
    its resource; ``args[0]`` is the task's exception (it travels pickled,
    where ``__cause__`` would be lost). The client retries or unwraps it."""


class ResourcePlugin(WorkerPlugin):  # type: ignore[misc]
    """One Runner's resources on one Dask worker: one per task thread."""

    def __init__(
        self,
        on_create: Callable[[], Any],
        on_destroy: Callable[[Any], object] | None,
        check_health: Callable[[BaseException], bool] | None,
    ) -> None:
        self.on_create = on_create
        self.on_destroy = on_destroy
        self.check_health = check_health
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[int, Any] = {}  # thread id -> its resource, not in use
        self._closed = False

    # The plugin travels pickled to every worker: ship only the callables.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "on_create": self.on_create,
            "on_destroy": self.on_destroy,
            "check_health": self.check_health,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    # -- Dask's hooks ---------------------------------------------------------------
    async def setup(self, worker: Any) -> None:
        # Make the first resource in a task thread, not in the worker's event
        # loop: thread-bound resources (sqlite3 connections...) then work.
        try:
            await _in_task_thread(worker, self._warm_up)
        except Exception:
            _log.exception("conexe Runner: on_create() failed on %s", worker.address)

    async def teardown(self, worker: Any) -> None:
        await _in_task_thread(worker, self.close)

    # -- on a task thread --------------------------------------------------------------
    def _warm_up(self) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._closed or me in self._idle:
                return
        resource = self.on_create()
        with self._lock:
            if not self._closed:
                self._idle[me] = resource
                return
        self._destroy(resource)

    def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(resource)`` with this thread's resource. A broken resource
        (``check_health(exc)`` False) is destroyed and remade at once, and
        BrokenResource(exc) raised for the client to retry."""
        me = threading.get_ident()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot run the task: its Runner was stopped")
            resource = self._idle.pop(me, _MISSING)
        if resource is _MISSING:
            resource = self.on_create()  # its error is the task's error
        try:
            result = fn(resource)
        except BaseException as exc:
            if self._is_broken(exc):
                self._destroy(resource)
                try:
                    self._warm_up()
                except Exception:  # the next task here tries again
                    _log.exception("conexe Runner: on_create() failed after a broken resource")
                raise BrokenResource(exc) from exc
            self._give_back(me, resource)
            raise
        self._give_back(me, resource)
        return result

    def _give_back(self, me: int, resource: Any) -> None:
        with self._lock:
            if not self._closed:
                self._idle[me] = resource
                return
        self._destroy(resource)  # stopped while it was in use

    def _is_broken(self, exc: BaseException) -> bool:
        if self.check_health is None:
            return False
        try:
            return not self.check_health(exc)
        except Exception:
            _log.exception("check_health raised; treating the resource as broken")
            return True

    def close(self) -> None:
        """Destroy the idle resources; one in use goes when its task ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for resource in idle.values():
            self._destroy(resource)

    def _destroy(self, resource: Any) -> None:
        if self.on_destroy is None:
            return
        try:
            self.on_destroy(resource)
        except Exception:
            _log.exception("conexe Runner: on_destroy() raised")


_MISSING: Any = object()


async def _in_task_thread(worker: Any, fn: Callable[[], None]) -> None:
    executor = worker.executors.get("default")
    try:
        job = executor.submit(fn)
    except (AttributeError, RuntimeError):  # no executor, or it is shutting down
        fn()
        return
    await asyncio.wrap_future(job)


def run_on_resource(plugin_name: str, fn: Callable[[Any], Any]) -> Any:
    """What a Runner task runs on the worker: ``fn(resource)``."""
    plugin: Any = get_worker().plugins.get(plugin_name)
    if plugin is None:
        raise RuntimeError(
            f"this Dask worker has no resources for Runner {plugin_name!r}: the Runner "
            "was stopped (or the plugin could not be installed)"
        )
    return plugin.run(fn)
