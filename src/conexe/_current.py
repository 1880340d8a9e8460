"""``conexe.current_task()``: the task running in this thread, as the task
itself sees it: whether someone asked it to stop (``fut.request_cancel()``,
a group that ended, ``shutdown(cancel_futures=True)``), and its deadline
(``Task(timeout=...)``, or the one of the task that submitted it). Conexe
never stops a running task itself; the task checks when it can::

    >>> import conexe
    >>> def step_through(items):
    ...     done = 0
    ...     for item in items:
    ...         conexe.current_task().check()  # raises once asked to stop
    ...         done += 1
    ...     return done
    >>> with conexe.ConcurrentExecutor(1) as ex:
    ...     ex.submit(step_through, range(3)).result()
    3
    >>> conexe.current_task() is None  # not inside a conexe task
    True
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from . import _core_py
from ._errors import TaskCancelled
from ._impl import Core
from ._impl import core as _selected_core

if TYPE_CHECKING:
    from ._impl import CoreFuture

__all__ = ["RunningTask", "current_task"]

# The twin too, when the extension is the default: an executor built on the
# other core (tests, CONEXE_NO_EXTENSIONS in part of a program) runs tasks
# that must see themselves as well.
_CORES: tuple[Core, ...] = (
    (_selected_core,) if _selected_core is _core_py else (_selected_core, cast(Core, _core_py))
)


def current_task() -> RunningTask | None:
    """The task running in this thread, or None outside a conexe worker
    (and for a task ``on_full="caller_runs"`` ran in its caller)."""
    for core in _CORES:
        fut = core.running_future()
        if fut is not None:
            return RunningTask(fut)
    return None


class RunningTask:
    """A running task's view of itself (see :func:`current_task`)."""

    __slots__ = ("_future",)

    def __init__(self, future: CoreFuture[Any]) -> None:
        self._future = future

    @property
    def cancel_requested(self) -> bool:
        """Whether someone asked this task to stop (``request_cancel``)."""
        return bool(self._future._stop_asked)

    @property
    def deadline(self) -> float | None:
        """When the task should be done, a ``time.monotonic()`` value, or
        None for no deadline."""
        deadline: float = self._future._run_deadline
        return deadline or None

    def time_left(self) -> float | None:
        """Seconds to the deadline (never below 0), or None for none."""
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def check(self) -> None:
        """Raise :class:`conexe.TaskCancelled` if the task was asked to stop,
        or TimeoutError past its deadline; otherwise return at once."""
        if self._future._stop_asked:
            raise TaskCancelled("the task was asked to stop (request_cancel)")
        deadline = self._future._run_deadline
        if deadline and time.monotonic() >= deadline:
            raise TimeoutError("the task is past its deadline")

    def __repr__(self) -> str:
        return (
            f"<RunningTask cancel_requested={self.cancel_requested} time_left={self.time_left()}>"
        )
