"""Which core is loaded: the Cython extension, or its pure-Python twin.

``CONEXE_NO_EXTENSIONS=1`` (any non-empty value) forces the twin; so does an
extension that can't be imported. ``core`` is the module in use and
``cores`` maps ``"c"``/``"py"`` to each core that is available, which is how
the tests and benchmarks run both side by side::

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

cores: dict[str, ModuleType] = {"py": _core_py}
_core_c: ModuleType | None
try:
    from . import _core as _core_c  # type: ignore[attr-defined]
except ImportError:  # not built (a pure install, or an unsupported platform)
    _core_c = None
if _core_c is not None:
    cores["c"] = _core_c

core: ModuleType = _core_py if NO_EXTENSIONS or _core_c is None else _core_c
