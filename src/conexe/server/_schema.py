"""Reading a ``POST /tasks`` body: every check a request must pass before
anything is queued, each failure an :class:`InputError` with the HTTP status
and the field it is about.

    >>> limits = Limits(max_items=10, max_duration_ms=60_000)
    >>> [spec.name for spec in parse_tasks(b'[{"name": "a", "duration": 5}]', limits, {})]
    ['a']
    >>> parse_tasks(b'[{"name": "a", "duration": -1}]', limits, {})
    Traceback (most recent call last):
    ...
    conexe.server._schema.InputError: [0].duration: must be >= 0 (milliseconds), got -1
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InputError", "Limits", "TaskSpec", "check_content_type", "parse_tasks"]

# Names that GET /tasks/{name} could never reach: these paths list tasks.
RESERVED_NAMES = frozenset({"running", "pending"})
MAX_NAME_LENGTH = 256
_ITEM_FIELDS = ("name", "duration", "handler", "args", "kwargs")


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


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (the ``--max-*`` flags)."""

    max_items: int = 10_000
    max_duration_ms: int = 3_600_000
    max_body_bytes: int = 1 << 20


@dataclass(frozen=True)
class TaskSpec:
    """One validated item: a demo sleep of ``duration`` ms, or a call of a
    registered ``handler`` with JSON ``args``/``kwargs``."""

    name: str
    duration: int | None = None
    handler: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def check_content_type(header: str | None) -> None:
    """Accept ``application/json``, with or without ``charset=utf-8``."""
    if header is None:
        raise InputError(415, "send the body as JSON with Content-Type: application/json")
    media, _, params = header.partition(";")
    if media.strip().lower() != "application/json":
        raise InputError(
            415, f"Content-Type {media.strip()!r} is not supported: send application/json"
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                raise InputError(415, f"charset {charset!r} is not supported: send utf-8 JSON")


def parse_tasks(
    body: bytes, limits: Limits, handlers: Mapping[str, Callable[..., Any]]
) -> list[TaskSpec]:
    """The body's items, validated; raises InputError on the first problem."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(400, f"the body is not valid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, list):
        raise InputError(
            422,
            f"expected a JSON array of tasks, got {_json_type(data)}",
            "body",
        )
    if len(data) > limits.max_items:
        raise InputError(
            413,
            f"{len(data)} tasks in one request, at most {limits.max_items} allowed "
            "(--max-items): split the batch",
        )
    return [_parse_item(item, i, limits, handlers) for i, item in enumerate(data)]


def _parse_item(
    item: object, i: int, limits: Limits, handlers: Mapping[str, Callable[..., Any]]
) -> TaskSpec:
    where = f"[{i}]"
    if not isinstance(item, dict):
        raise InputError(422, f"expected an object, got {_json_type(item)}", where)
    for key in item:
        if key not in _ITEM_FIELDS:
            raise InputError(
                422, f"unknown field (allowed: {', '.join(_ITEM_FIELDS)})", f"{where}.{key}"
            )
    name = _parse_name(item.get("name"), f"{where}.name")
    handler_name = item.get("handler")
    if handler_name is None:
        for key in ("args", "kwargs"):
            if key in item:
                raise InputError(422, "only allowed with a handler", f"{where}.{key}")
        duration = _parse_duration(item.get("duration"), f"{where}.duration", limits)
        return TaskSpec(name, duration=duration)
    if "duration" in item:
        raise InputError(
            422, "give either a duration (a demo sleep) or a handler, not both",
            f"{where}.duration",
        )
    if not isinstance(handler_name, str):
        raise InputError(422, f"must be a string, got {_json_type(handler_name)}",
                         f"{where}.handler")
    fn = handlers.get(handler_name)
    if fn is None:
        known = ", ".join(sorted(handlers)) or "none: start the server with --handlers MODULE"
        raise InputError(422, f"unknown handler {handler_name!r} (registered: {known})",
                         f"{where}.handler")
    args = item.get("args", [])
    if not isinstance(args, list):
        raise InputError(422, f"must be an array, got {_json_type(args)}", f"{where}.args")
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InputError(422, f"must be an object, got {_json_type(kwargs)}", f"{where}.kwargs")
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise InputError(422, f"do not fit {handler_name}(): {exc}", f"{where}.args") from None
    except ValueError:  # no signature to check (a builtin): the call will tell
        pass
    return TaskSpec(name, handler=handler_name, args=tuple(args), kwargs=kwargs)


def _parse_name(name: object, where: str) -> str:
    if name is None:
        raise InputError(422, "required: every task needs a name", where)
    if not isinstance(name, str):
        raise InputError(422, f"must be a string, got {_json_type(name)}", where)
    if not name:
        raise InputError(422, "must not be empty", where)
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(422, f"longer than {MAX_NAME_LENGTH} characters", where)
    if name in RESERVED_NAMES:
        raise InputError(
            422, f"{name!r} is reserved (GET /tasks/{name} lists tasks): pick another name",
            where,
        )
    return name


def _parse_duration(value: object, where: str, limits: Limits) -> int:
    if value is None:
        raise InputError(422, "required (milliseconds) unless the task names a handler", where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(422, f"must be an integer number of milliseconds, got "
                         f"{_json_type(value)}", where)
    if value < 0:
        raise InputError(422, f"must be >= 0 (milliseconds), got {value}", where)
    if value > limits.max_duration_ms:
        raise InputError(
            422, f"{value} ms is over the limit of {limits.max_duration_ms} ms (--max-duration)",
            where,
        )
    return value


def _json_type(value: object) -> str:
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
