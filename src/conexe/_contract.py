"""What the two cores agree on: the codes, limits and messages they share.

The Cython core (``_core.pyx``) and its pure-Python twin (``_core_py.py``)
both read their messages and numbers from here, and so do the APIs above
them, so a wording or a code changes in one place. The C side declares the
same codes as ``cdef enum`` in ``_contract.pxd`` (it needs them at compile
time); ``_core.pyx`` checks at import that those match this module, so the
two can't drift apart unnoticed::

    >>> from conexe import _contract
    >>> int(_contract.Claim.CLAIMED), _contract.EXIT_REPLACE
    (1, 'replace')
    >>> _contract.QUEUE_FULL_MESSAGE % (3, 3)
    'the queue is full (3 tasks queued, max_queue_size=3)'
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Sequence
from typing import Final

__all__ = [
    "AFTER_FORK_MESSAGE",
    "ASYNCIO_SEES_ENDED_AT_ONCE",
    "C_ONLY_UNITS",
    "CHECK_HEALTH_RAISED_MESSAGE",
    "CLOSED_MESSAGE",
    "CONTEXTS",
    "CONTEXT_MESSAGE",
    "Claim",
    "EXIT_REPLACE",
    "EXIT_RETIRE",
    "EXIT_SHUTDOWN",
    "HIST_BUCKETS",
    "HIST_PER_OCTAVE",
    "KEY_NOT_HASHABLE_MESSAGE",
    "KEY_WIDTH_MESSAGE",
    "KEY_SHARDS",
    "LATENCY_KIND_MESSAGE",
    "MAX_RETRIES_MESSAGE",
    "NOT_CALLABLE_MESSAGE",
    "NO_WORKER_THREAD_MESSAGE",
    "Outcome",
    "QUEUE_FULL_MESSAGE",
    "START_DEADLINE_MESSAGE",
    "hist_percentiles",
    "must_be_non_negative",
]


class Claim(enum.IntEnum):
    """What a worker (or ``close``/``fail_queued``) found when it claimed a
    future it took off a lane (``PENDING -> RUNNING``)."""

    SKIP_CANCELLED = 0  # cancelled while queued: count it, skip it
    CLAIMED = 1  # it was pending and is now running: run it
    SKIP_EXPIRED = 2  # its start deadline's reaper failed it first: count, skip
    EXPIRED_NOW = 3  # its start deadline has passed: fail it now, then skip


class Outcome(enum.IntEnum):
    """How the task a worker just ran ended, as the worker loop counts it."""

    NONE = 0  # nothing to count (no task yet, or one failed by its deadline)
    COMPLETED = 1  # it returned: its future gets the result
    FAILED = 2  # it raised (or its retries ran out): its future gets the error
    RETRIED = 3  # its resource was broken and it has tries left: queued again
    CANCELLED_UNSTARTED = 4  # asyncio cancelled it between its claim and its start


# Why Engine.worker_loop returned.
EXIT_SHUTDOWN: Final = "shutdown"  # closed and drained
EXIT_RETIRE: Final = "retire"  # retire_worker() asked this worker to leave
EXIT_REPLACE: Final = "replace"  # its resource is broken (Runner): start another

# Latency histograms: 4 buckets per power of two of nanoseconds (~19 %
# resolution); 256 buckets reach far beyond any real latency (2**64 ns).
HIST_BUCKETS: Final = 256
HIST_PER_OCTAVE: Final = 4

# The dispatch map of keyed tasks is split into this many shards (a power
# of two: a key's shard is ``hash(key) & (KEY_SHARDS - 1)``).
KEY_SHARDS: Final = 64

# Messages. The first is concurrent.futures' own wording, word for word.
CLOSED_MESSAGE: Final = "cannot schedule new futures after shutdown"
AFTER_FORK_MESSAGE: Final = (
    "cannot schedule new futures: this executor was created before "
    "os.fork(); create a new one in the child process"
)
QUEUE_FULL_MESSAGE: Final = "the queue is full (%d tasks queued, max_queue_size=%d)"
START_DEADLINE_MESSAGE: Final = "task did not start before its start deadline"
MAX_RETRIES_MESSAGE: Final = "max retries exceeded: %r"
NOT_CALLABLE_MESSAGE: Final = "%r object is not callable"
# How asyncio's wrap_future shows its loop a concurrent future that has
# already ended, which both cores copy for a future asyncio first looks at
# after it ended: from 3.14 its _chain_future copies the state at once when it
# runs in that loop's thread; before, always with call_soon_threadsafe, so
# the loop saw the end only on its next turn.
ASYNCIO_SEES_ENDED_AT_ONCE: Final = sys.version_info >= (3, 14)
# The units of the C core (``_units/NAME.pxi``) with no pure-Python twin
# (``_units/NAME.py``), and why. Every other unit has one (test_core_parity).
C_ONLY_UNITS: Final = {
    "waiters": (
        "concurrent.futures.wait()'s waiter protocol on a C lock per future; "
        "the twin's Future keeps the stdlib's own Condition and waiters"
    ),
    "awake_policy": (
        "how many workers stay awake on a free-threaded build with the GIL off; "
        "the twin wakes a worker for every queued task that has none on its way"
    ),
}
# The contexts a task may run in (the executors' ``context=`` option).
CONTEXTS: Final = ("copy", "fresh")
CONTEXT_MESSAGE: Final = "context must be 'copy' or 'fresh', got %r"
# How many of a key's tasks may be in flight at once (KeyedExecutor's max_per_key).
KEY_WIDTH_MESSAGE: Final = "max_per_key must be >= 1, got %r"
KEY_NOT_HASHABLE_MESSAGE: Final = (
    "key must be hashable (str, int, bytes, tuple, frozenset, ...), got %r: %s"
)
LATENCY_KIND_MESSAGE: Final = "unknown latency kind %r: use 'wait' or 'run'"
# Logged (to the "conexe" logger), not raised.
CHECK_HEALTH_RAISED_MESSAGE: Final = "check_health raised; treating the resource as broken"
NO_WORKER_THREAD_MESSAGE: Final = "conexe could not start a worker thread: %r"


def must_be_non_negative(name: str) -> str:
    """The ValueError message for an argument that must be >= 0::

    >>> must_be_non_negative("timeout")
    'timeout must be >= 0'
    """
    return f"{name} must be >= 0"


def hist_percentiles(hist: Sequence[int], percentiles: Sequence[float]) -> tuple[float, ...]:
    """The given percentiles (0-100) of a latency histogram, in seconds:
    the upper bound of the bucket each falls in (0.0 while it is empty).
    Bucket ``i`` holds latencies below ``2 ** ((i + 1) / HIST_PER_OCTAVE)``
    nanoseconds::

    >>> hist = [0] * HIST_BUCKETS
    >>> hist[40] = 3  # three latencies of about 1 us
    >>> [round(s * 1e6, 2) for s in hist_percentiles(hist, (50, 99))]
    [1.22, 1.22]
    """
    total = sum(hist)
    out = []
    for p in percentiles:
        if total == 0:
            out.append(0.0)
            continue
        rank = max(1, math.ceil(total * p / 100.0))
        seen = 0
        for i, n in enumerate(hist):
            seen += n
            if seen >= rank:
                out.append(float(2.0 ** ((i + 1) / HIST_PER_OCTAVE) / 1e9))
                break
    return tuple(out)
