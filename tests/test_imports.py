"""Every module of the package imports on its own, in a fresh interpreter
(no import cycle hides behind an import order), and the C core is the
default whenever it is built (as multidict's test_circular_imports.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conexe
from conexe._impl import cores

PACKAGE = Path(conexe.__file__).parent


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CONEXE_NO_EXTENSIONS", None)
    return env


# The subpackages that need an optional extra: (extra, modules it brings).
EXTRAS = {
    "conexe.server": ("server", ("starlette", "uvicorn", "prometheus_client", "pydantic")),
    "conexe.dask": ("dask", ("distributed",)),
}


def _needs_missing_extra(module: str) -> str | None:
    """Why ``module`` can't import here (its extra is not installed), or None."""
    for package, (extra, needs) in EXTRAS.items():
        if module == package or module.startswith(package + "."):
            missing = [name for name in needs if importlib.util.find_spec(name) is None]
            if missing:
                return f"{module} needs the '{extra}' extra (missing: {', '.join(missing)})"
    return None


@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone(module: str) -> None:
    reason = _needs_missing_extra(module)
    if reason is not None:
        pytest.skip(reason)
    subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        check=True,
        env=_clean_env(),
        timeout=120,
    )


@pytest.mark.c_extension
def test_the_c_core_is_the_default_when_built() -> None:
    assert "c" in cores, "conexe._core is not built: build it, or pass --no-c-extensions"
    out = subprocess.run(
        [sys.executable, "-c", "import conexe; print(conexe.IMPLEMENTATION)"],
        check=True,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    assert out.stdout.strip() == "c"


def test_no_extensions_selects_the_twin() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import conexe; print(conexe.IMPLEMENTATION)"],
        check=True,
        capture_output=True,
        text=True,
        env={**_clean_env(), "CONEXE_NO_EXTENSIONS": "1"},
        timeout=120,
    )
    assert out.stdout.strip() == "py"
