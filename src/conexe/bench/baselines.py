"""What conexe is measured against where ThreadPoolExecutor has no direct
equivalent, written once for ``python -m conexe bench`` and the scripts in
``benchmarks/``: per-key order built on the stdlib, and a worker-owned
resource kept in a thread-local set by the pool's initializer."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ChainedKeyedPool", "tpe_make_resource", "tpe_use_resource", "use_resource"]


class ChainedKeyedPool:
    """Per-key order with nothing but the stdlib: a ThreadPoolExecutor and,
    per key, the future of its last task. A task whose key is busy is
    submitted to the pool by the done-callback of the key's previous task.

        >>> pool = ChainedKeyedPool(2)
        >>> [f.result() for f in [pool.submit("k", abs, -i) for i in range(3)]]
        [0, 1, 2]
        >>> pool.shutdown()
    """

    def __init__(self, workers: int) -> None:
        self.pool = cf.ThreadPoolExecutor(workers)
        self.lock = threading.Lock()
        self.tails: dict[Any, cf.Future[Any]] = {}

    def submit(self, key: Any, fn: Callable[..., Any], /, *args: Any) -> cf.Future[Any]:
        done: cf.Future[Any] = cf.Future()

        def run() -> None:
            if not done.set_running_or_notify_cancel():
                return
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        with self.lock:
            prev = self.tails.get(key)
            self.tails[key] = done
        done.add_done_callback(lambda f: self._release(key, f))
        if prev is None:
            self.pool.submit(run)
        else:
            prev.add_done_callback(lambda _: self.pool.submit(run))
        return done

    def _release(self, key: Any, fut: cf.Future[Any]) -> None:
        with self.lock:
            if self.tails.get(key) is fut:
                del self.tails[key]

    def shutdown(self) -> None:
        self.pool.shutdown()


_local = threading.local()


def tpe_make_resource() -> None:
    """A ThreadPoolExecutor ``initializer``: the worker's own resource."""
    _local.resource = object()


def tpe_use_resource() -> None:
    """A ThreadPoolExecutor task using its worker's resource."""
    if _local.resource is None:
        raise RuntimeError("the task got no resource")


def use_resource(resource: object) -> None:
    """A Runner task using the resource it is given."""
    if resource is None:
        raise RuntimeError("the task got no resource")
