"""Bringing results back from the cluster in batches.

``Future.result()`` on a Dask future is one request to the cluster per task;
``client.gather(futures)`` brings back the results of many finished futures
in one. A :class:`ResultFetcher` (one per conexe.dask executor) is told of
each Dask future that ends (Dask's done-callback only queues it, so that
callback thread never waits on the network); its own thread gathers the
results of every future queued meanwhile at once and hands each outcome to
its callback, in the order they ended. Futures that failed or were
cancelled, and any batch the gather can't bring back whole (a worker lost
in between), are resolved one by one, as before.

    >>> fetcher = ResultFetcher(client)                         # doctest: +SKIP
    >>> fetcher.watch(client.submit(sum, [1, 2]), print)        # doctest: +SKIP
    True 3
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ResultFetcher", "outcome"]

log = logging.getLogger("conexe.dask")

IDLE_EXIT_S = 2.0  # the thread leaves after this long with nothing to fetch
# While other watched futures are still on the cluster, a result waits at
# most this long for more to end, so that one gather brings them all back.
COALESCE_S = 0.002

Then = Callable[[bool, Any], None]


def outcome(dask_future: Any) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, exception)`` of a finished Dask
    future; a cancelled or lost one gives its CancelledError/other error."""
    try:
        return True, dask_future.result()
    except BaseException as exc:  # noqa: B036 - handed to the conexe future
        return False, exc


class ResultFetcher:
    """Calls ``then(ok, value)`` for each watched Dask future once it ends,
    the results of those that ended together fetched in one gather."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._ended: list[tuple[Any, Then]] = []
        self._watched = 0  # watched and not yet handed to the fetching thread
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def watch(self, dask_future: Any, then: Then) -> None:
        """Call ``then(ok, value)`` (in this fetcher's thread) once
        ``dask_future`` ends."""
        with self._wake:
            self._watched += 1
        dask_future.add_done_callback(lambda d: self._ended_one(d, then))

    def _ended_one(self, dask_future: Any, then: Then) -> None:  # Dask's callback thread
        with self._wake:
            self._ended.append((dask_future, then))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="conexe-dask-results", daemon=True
                )
                self._thread.start()
            elif len(self._ended) == 1 or len(self._ended) == self._watched:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._ended:
                    self._wake.wait(IDLE_EXIT_S)
                    if not self._ended:
                        self._thread = None
                        return
                self._coalesce_locked()
                batch, self._ended = self._ended, []
                self._watched -= len(batch)
            self._deliver(batch)

    def _coalesce_locked(self) -> None:
        """Wait (at most COALESCE_S) while others are still on the cluster:
        a gather costs the cluster about as much for one result as for
        dozens, so under load one per few milliseconds, not one per task;
        the last one out (or a lone task) goes at once."""
        deadline = time.monotonic() + COALESCE_S
        while len(self._ended) < self._watched:
            left = deadline - time.monotonic()
            if left <= 0 or not self._wake.wait(left):
                return

    def _deliver(self, batch: list[tuple[Any, Then]]) -> None:
        finished = [(d, then) for d, then in batch if d.status == "finished"]
        values: list[Any] | None = None
        if len(finished) > 1:
            try:
                values = list(self._client.gather([d for d, _ in finished], errors="raise"))
            except BaseException:  # noqa: B036 - resolved one by one below
                values = None
        if values is None:
            for d, then in batch:
                _call(then, *outcome(d))
            return
        for (_, then), value in zip(finished, values, strict=True):
            _call(then, True, value)
        for d, then in batch:
            if d.status != "finished":
                _call(then, *outcome(d))


def _call(then: Then, ok: bool, value: Any) -> None:
    try:
        then(ok, value)
    except Exception:  # one callback's bug must not strand the others' results
        log.exception("conexe.dask: completing a future failed")
