from ._contract import KEY_NOT_HASHABLE_MESSAGE


cdef int check_key(object key) except -1:
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(KEY_NOT_HASHABLE_MESSAGE % (type(key).__name__, exc)) from None
    return 0


cdef inline bint key_busy(object entry):
    """Whether a key's entry (or None, for no entry) has a task queued or
    running: a paced key's kept entry may have neither."""
    if entry is None:
        return False
    return (<KeyChain>entry).active > 0 or (<KeyChain>entry).first is not None


cdef void unlink_waiting(KeyChain chain):
    """Drop the tasks waiting behind a key, when the engine is freed: the
    untracked futures and their chain form a cycle the GC can't see, so
    unlink them by hand, one by one (freeing a long chain at once would
    recurse)."""
    cdef FutureBase fut = chain.first, nxt
    chain.first = chain.last = None
    while fut is not None:
        nxt = fut.next_in_key
        fut.next_in_key = None
        fut.chain = None
        gc_track(fut)  # its arguments may close a cycle
        fut = nxt


cdef void take_waiting(KeyChain chain, list out):
    cdef FutureBase fut = chain.first, nxt
    while fut is not None:
        out.append(fut)
        nxt = fut.next_in_key
        fut.next_in_key = None
        fut = nxt
    chain.first = chain.last = None


cdef class KeyChain:
    """One key's entry in the dispatch map: its ``active`` tasks (in a lane
    or running: at most ``width``, 1 unless the executor allows more) and
    the tasks waiting behind them, in order. A paced key (``rate`` > 0
    starts per second, ``burst`` of them at once at most) keeps its entry
    until its pace is forgotten (see pacing.pxi)."""

    def __cinit__(self, key, dict shard, Py_ssize_t width, double rate, Py_ssize_t burst):
        self.key = key
        self.first = self.last = None
        self.shard = shard
        self.width = width
        self.active = 1  # made for the task that goes to a lane
        if rate > 0.0:
            self.interval = 1.0 / rate
            self.tolerance = (burst - 1) * self.interval
            self.in_lane = True
