from cpython.mem cimport PyMem_Realloc, PyMem_Free
from libc.string cimport memmove


# -- priority lanes --------------------------------------------------------------
# One FIFO ring per priority level, the levels sorted highest first; a
# level's lane is made the first time a task of that priority is queued and
# kept. The engine holds them under its lock; nothing here locks.


cdef inline int lanes_push(Lanes *lanes, FutureBase fut, int priority, bint front) except -1:
    """Queue ``fut`` at ``priority``: at the back of its lane, or (``front``:
    a retried task) at the front."""
    cdef int i, capacity
    cdef Lane *grown
    for i in range(lanes.count):
        if lanes.lanes[i].priority == priority:
            break
    else:
        # A new level: keep the lanes sorted, highest priority first.
        if lanes.count == lanes.capacity:
            capacity = lanes.capacity * 2 if lanes.capacity else 4
            grown = <Lane *>PyMem_Realloc(lanes.lanes, capacity * sizeof(Lane))
            if grown == NULL:
                raise MemoryError()
            lanes.lanes = grown
            lanes.capacity = capacity
        i = 0
        while i < lanes.count and lanes.lanes[i].priority > priority:
            i += 1
        memmove(&lanes.lanes[i + 1], &lanes.lanes[i], (lanes.count - i) * sizeof(Lane))
        lanes.lanes[i].priority = priority
        conexe_ring_init(&lanes.lanes[i].ring)
        lanes.count += 1
    if front:
        conexe_ring_push_front(&lanes.lanes[i].ring, fut)
    else:
        conexe_ring_push(&lanes.lanes[i].ring, fut)
    lanes.size += 1
    if priority > 0:
        lanes.above_zero += 1
    return 0


cdef inline FutureBase lanes_pop(Lanes *lanes):
    """The first task of the highest priority lane that has one, or None."""
    cdef int i
    if lanes.size == 0:
        return None
    for i in range(lanes.count):
        if lanes.lanes[i].ring.size:
            lanes.size -= 1
            if lanes.lanes[i].priority > 0:
                lanes.above_zero -= 1
            return <FutureBase>ring_pop(&lanes.lanes[i].ring)
    return None


cdef int lanes_take_all(Lanes *lanes, list out) except -1:
    """Move every queued task to ``out``, highest priority first."""
    cdef int i
    cdef object item
    for i in range(lanes.count):
        while True:
            item = ring_pop(&lanes.lanes[i].ring)
            if item is None:
                break
            out.append(item)
    lanes.size = 0
    lanes.above_zero = 0
    return 0


cdef void lanes_free(Lanes *lanes) noexcept:
    """Release the lanes' memory (they must be empty: see lanes_take_all)."""
    cdef int i
    if lanes.lanes != NULL:
        for i in range(lanes.count):
            conexe_ring_free(&lanes.lanes[i].ring)
        PyMem_Free(lanes.lanes)
        lanes.lanes = NULL
    lanes.count = lanes.capacity = 0
