"""The twin of lanes.pxi: the priority lanes."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .future import Future


class Lanes:
    """One FIFO per priority level, highest served first; the engine holds
    them under its lock, nothing here locks::

        >>> lanes = Lanes()
        >>> lanes.push("low", 0, False); lanes.push("high", 5, False)
        >>> lanes.pop(), lanes.pop(), lanes.pop()
        ('high', 'low', None)
    """

    __slots__ = ("_lanes", "_levels", "size", "above_zero")

    def __init__(self) -> None:
        self._lanes: dict[int, deque[Future[Any]]] = {}
        self._levels: list[int] = []  # priorities with a lane, highest first
        self.size = 0  # tasks in all lanes
        self.above_zero = 0  # of which at a priority above 0

    def push(self, fut: Future[Any], priority: int, front: bool) -> None:
        """Queue ``fut`` at ``priority``: at the back of its lane, or
        (``front``: a retried task) at the front."""
        lane = self._lanes.get(priority)
        if lane is None:
            lane = self._lanes[priority] = deque()
            self._levels.append(priority)
            self._levels.sort(reverse=True)
        if front:
            lane.appendleft(fut)
        else:
            lane.append(fut)
        self.size += 1
        if priority > 0:
            self.above_zero += 1

    def pop(self) -> Future[Any] | None:
        """The first task of the highest priority lane that has one, or None."""
        if not self.size:
            return None
        for level in self._levels:
            lane = self._lanes[level]
            if lane:
                self.size -= 1
                if level > 0:
                    self.above_zero -= 1
                return lane.popleft()
        raise AssertionError("the lanes' size is out of step with their tasks")

    def take_all(self, out: list[Future[Any]]) -> None:
        """Move every queued task to ``out``, highest priority first."""
        for level in self._levels:
            lane = self._lanes[level]
            out.extend(lane)
            lane.clear()
        self.size = 0
        self.above_zero = 0
