"""Checks for the options every executor takes, shared so that
``ConcurrentExecutor``, ``KeyedExecutor`` and the Runner reject bad input
with the same words.

    >>> check_max_workers(4), check_size(0, "max_queue_size")
    (4, 0)
    >>> check_on_full("block", ("raise", "block"))
    'block'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Literal

from ._contract import CONTEXT_MESSAGE, CONTEXTS, KEY_NOT_HASHABLE_MESSAGE, NOT_CALLABLE_MESSAGE

__all__ = [
    "check_buffersize",
    "check_context",
    "check_callable",
    "check_idle_reaping",
    "check_key",
    "check_max_workers",
    "check_on_full",
    "check_size",
    "default_max_workers",
    "usable_cores",
]


def check_callable(fn: object) -> None:
    """TypeError, in ThreadPoolExecutor's words, unless ``fn`` is callable.

    >>> check_callable(len)
    """
    if not callable(fn):
        raise TypeError(NOT_CALLABLE_MESSAGE % type(fn).__name__)


def check_key(key: object) -> None:
    """TypeError naming the key's type unless ``key`` can be hashed (keyed
    executors check before anything is queued)."""
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(KEY_NOT_HASHABLE_MESSAGE % (type(key).__name__, exc)) from None


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count).

    >>> usable_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_max_workers() -> int:
    """``ThreadPoolExecutor``'s default: I/O-bound work, capped at 32, from
    the CPUs this process may use where Python can tell (3.13+)."""
    cpu_count = getattr(os, "process_cpu_count", os.cpu_count)
    return min(32, (cpu_count() or 1) + 4)


def check_buffersize(value: object) -> int | None:
    """``Executor.map``'s ``buffersize``, with Python 3.14's rules and words.

    >>> check_buffersize(None), check_buffersize(8)
    (None, 8)
    >>> check_buffersize(0)
    Traceback (most recent call last):
    ...
    ValueError: buffersize must be None or > 0
    """
    if value is None:
        return None
    if not isinstance(value, int):
        raise TypeError("buffersize must be an integer or None")
    if value < 1:
        raise ValueError("buffersize must be None or > 0")
    return int(value)


def check_max_workers(value: object) -> int:
    """``max_workers`` as given, or the default for None."""
    if value is None:
        return default_max_workers()
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_workers must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError("max_workers must be greater than 0")
    return value


def check_size(value: object, name: str, minimum: int = 0) -> int:
    """An int option that must be at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_idle_reaping(idle_timeout: object, min_workers: object, max_workers: int) -> float:
    """``idle_timeout`` (None: idle workers stay) and ``min_workers`` (how
    many idle reaping leaves, up to ``max_workers``). Returns the timeout
    in seconds for the engine, 0.0 for none.

        >>> check_idle_reaping(30, 0, 4), check_idle_reaping(None, 0, 4)
        (30.0, 0.0)
        >>> check_idle_reaping(0, 0, 4)
        Traceback (most recent call last):
        ...
        ValueError: idle_timeout must be a number of seconds > 0 (or None: idle workers stay), got 0
    """
    check_size(min_workers, "min_workers")
    assert isinstance(min_workers, int)
    if min_workers > max_workers:
        raise ValueError(f"min_workers ({min_workers}) must be <= max_workers ({max_workers})")
    if idle_timeout is None:
        return 0.0
    if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)):
        raise TypeError(
            f"idle_timeout must be a number of seconds or None, not {type(idle_timeout).__name__}"
        )
    if not 0 < idle_timeout <= threading.TIMEOUT_MAX:
        raise ValueError(
            "idle_timeout must be a number of seconds > 0 (or None: idle workers stay), "
            f"got {idle_timeout!r}"
        )
    return float(idle_timeout)


def check_context(value: object) -> Literal["copy", "fresh"]:
    """The executors' ``context=``: what a task runs in. "copy": a copy of
    the submitter's context, made at submit (``asyncio.to_thread``'s rule);
    "fresh": a new, empty one. Never a context another task wrote to.

        >>> check_context("fresh")
        'fresh'
    """
    if value not in CONTEXTS:
        raise ValueError(CONTEXT_MESSAGE % (value,))
    return value  # type: ignore[return-value]


def check_on_full(value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"on_full must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value  # type: ignore[return-value]
