"""What the three Dask front ends share: the bound on tasks in flight, the
bridge from a Dask future to a conexe future, option checks and task keys.

    >>> gate = InFlightGate(1, "raise", None)
    >>> gate.acquire(), gate.in_flight
    (True, 1)
    >>> gate.release(); gate.in_flight
    0
"""

from __future__ import annotations

import pickle
import threading
import time
import uuid
from typing import Any, Literal

from .._errors import QueueFull
from .._options import check_on_full
from .._options import check_size as check_count
from .._task import check_timeout
from ._results import outcome

__all__ = ["InFlightGate", "FullPolicy", "check_on_full", "check_count", "dask_key", "outcome"]

FullPolicy = Literal["raise", "block", "caller_runs"]

SHUTDOWN_MESSAGE = "cannot schedule new futures after shutdown"


def check_client(client: object) -> Any:
    from distributed import Client

    if not isinstance(client, Client):
        raise TypeError(
            f"the first argument must be a distributed.Client, not {type(client).__name__}; "
            "start one with distributed.Client(address) or Client(LocalCluster())"
        )
    if client.asynchronous:
        raise ValueError(
            "conexe.dask needs a synchronous Client (asynchronous=False): its futures "
            "are completed from a thread of the executor's own, through Dask's callbacks"
        )
    return client


def dask_key(fn: object) -> str:
    """A unique, readable Dask key: the function's name and a uuid. Unique,
    so Dask never merges two calls (what ``pure=False`` also guarantees)."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return f"{name}-{uuid.uuid4().hex}"


def set_outcome(fut: Any, ok: bool, value: Any) -> None:
    """Complete a RUNNING conexe future; ignores one completed already."""
    try:
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
    except Exception:  # InvalidStateError: completed by hand meanwhile
        pass


def claim(fut: Any) -> bool:
    """PENDING -> RUNNING; False if it was cancelled or already failed
    (a start deadline)."""
    try:
        return bool(fut.set_running_or_notify_cancel())
    except RuntimeError:  # FINISHED: its start deadline failed it
        return False


class InFlightGate:
    """The bound on tasks in flight (accepted and not finished) and the
    policy applied when it is reached, the local executors' ``on_full``:
    ``"raise"`` QueueFull, ``"block"`` the caller (at most ``block_timeout``
    seconds, then QueueFull) or ``"caller_runs"`` (``acquire`` returns
    False: the caller runs the task itself). ``limit`` 0: unbounded."""

    def __init__(self, limit: int, on_full: str, block_timeout: float | None) -> None:
        self.limit = limit
        self.on_full = on_full
        self.block_timeout = block_timeout
        self.in_flight = 0
        self.rejected = 0
        self._cond = threading.Condition(threading.Lock())

    def acquire(self) -> bool:
        with self._cond:
            if not self.limit or self.in_flight < self.limit:
                self.in_flight += 1
                return True
            if self.on_full == "block":
                deadline = (
                    None if self.block_timeout is None else time.monotonic() + self.block_timeout
                )
                while self.in_flight >= self.limit:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    # Sliced waits: Ctrl-C reaches a blocked main thread.
                    self._cond.wait(0.1 if left is None else min(left, 0.1))
                else:
                    self.in_flight += 1
                    return True
            self.rejected += 1
            if self.on_full == "caller_runs":
                return False
        raise QueueFull(
            f"the queue is full ({self.limit} tasks in flight on the Dask cluster, "
            f"max_queue_size={self.limit}); wait for some to finish, raise "
            "max_queue_size, or choose on_full='block'"
        )

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Wait until nothing is in flight; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.1 if left is None else min(left, 0.1))
        return True


def check_block_timeout(value: float | None) -> float | None:
    return None if value is None else check_timeout(value, "block_timeout")


def run_in_caller(core: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The ``caller_runs`` policy: run now, return a completed future."""
    fut = core.Future()
    fut.set_running_or_notify_cancel()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: B036 - delivered through the future
        fut.set_exception(exc)
    else:
        fut.set_result(result)
    return fut


def _executing_keys(dask_worker: Any) -> list[Any]:
    return [ts.key for ts in dask_worker.state.executing]


def cancel_not_started(client: Any, pairs: list[tuple[Any, Any]]) -> int:
    """Cancel the conexe futures of ``(conexe future, Dask future)`` pairs
    whose task no worker is executing (Dask can't stop a started task, so
    those are left to finish, as ``shutdown(cancel_futures=True)`` does
    locally). Asks every worker once. Returns how many were cancelled."""
    try:
        running = {k for keys in client.run(_executing_keys).values() for k in keys}
    except Exception:  # workers unreachable: nothing is known to be running
        running = set()
    cancelled = 0
    for fut, dfut in pairs:
        if dfut is not None and (dfut.key in running or dfut.status == "finished"):
            continue
        cancelled += fut.cancel()
    return cancelled


def cancel_on_cluster(dask_future: Any) -> None:
    """Drop a task from the cluster. ``cancel()`` is an RPC that can
    overtake the task's own submission (then the scheduler doesn't know the
    key yet and ignores it); ``release()`` goes down the client's ordered
    stream after the submission, so between them the task is dropped
    either way. A task a worker has already started runs to its end."""
    dask_future.cancel()
    dask_future.release()


def submit_to(client: Any, fn: Any, *args: Any, **options: Any) -> Any:
    """``client.submit(fn, *args, pure=False, **options)``, with the error
    a user can act on when something doesn't pickle."""
    try:
        return client.submit(fn, *args, pure=False, **options)
    except (TypeError, pickle.PicklingError, AttributeError) as exc:
        if "serializ" not in str(exc) and "pickle" not in str(exc):
            raise
        raise TypeError(
            "the task could not be sent to the Dask workers: its function and arguments "
            "must pickle (define functions at module level, pass data rather than locks, "
            f"files or connections); Dask said: {exc}"
        ) from exc


def refuse_run_timeout(task: Any, where: str) -> None:
    """``Task(timeout=...)`` is a deadline the running task reads through
    ``conexe.current_task()``, which a task on a Dask worker doesn't have:
    refused at the call rather than silently dropped."""
    if task.timeout is not None:
        raise ValueError(
            f"Task(timeout=...) is not supported by {where}: a task on a Dask worker has "
            "no conexe.current_task() to see its deadline; use fut.result(timeout) instead"
        )
