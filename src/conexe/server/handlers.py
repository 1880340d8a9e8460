"""``--handlers MODULE``: the plain functions a request may run by name.

Only what the user's module defines is registered: its public functions (or
the functions named in its ``__all__``). A request names one of them and
passes JSON arguments; nothing from a request is ever evaluated as code.

    >>> sorted(load_handlers(["conexe.server._demo_handlers"]))
    ['add', 'fail', 'patient', 'slow_echo']
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["HandlerError", "load_handlers"]


class HandlerError(Exception):
    """A ``--handlers`` module that can't be used (message says why)."""


def load_handlers(modules: Iterable[str]) -> dict[str, Callable[..., Any]]:
    """``{function name: function}`` for every module named; a name defined
    by two modules is an error rather than a silent override."""
    # Like uvicorn's --app-dir: a module beside the user's shell is importable.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    found: dict[str, Callable[..., Any]] = {}
    origin: dict[str, str] = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise HandlerError(
                f"--handlers {module_name}: cannot import it ({exc}); give a module "
                "importable from the current directory or the installed packages"
            ) from exc
        functions = _public_functions(module)
        if not functions:
            raise HandlerError(
                f"--handlers {module_name}: the module defines no public function to register"
            )
        for name, fn in functions.items():
            if name in found:
                raise HandlerError(
                    f"handler {name!r} is defined by both {origin[name]} and {module_name}: "
                    "rename one of them"
                )
            found[name] = fn
            origin[name] = module_name
    return found


def _public_functions(module: Any) -> dict[str, Callable[..., Any]]:
    names = getattr(module, "__all__", None)
    if names is not None:
        picked = {n: getattr(module, n, None) for n in names}
        return {n: f for n, f in picked.items() if inspect.isfunction(f)}
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and inspect.isfunction(obj)
        and obj.__module__ == module.__name__  # not what it imported
    }
