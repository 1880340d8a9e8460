"""The C core and its twin declare the same surface: the same ``__all__``,
the same public members on every class, the same signatures, and the codes
of ``_contract`` (messages are compared in test_core.py). Together with
``python -m mypy.stubtest conexe._core`` (CI's lint step) this is what keeps
the hand-written ``_core.pyi`` and the two implementations in step."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from conexe import _contract, _core_py
from conexe._impl import cores

pytestmark = pytest.mark.c_extension

# What the APIs use beyond the public names: part of the declared surface
# (_core.pyi, the twin), so both cores must have them.
API_PRIVATE_MEMBERS = {"Future": ["_expire", "_cancel_if_pending"]}
CLASSES = [name for name in _core_py.__all__ if isinstance(getattr(_core_py, name), type)]


@pytest.fixture
def c_core() -> Any:
    """The built extension (this module's tests need both cores)."""
    if "c" not in cores:
        pytest.fail("conexe._core is not built: build it, or pass --no-c-extensions")
    return cores["c"]


def _shape(fn: Any) -> list[tuple[str, Any, Any]]:
    """A callable's parameters without annotations: name, kind, default."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


UNITS = Path(_core_py.__file__).parent / "_units"
# "No unit over ~800 lines": past this, split the unit along its concepts.
UNIT_MAX_LINES = 850


def test_every_unit_of_the_c_core_has_its_twin_or_is_declared_c_only() -> None:
    c_units = {p.stem for p in UNITS.glob("*.pxi")}
    twins = {p.stem for p in UNITS.glob("*.py")} - {"__init__"}
    assert c_units, f"no units in {UNITS}"
    assert sorted(c_units - twins) == sorted(_contract.C_ONLY_UNITS)
    assert twins <= c_units, "a twin module with no C unit"


def test_every_unit_with_declarations_is_included_by_the_hubs() -> None:
    core_pyx = (UNITS.parent / "_core.pyx").read_text()
    core_pxd = (UNITS.parent / "_core.pxd").read_text()
    for unit in UNITS.glob("*.pxi"):
        assert f'include "_units/{unit.name}"' in core_pyx, unit.name
    for decl in UNITS.glob("*.pxd"):
        assert f'include "_units/{decl.name}"' in core_pxd, decl.name
        assert decl.with_suffix(".pxi").exists(), decl.name


@pytest.mark.parametrize("pattern", ["*.pxi", "*.py"])
def test_no_unit_is_too_long_to_review(pattern: str) -> None:
    lengths = {p.name: len(p.read_text().splitlines()) for p in UNITS.glob(pattern)}
    assert lengths
    assert {n: k for n, k in lengths.items() if k > UNIT_MAX_LINES} == {}


def test_workers_on_their_way_are_counted_only_by_the_named_transitions() -> None:
    # Engine.waking gates every wake-up; its edits live in one place per core
    # (workers.pxi / workers.py: unpark_locked, set_off_locked, arrived_locked...).
    for unit in [*UNITS.glob("*.pxi"), *UNITS.glob("*.py")]:
        edits = re.findall(r"\bwaking\s*[-+]=", unit.read_text())
        assert not edits or unit.stem == "workers", unit.name


def test_both_cores_export_the_same_names(c_core: Any) -> None:
    assert list(c_core.__all__) == list(_core_py.__all__)
    for name in _core_py.__all__:
        assert hasattr(c_core, name), name
    for name in ("EXIT_SHUTDOWN", "EXIT_RETIRE", "EXIT_REPLACE"):
        assert getattr(c_core, name) == getattr(_core_py, name) == getattr(_contract, name)


@pytest.mark.parametrize("name", CLASSES)
def test_classes_have_the_same_public_members(c_core: Any, name: str) -> None:
    c_cls, py_cls = getattr(c_core, name), getattr(_core_py, name)
    assert _public(c_cls) == _public(py_cls)
    for member in API_PRIVATE_MEMBERS.get(name, []):
        assert callable(getattr(c_cls, member)) and callable(getattr(py_cls, member)), member


@pytest.mark.parametrize("name", CLASSES)
def test_methods_have_the_same_signatures(c_core: Any, name: str) -> None:
    c_cls, py_cls = getattr(c_core, name), getattr(_core_py, name)
    members = sorted(_public(py_cls) | set(API_PRIVATE_MEMBERS.get(name, [])))
    for member in members:
        c_attr, py_attr = getattr(c_cls, member), getattr(py_cls, member)
        if isinstance(py_attr, property) or not callable(py_attr):
            # A property or a slot on one side, a C getter on the other:
            # both must be plain data, not methods.
            assert not inspect.isroutine(c_attr), member
            continue
        assert _shape(c_attr) == _shape(py_attr), member


def test_module_functions_have_the_same_signatures(c_core: Any) -> None:
    assert _shape(c_core.run_chunk) == _shape(_core_py.run_chunk)
    assert _shape(c_core.executor_submit) == _shape(_core_py.executor_submit)


def test_constructors_take_the_same_arguments(c_core: Any) -> None:
    # A cdef class's __init__ has no introspectable signature: call the C
    # constructors with every argument the twin's take, by name.
    engine_args = {
        p.name: p.default for p in inspect.signature(_core_py.Engine).parameters.values()
    }
    c_core.Engine(**engine_args).close()
    assert c_core.Worker(resource="r").resource == _core_py.Worker(resource="r").resource
    assert c_core.ChunkItemError(error=ValueError()).error.__class__ is ValueError
    with pytest.raises(TypeError):
        c_core.Engine(0, None)  # on_need_worker is keyword-only in both
    with pytest.raises(TypeError):
        _core_py.Engine(0, None)  # type: ignore[misc]


def test_the_c_core_was_built_from_this_contract(c_core: Any) -> None:
    compiled = c_core._check_contract()
    assert compiled["Claim"] == {c.name: c.value for c in _contract.Claim}
    assert compiled["Outcome"] == {o.name: o.value for o in _contract.Outcome}
