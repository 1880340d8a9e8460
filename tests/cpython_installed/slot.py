"""Put conexe in the stdlib pool's slot, counted.

After :func:`install`, ``concurrent.futures.ThreadPoolExecutor`` is a
conexe ``ThreadPoolExecutor`` (bound to whichever core ``conexe`` chose:
``CONEXE_NO_EXTENSIONS=1`` picks the pure-Python one), so everything that
looks the stdlib pool up by name gets conexe's: the tests' executor
classes, the scripts their child interpreters run, and every asyncio loop's
default executor. The subclass only counts its instances, so that a run can
show the pool it tested was conexe's.

Example::

    >>> import concurrent.futures, conexe, slot
    >>> slot.install()
    >>> issubclass(concurrent.futures.ThreadPoolExecutor, conexe.ThreadPoolExecutor)
    True
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import threading
from typing import Any

import conexe

#: Where each child interpreter writes one line at exit: "PID CREATED".
LOG_VARIABLE = "CONEXE_SLOT_LOG"

_count_lock = threading.Lock()
_created = 0


class ThreadPoolExecutor(conexe.ThreadPoolExecutor):
    """conexe's pool under the stdlib's name, counting its instances."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        global _created
        with _count_lock:
            _created += 1
        super().__init__(*args, **kwargs)


def created() -> int:
    """How many pools this process made through the slot so far."""
    return _created


def install() -> None:
    """Bind the stdlib pool's name to conexe's, and log this process's count at exit."""
    concurrent.futures.ThreadPoolExecutor = ThreadPoolExecutor  # type: ignore[misc]
    log = os.environ.get(LOG_VARIABLE)
    if log:
        atexit.register(_log_count, log)


def _log_count(log: str) -> None:
    with open(log, "a", encoding="ascii") as file:
        file.write(f"{os.getpid()} {created()}\n")
