from ._contract import KEY_NOT_HASHABLE_MESSAGE


cdef int check_key(object key) except -1:
    try:
        hash(key)
    except TypeError as exc:
        raise TypeError(KEY_NOT_HASHABLE_MESSAGE % (type(key).__name__, exc)) from None
    return 0


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
    the tasks waiting behind them, in order."""

    def __cinit__(self, key, dict shard, Py_ssize_t width):
        self.key = key
        self.first = self.last = None
        self.shard = shard
        self.width = width
        self.active = 1  # made for the task that goes to a lane
