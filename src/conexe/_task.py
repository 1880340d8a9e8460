"""``Task`` and ``TaskResponse``: the batch API's records, and the one way
to give a single task options (priority, start deadline) without changing
``submit``'s signature.

    >>> t = Task("double-21", lambda x: 2 * x, (21,), priority=5)
    >>> t.id, t.priority
    ('double-21', 5)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Task", "TaskResponse"]

T = TypeVar("T")


@dataclass(frozen=True)
class Task(Generic[T]):
    """One task: ``fn(*args, **kwargs)`` named ``id``.

    ``priority``: higher runs first (default 0; FIFO within a level).
    ``start_timeout``: seconds from submission; a task still queued then
    fails with TimeoutError instead of running.
    ``timeout``: seconds from submission the task has in all: its deadline,
    which the task sees through ``conexe.current_task()`` (``check()``
    raises TimeoutError past it) and passes on to the tasks it submits.
    Conexe does not stop the task at it; the task decides.

    Typed by what ``fn`` returns (``Task[int]`` for a function returning
    an int), so ``submit_task`` gives a ``Future[int]``.
    """

    id: str
    fn: Callable[..., T]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] | None = None
    priority: int = 0
    start_timeout: float | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise TypeError(f"Task id must be a str, not {type(self.id).__name__}")
        if not callable(self.fn):
            raise TypeError(f"Task fn must be callable, not {type(self.fn).__name__}")
        if isinstance(self.args, (str, bytes)) or not isinstance(self.args, Sequence):
            raise TypeError(f"Task args must be a tuple or list, not {type(self.args).__name__}")
        if self.kwargs is not None and not isinstance(self.kwargs, Mapping):
            raise TypeError(f"Task kwargs must be a dict or None, not {type(self.kwargs).__name__}")
        check_priority(self.priority)
        if self.start_timeout is not None:
            check_timeout(self.start_timeout, "start_timeout")
        if self.timeout is not None:
            check_timeout(self.timeout, "timeout")

    def deadline(self) -> float:
        """The start deadline as a ``time.monotonic()`` value (0.0: none)."""
        if self.start_timeout is None:
            return 0.0
        return time.monotonic() + self.start_timeout

    def run_deadline(self) -> float:
        """The deadline the task sees, a ``time.monotonic()`` value (0.0:
        none)."""
        if self.timeout is None:
            return 0.0
        return time.monotonic() + self.timeout


@dataclass(frozen=True)
class TaskResponse:
    """What ``wait_for_completion()`` reports for one task: its ``value``,
    or the ``error`` it raised (a CancelledError if it never ran)."""

    task_id: str
    value: Any = None
    error: BaseException | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.error is None


def check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, not {type(priority).__name__}")
    if not -(2**31) <= priority < 2**31:
        raise ValueError(f"priority must fit in 32 bits, got {priority}")
    return priority


def check_timeout(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if value != value or value < 0:  # NaN or negative
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)
