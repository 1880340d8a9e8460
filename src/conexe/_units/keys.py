"""The twin of keys.pxi: the key-sharded dispatch map's entries."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .._contract import (
    KEY_SHARDS,
)

if TYPE_CHECKING:
    from .future import Future


class KeyChain:
    """One key's entry in the dispatch map: its ``active`` tasks (in a lane
    or running: at most ``width``, 1 unless the executor allows more) and
    the tasks waiting behind them, in order. The entry is deleted as soon
    as the key has nothing queued or running."""

    __slots__ = ("key", "waiting", "shard", "width", "active")

    def __init__(self, key: Any, shard: dict[Any, KeyChain], width: int) -> None:
        self.key = key
        self.waiting: deque[Future[Any]] = deque()
        self.shard = shard
        self.width = width
        self.active = 1  # made for the task that goes to a lane


KEY_SHARD_MASK = KEY_SHARDS - 1
