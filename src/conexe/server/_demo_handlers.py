"""Example handlers: ``conexe serve --handlers conexe.server._demo_handlers``.

A request then runs them by name with JSON arguments::

    [{"name": "sum-1", "handler": "add", "args": [2, 3]}]
"""

from __future__ import annotations

import time

import conexe


def add(a: float, b: float) -> float:
    """The sum of two numbers."""
    return a + b


def slow_echo(value: object, seconds: float = 0.0) -> object:
    """``value``, after ``seconds`` of sleep."""
    time.sleep(seconds)
    return value


def patient(seconds: float) -> float:
    """Sleep up to ``seconds``, stopping early once ``DELETE /tasks/{name}``
    asks (``check()`` raises ``conexe.TaskCancelled``): how a handler honours
    a request to stop. Returns the seconds it slept."""
    task = conexe.current_task()
    start = time.monotonic()
    while (slept := time.monotonic() - start) < seconds:
        if task is not None:
            task.check()
        time.sleep(min(0.01, seconds - slept))
    return slept


def fail(message: str) -> None:
    """Raise ValueError(message): to see how a failed task is reported."""
    raise ValueError(message)
