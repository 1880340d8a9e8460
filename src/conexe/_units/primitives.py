"""The twin of primitives.pxi: the claim and outcome codes as globals, the
latency histogram's bucket, and the loggers."""

from __future__ import annotations

import logging
import math

from .._contract import (
    HIST_BUCKETS,
    HIST_PER_OCTAVE,
    Claim,
    Outcome,
)

# The claim and outcome codes as module globals: read on every task, a global is
# cheaper than an enum attribute.
SKIP_CANCELLED = Claim.SKIP_CANCELLED
CLAIMED = Claim.CLAIMED
SKIP_EXPIRED = Claim.SKIP_EXPIRED
EXPIRED_NOW = Claim.EXPIRED_NOW
COMPLETED = Outcome.COMPLETED
FAILED = Outcome.FAILED
RETRIED = Outcome.RETRIED
CANCELLED_UNSTARTED = Outcome.CANCELLED_UNSTARTED

log = logging.getLogger("conexe")


def hist_index(ns: int) -> int:
    if ns < 1:
        return 0
    i = int(math.log2(ns) * HIST_PER_OCTAVE)
    return i if i < HIST_BUCKETS else HIST_BUCKETS - 1
