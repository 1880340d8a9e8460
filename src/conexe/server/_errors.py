"""How a refused request is told: pydantic's validation errors turned into
one :class:`InputError` with the HTTP status, the field (``"[2].duration"``)
and a message a person can act on.

    >>> InputError(422, "must not be empty", "[0].name").to_json()
    {'error': '[0].name: must not be empty', 'field': '[0].name'}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

if TYPE_CHECKING:
    from ._schema import Limits

__all__ = ["InputError", "item_error", "json_type", "query_error", "top_level_error"]

ITEM_FIELDS = ("name", "duration", "handler", "args", "kwargs")
# What a field must be, by pydantic's error type.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "finite_number": "an integer",
    "list_type": "an array",
    "dict_type": "an object",
}
_UNITS = {"duration": " (milliseconds)", "history": " (seconds)"}


class InputError(Exception):
    """A request the service refuses: ``status`` (400, 413, 415, 422),
    ``field`` (``"[2].duration"``, or ``None`` for the whole body)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": str(self)}
        if self.field is not None:
            out["field"] = self.field
        return out


def top_level_error(
    body: bytes, exc: ValidationError, max_items: int
) -> tuple[list[Any], InputError | None]:
    """A problem of the body as a whole (not JSON, not an array, too many
    items), or the decoded items whose own errors are to be found."""
    errors = exc.errors(include_url=False)
    for err in errors:
        if err["type"] == "json_invalid":
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as bad:
                return [], InputError(400, f"the body is not valid UTF-8 ({bad.reason})")
            reason = (err.get("ctx") or {}).get("error", err["msg"])
            return [], InputError(400, f"malformed JSON: {reason}")
    for err in errors:
        if err["loc"] == () and err["type"] == "too_long":
            count = err.get("ctx", {}).get("actual_length", "too many")
            return [], InputError(
                413,
                f"{count} tasks in one request, at most {max_items} "
                "allowed (--max-items): split the batch",
            )
    data = json.loads(body)
    if not isinstance(data, list):
        return [], InputError(422, f"expected a JSON array of tasks, got {json_type(data)}", "body")
    return data, None


def item_error(exc: ValidationError, where: str, limits: Limits) -> InputError:
    """The first error of one item (validated alone), for field ``where``."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err["loc"]]
    if not loc:
        if err["type"] in ("model_type", "dict_type"):
            return InputError(422, f"expected an object, got {json_type(err['input'])}", where)
        return InputError(422, _message(err, ""), f"{where}.args")  # the arguments' check
    name = loc[0]
    field = where + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc)
    if err["type"] == "extra_forbidden":
        return InputError(422, _extra_field(name, where), field)
    if err["type"] == "missing":
        hint = {
            "name": ": every task needs a name",
            "duration": " (milliseconds) unless the task names a handler",
        }
        return InputError(422, "required" + hint.get(name, ""), field)
    if err["type"] == "less_than_equal" and name == "duration":
        return InputError(
            422,
            f"{err['input']} ms is over the limit of {limits.max_duration_ms} ms (--max-duration)",
            field,
        )
    return InputError(422, _message(err, name), field)


def query_error(exc: ValidationError) -> InputError:
    """The first problem of a query string, named by its parameter."""
    err = exc.errors(include_url=False)[0]
    name = str(err["loc"][0]) if err["loc"] else "query"
    if err["type"] == "int_parsing":
        return InputError(422, f"must be a number of seconds, got {err['input']!r}", name)
    return InputError(422, _message(err, name), name)


def _extra_field(name: str, where: str) -> str:
    if name == "duration":
        return "give either a duration (a demo sleep) or a handler, not both"
    if name in ("args", "kwargs"):
        return "only allowed with a handler"
    return f"unknown field (allowed: {', '.join(ITEM_FIELDS)})"


def _message(err: ErrorDetails, name: str) -> str:
    """pydantic's error said the way the API says it: what the value must
    be, and what it was."""
    kind, ctx, given = err["type"], err.get("ctx") or {}, err["input"]
    unit = _UNITS.get(name, "")
    if kind in _EXPECTED:
        what = _EXPECTED[kind]
        if name == "duration":
            what = "an integer number of milliseconds"
        return f"must be {what}, got {json_type(given)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}{unit}, got {given!r}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}{unit}, got {given!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"])


def json_type(value: object) -> str:
    """How a JSON value is named in a message (``"a string"``, ``"null"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
