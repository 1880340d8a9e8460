from cpython.contextvars cimport (
    PyContext_Copy,
    PyContext_CopyCurrent,
    PyContext_Enter,
    PyContext_Exit,
)

from ._contract import NOT_CALLABLE_MESSAGE


class ChunkItemError:
    """Marks an item of a :func:`run_chunk` result whose call raised."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


def run_chunk(fn, list chunk):
    """``[fn(*args) for args in chunk]``, except that an item that raises
    gives a :class:`ChunkItemError` and the rest still run (``map``'s
    per-item semantics, one queue entry per chunk)::

        >>> [getattr(r, "error", r) for r in run_chunk(divmod, [(7, 2), (1, 0)])]
        [(3, 1), ZeroDivisionError('integer division or modulo by zero')]
    """
    cdef list out = []
    cdef object chunk_ctx = PyContext_CopyCurrent(), ctx
    for args in chunk:
        # Each item in a copy of the chunk's context, as if submitted on
        # its own: what one item sets, the next doesn't see.
        ctx = PyContext_Copy(chunk_ctx)
        PyContext_Enter(ctx)
        try:
            out.append(fn(*args))
        except BaseException as exc:
            out.append(ChunkItemError(exc))
        finally:
            PyContext_Exit(ctx)
    return out


cdef inline object copy_context_here():
    """A copy of the calling thread's context, for a task to run in; the
    worker drops it (see new_future)."""
    cdef object ctx = PyContext_CopyCurrent()
    conexe_hand_over(ctx)
    return ctx


cdef object not_callable(object fn):
    return TypeError(NOT_CALLABLE_MESSAGE % type(fn).__name__)
