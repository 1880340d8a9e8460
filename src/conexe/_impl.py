"""Which core is loaded: the Cython extension, or its pure-Python twin.

``CONEXE_NO_EXTENSIONS=1`` (any non-empty value) forces the twin, and then
the extension is not even imported (``conexe._core`` stays out of
``sys.modules``); an extension that can't be imported does the same.
``core`` is the module in use and ``cores`` maps ``"c"``/``"py"`` to each
core that is loaded, which is how the tests and benchmarks run both side by
side::

    >>> from conexe._impl import core, cores
    >>> core.IMPLEMENTATION in cores
    True

The APIs hold their core as a :class:`Core`, typed through the twin (as
multidict and propcache type theirs), so mypy checks every call they make
into it; the tests check that the C core has the twin's names and
signatures (tests/test_core_parity.py), and stubtest checks ``_core.pyi``
against the built extension.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, cast

from . import _core_py

__all__ = ["Core", "CoreEngine", "CoreFuture", "CoreWorker", "core", "cores", "NO_EXTENSIONS"]

NO_EXTENSIONS = bool(os.environ.get("CONEXE_NO_EXTENSIONS"))


class Core(Protocol):
    """What the APIs use from a core module (``_core`` or ``_core_py``)."""

    IMPLEMENTATION: str
    Engine: type[_core_py.Engine]
    Future: type[_core_py.Future[Any]]
    Worker: type[_core_py.Worker]
    ChunkItemError: type[_core_py.ChunkItemError]

    @property
    def run_chunk(self) -> Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]: ...

    @property
    def executor_submit(self) -> Callable[..., Any]: ...

    @property
    def running_future(self) -> Callable[[], _core_py.Future[Any] | None]: ...


def _load_extension() -> Core | None:
    """The Cython core, or None where it isn't built (a pure install, or an
    unsupported platform)."""
    try:
        from . import _core as extension
    except ImportError:
        return None
    # Same names and signatures as the twin (checked by the parity tests).
    return cast(Core, extension)


# The types of what a core makes, either core's, typed through the twin (the
# seam between the APIs and the core, so mypy follows every call across it):
# its futures (a concurrent.futures.Future plus what the APIs call on it,
# _cancel_if_pending and _expire), its engines and their workers' handles.
CoreFuture = _core_py.Future
CoreEngine = _core_py.Engine
CoreWorker = _core_py.Worker

cores: dict[str, Core] = {"py": _core_py}
# Asked for the twin, the extension is never loaded: nothing of it (its
# module, its at-fork hooks, its shared library) is in the process.
_core_c = None if NO_EXTENSIONS else _load_extension()
if _core_c is not None:
    cores["c"] = _core_c

core: Core = _core_c if _core_c is not None else cores["py"]
