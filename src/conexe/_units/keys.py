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
    as the key has nothing queued or running, except a paced key's
    (``rate`` > 0 starts per second, ``burst`` of them at once at most),
    kept until its pace is forgotten (see pacing.py)."""

    __slots__ = (
        "key", "waiting", "shard", "width", "active",
        "interval", "tolerance", "tat", "in_lane", "held",
    )  # fmt: skip

    def __init__(
        self, key: Any, shard: dict[Any, KeyChain], width: int, rate: float, burst: int
    ) -> None:
        self.key = key
        self.waiting: deque[Future[Any]] = deque()
        self.shard = shard
        self.width = width
        self.active = 1  # made for the task that goes to a lane
        # A paced key: one start per ``interval`` seconds on average, up to
        # ``tolerance`` seconds ahead; ``tat`` is when its next start is due
        # at its pace (GCRA's "TAT"). It has one task in a lane at most
        # (``in_lane``); ``held``: its first waiting task waits for its time.
        self.interval = 1.0 / rate if rate > 0.0 else 0.0
        self.tolerance = (burst - 1) * self.interval
        self.tat = 0.0
        self.in_lane = rate > 0.0
        self.held = False


def key_busy(chain: KeyChain | None) -> bool:
    """Whether a key's entry (or None, for no entry) has a task queued or
    running: a paced key's kept entry may have neither."""
    return chain is not None and (chain.active > 0 or bool(chain.waiting))


KEY_SHARD_MASK = KEY_SHARDS - 1
