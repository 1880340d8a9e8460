# cython: language_level=3
# Declarations of lanes.pxi (included by _core.pxd).

cdef struct Lane:
    int priority                    # higher is served first
    conexe_ring ring                # FIFO of owned Future pointers


cdef struct Lanes:
    Lane *lanes                     # sorted by priority, highest first
    int count                       # lanes in use
    int capacity                    # lanes allocated
    Py_ssize_t size                 # tasks in all lanes
    Py_ssize_t above_zero           # of which at a priority above 0
