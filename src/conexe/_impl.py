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
"""

from __future__ import annotations

import os
from types import ModuleType

from . import _core_py

__all__ = ["core", "cores", "NO_EXTENSIONS"]

NO_EXTENSIONS = bool(os.environ.get("CONEXE_NO_EXTENSIONS"))


def _load_extension() -> ModuleType | None:
    """The Cython core, or None where it isn't built (a pure install, or an
    unsupported platform)."""
    try:
        from . import _core  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _core  # type: ignore[no-any-return]


cores: dict[str, ModuleType] = {"py": _core_py}
# Asked for the twin, the extension is never loaded: nothing of it (its
# module, its at-fork hooks, its shared library) is in the process.
_core_c = None if NO_EXTENSIONS else _load_extension()
if _core_c is not None:
    cores["c"] = _core_c

core: ModuleType = _core_c if _core_c is not None else _core_py
