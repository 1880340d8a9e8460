"""Which core is loaded: the Cython extension, or its pure-Python twin.

``CONEXE_NO_EXTENSIONS=1`` (any non-empty value) forces the twin; so does an
extension that can't be imported. ``core`` is the module in use and
``cores`` maps ``"c"``/``"py"`` to each core that is available, which is how
the tests and benchmarks run both side by side::

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

__all__ = ["Core", "core", "cores", "NO_EXTENSIONS"]

NO_EXTENSIONS = bool(os.environ.get("CONEXE_NO_EXTENSIONS"))


class Core(Protocol):
    """What the APIs use from a core module (``_core`` or ``_core_py``)."""

    IMPLEMENTATION: str
    Engine: type[_core_py.Engine]
    Future: type[_core_py.Future]
    Worker: type[_core_py.Worker]
    ChunkItemError: type[_core_py.ChunkItemError]

    @property
    def run_chunk(self) -> Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]: ...


cores: dict[str, Core] = {"py": _core_py}
try:
    from . import _core as _core_c
except ImportError:  # not built (a pure install, or an unsupported platform)
    pass
else:
    # Same names and signatures as the twin (checked by the parity tests).
    cores["c"] = cast(Core, _core_c)

core: Core = cores["py"] if NO_EXTENSIONS or "c" not in cores else cores["c"]
