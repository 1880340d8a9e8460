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
    """One key's entry in the dispatch map: the tasks waiting behind the
    key's head (the one task of the key that is in a lane or running).
    The entry is deleted as soon as the key has nothing queued or running."""

    __slots__ = ("key", "waiting", "shard")

    def __init__(self, key: Any, shard: dict[Any, KeyChain]) -> None:
        self.key = key
        self.waiting: deque[Future[Any]] = deque()
        self.shard = shard


KEY_SHARD_MASK = KEY_SHARDS - 1
