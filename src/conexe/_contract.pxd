# cython: language_level=3
# The codes of _contract.py as C constants, for _core.pyx, which needs them
# at compile time. _core.pyx checks at import that every value here equals
# its twin in _contract.py (see check_contract there).

cdef enum Claim:
    # What claiming a queued future found (_contract.Claim).
    SKIP_CANCELLED = 0
    CLAIMED = 1
    SKIP_EXPIRED = 2
    EXPIRED_NOW = 3

cdef enum Outcome:
    # How the task a worker just ran ended (_contract.Outcome).
    OUTCOME_NONE = 0
    COMPLETED = 1
    FAILED = 2
    RETRIED = 3
    CANCELLED_UNSTARTED = 4

cdef enum:
    # Latency histogram and dispatch map sizes (_contract.HIST_BUCKETS, ...).
    HIST_BUCKETS = 256
    HIST_PER_OCTAVE = 4
    KEY_SHARDS = 64
    KEY_SHARD_MASK = KEY_SHARDS - 1
