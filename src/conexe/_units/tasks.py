"""The twin of tasks.pxi: :func:`run_chunk` and :class:`ChunkItemError`."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any


class ChunkItemError:
    """Marks an item of a :func:`run_chunk` result whose call raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """``[fn(*args) for args in chunk]``, except that an item that raises
    gives a :class:`ChunkItemError` and the rest still run (``map``'s
    per-item semantics, one queue entry per chunk)::

        >>> [getattr(r, "error", r) for r in run_chunk(divmod, [(7, 2), (1, 0)])]
        [(3, 1), ZeroDivisionError('integer division or modulo by zero')]
    """
    out = []
    for args in chunk:
        try:
            # Each item in a copy of the chunk's context, as if submitted
            # on its own: what one item sets, the next doesn't see.
            out.append(contextvars.copy_context().run(fn, *args))
        except BaseException as exc:
            out.append(ChunkItemError(exc))
    # A failed call's frame links back (f_back) to this one, whose locals
    # outlive it: leave ``out`` there and out -> exception -> traceback ->
    # frame -> out is a cycle only the cyclic GC frees.
    try:
        return out
    finally:
        del out
