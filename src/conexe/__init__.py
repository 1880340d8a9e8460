"""conexe: a fast, correct task executor for Python, with a C core.

    >>> import conexe
    >>> with conexe.ConcurrentExecutor(4) as ex:
    ...     ex.submit(sum, range(10)).result()
    45

``conexe.IMPLEMENTATION`` says which core is loaded: ``"c"`` (the Cython
extension) or ``"py"`` (its pure-Python twin, chosen by
``CONEXE_NO_EXTENSIONS=1`` or when the extension is missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._current import RunningTask, current_task
from ._errors import BrokenExecutor, MaxRetriesExceeded, QueueFull, TaskCancelled
from ._group import TaskGroup
from ._impl import core as _selected_core
from ._task import Task, TaskResponse
from .executor import ConcurrentExecutor, ExecutorStats, ThreadPoolExecutor
from .keyed import KeyedExecutor, KeyedStats
from .runner import Runner, RunnerStats

__all__ = [
    "BrokenExecutor",
    "ConcurrentExecutor",
    "ExecutorStats",
    "Future",
    "IMPLEMENTATION",
    "KeyedExecutor",
    "KeyedStats",
    "MaxRetriesExceeded",
    "QueueFull",
    "Runner",
    "RunnerStats",
    "RunningTask",
    "Task",
    "TaskCancelled",
    "TaskGroup",
    "TaskResponse",
    "ThreadPoolExecutor",
    "current_task",
]

__version__ = "0.1.0"  # the one place the version is set (pyproject.toml reads it)

if TYPE_CHECKING:
    # Either core's futures, typed through the twin's (the same API).
    from ._core_py import Future
else:
    Future = _selected_core.Future
IMPLEMENTATION: str = _selected_core.IMPLEMENTATION
