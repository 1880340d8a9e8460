"""Waits that Ctrl-C always interrupts.

CPython runs Python signal handlers on the main thread only, and its lock
code (``_PyMutex_LockTimed`` in Python/lock.c) looks for a pending signal
only when the park itself is interrupted (EINTR). A SIGINT whose C handler
ran after the main thread's last check but before it parked (on 3.13t the
lock spins with up to 40 ``sched_yield()`` calls first, which on loaded
CPUs lasts milliseconds) leaves the signal flagged and the thread parked
with nothing to wake it. So on the main thread these waits park in slices
of :data:`SIGNAL_SLICE` seconds; the bytecode run between two slices
handles such a signal. Other threads wait in one piece.
"""

from __future__ import annotations

import threading
import time
from typing import Any

SIGNAL_SLICE = 0.05  # seconds; the longest a flagged Ctrl-C can wait


def needs_slices(timeout: float | None) -> bool:
    """Whether a wait of ``timeout`` seconds must be cut into slices."""
    return threading.current_thread() is threading.main_thread() and (
        timeout is None or timeout > SIGNAL_SLICE
    )


def acquire_interruptibly(lock: Any, timeout: float | None = None) -> bool:
    """``lock.acquire(timeout=...)`` (None: forever) that a Ctrl-C always
    interrupts on the main thread.

        >>> import threading
        >>> acquire_interruptibly(threading.Lock(), 1.0)
        True
    """
    if not needs_slices(timeout):
        return bool(lock.acquire(timeout=-1 if timeout is None else timeout))
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SIGNAL_SLICE if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return False
        if lock.acquire(timeout=min(left, SIGNAL_SLICE)):
            return True


def wait_interruptibly(condition: threading.Condition, timeout: float | None = None) -> bool:
    """``condition.wait(timeout)`` that a Ctrl-C always interrupts on the
    main thread. Like ``wait()``, may return early: callers re-check what
    they wait for. False once ``timeout`` has passed.

    On the main thread, where a wait longer than a slice is cut, it waits
    one slice and returns True: a ``Condition.wait`` whose timeout ends just
    as a notify picks it returns False although it was notified, so a wait
    that kept slicing until notified could wait for a notify already spent.

        >>> c = threading.Condition()
        >>> with c:
        ...     wait_interruptibly(c, 0.01)
        False
    """
    if not needs_slices(timeout):
        return condition.wait(timeout)
    condition.wait(SIGNAL_SLICE)  # timeout is None or longer: time is left
    return True
