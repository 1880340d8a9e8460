"""Example handlers: ``conexe serve --handlers conexe.server._demo_handlers``.

A request then runs them by name with JSON arguments::

    [{"name": "sum-1", "handler": "add", "args": [2, 3]}]
"""

from __future__ import annotations

import time


def add(a: float, b: float) -> float:
    """The sum of two numbers."""
    return a + b


def slow_echo(value: object, seconds: float = 0.0) -> object:
    """``value``, after ``seconds`` of sleep."""
    time.sleep(seconds)
    return value


def fail(message: str) -> None:
    """Raise ValueError(message): to see how a failed task is reported."""
    raise ValueError(message)
