"""The request and response bodies of ``conexe serve``, each defined once as
a type: the typed dicts below, read by pydantic, validate ``POST /tasks`` and
``GET /stats?history=N``, and the same types give ``/openapi.json`` its
schemas (see :mod:`.openapi`), so what is documented is what is checked.

A request body is a list of items, each one of:

- a demo task ``{"name", "duration"}`` (:func:`demo_task_type`): sleeps that long;
- a call of a registered handler ``{"name", "handler", "args", "kwargs"}``,
  one type per handler (:func:`handler_task_type`), whose schema lists the
  argument shapes the handler's signature accepts.

Both at once is neither, so it is refused, and the schema says so: the item
alternatives exclude each other (a demo task allows no ``handler``, each call
requires its own).

    >>> schema = RequestSchema(Limits(max_items=10, max_duration_ms=60_000), {})
    >>> [spec.name for spec in schema.parse_tasks(b'[{"name": "a", "duration": 5}]')]
    ['a']
    >>> schema.parse_tasks(b'[{"name": "a", "duration": -1}]')
    Traceback (most recent call last):
    ...
    conexe.server._errors.InputError: [0].duration: must be >= 0 (milliseconds), got -1
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal, NotRequired, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic reads these on Python < 3.12 too

from ._errors import InputError, item_error, json_type, query_error, top_level_error

__all__ = [
    "DemoTask",
    "ErrorBody",
    "InputError",
    "Limits",
    "RequestSchema",
    "Stats",
    "FinishedPage",
    "FinishedQuery",
    "StatsQuery",
    "SubmitResult",
    "TaskError",
    "TaskListing",
    "TaskSpec",
    "TaskState",
    "check_content_type",
]

# Names that GET /tasks/{name} could never reach: these paths list tasks.
RESERVED_NAMES = ("running", "pending", "finished")
MAX_NAME_LENGTH = 256


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (the ``--max-*`` flags)."""

    max_items: int = 10_000
    max_duration_ms: int = 3_600_000
    max_body_bytes: int = 1 << 20


NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One validated item, as the service runs it: a demo sleep of
    ``duration`` ms, or a call of a registered ``handler``. (Slots and a
    shared empty ``kwargs``: a batch allocates few objects for the cyclic
    GC to track, which keeps its collections short with many tasks held.)"""

    name: str
    duration: int | None = None
    handler: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=lambda: NO_KWARGS)


# -- request bodies ------------------------------------------------------------------------------
def _not_reserved(name: str) -> str:
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved (GET /tasks/{name} lists tasks): pick another name")
    return name


TaskName = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Unique among pending and running tasks.",
        json_schema_extra={"not": {"enum": list(RESERVED_NAMES)}},
    ),
    AfterValidator(_not_reserved),
]

# The name in GET /tasks/{name}. OpenAPI matches the concrete paths
# /tasks/running, /tasks/pending and /tasks/finished before this template, so the reserved
# names need no exclusion here (a client never sends them to it).
TaskPathName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["Task 1"])]


def _json_number(value: Any) -> Any:
    """Only a JSON number is a duration: no string, no boolean. An integral
    float (``5.0``) is the integer JSON Schema says it is; ``1.5`` is not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def milliseconds(maximum: int) -> Any:
    """The type of a duration: a JSON integer from 0 to ``maximum``."""
    return Annotated[
        int,
        Field(ge=0, le=maximum, description="Milliseconds to sleep."),
        BeforeValidator(_json_number),
    ]


_typed_dict: Any = TypedDict  # a type made at run time, for this server's limits and handlers


def demo_task_type(max_duration_ms: int) -> Any:
    """The type of a demo task ``{"name", "duration"}``: sleeps ``duration``
    milliseconds, at most ``max_duration_ms`` (``--max-duration``). A typed
    dict: an item becomes one plain dict, nothing more to allocate."""
    demo = _typed_dict("DemoTask", {"name": TaskName, "duration": milliseconds(max_duration_ms)})
    demo.__doc__ = "A demo task: sleeps `duration` milliseconds."
    demo.__pydantic_config__ = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Task 1", "duration": 3000}]}
    )
    return demo


DemoTask = demo_task_type(Limits.max_duration_ms)


def handler_task_type(name: str, fn: Callable[..., Any]) -> Any:
    """The type of a call of handler ``name``, ``{"name", "handler", "args",
    "kwargs"}``: ``handler`` is that name, and the arguments must bind to
    ``fn``'s signature (the schema lists the shapes that do)."""
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except ValueError:  # no signature to check (a builtin): the call will tell
        signature = None
    shapes = _call_shapes(signature) if signature is not None else None

    def narrow(schema: dict[str, Any]) -> None:
        schema["description"] = f"A call of {name}{signature or '(...)'}."
        if shapes is not None:
            schema["anyOf"] = shapes

    def arguments_fit(call: dict[str, Any]) -> dict[str, Any]:
        if signature is not None:
            try:
                signature.bind(*call.get("args", ()), **call.get("kwargs", {}))
            except TypeError as exc:
                raise ValueError(f"do not fit {name}(): {exc}") from None
        return call

    call = _typed_dict(
        f"Call_{name}",
        {
            "name": TaskName,
            "handler": Literal[name],
            "args": NotRequired[
                Annotated[list[Any], Field(description="Positional JSON arguments.")]
            ],
            "kwargs": NotRequired[
                Annotated[dict[str, Any], Field(description="Keyword JSON arguments.")]
            ],
        },
    )
    call.__pydantic_config__ = ConfigDict(extra="forbid", json_schema_extra=narrow)
    return Annotated[call, AfterValidator(arguments_fit)]


def _call_shapes(signature: inspect.Signature) -> list[dict[str, Any]]:
    """One JSON-schema alternative per number of positional ``args``: how
    many, and which names ``kwargs`` may or must then hold."""
    kinds = inspect.Parameter
    params = list(signature.parameters.values())
    positional = [
        p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    ]
    keyword_only = [p for p in params if p.kind is kinds.KEYWORD_ONLY]
    var_args = any(p.kind is kinds.VAR_POSITIONAL for p in params)
    var_kwargs = any(p.kind is kinds.VAR_KEYWORD for p in params)
    shapes = []
    for given in range(len(positional) + 1):
        rest = positional[given:]
        if any(p.kind is kinds.POSITIONAL_ONLY and p.default is p.empty for p in rest):
            continue  # a positional-only parameter left without a value
        by_name = [p for p in rest if p.kind is kinds.POSITIONAL_OR_KEYWORD] + keyword_only
        args: dict[str, Any] = {"type": "array", "minItems": given}
        if not (var_args and given == len(positional)):
            args["maxItems"] = given
        kwargs: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: {} for p in by_name},
            "required": [p.name for p in by_name if p.default is p.empty],
            "additionalProperties": var_kwargs,
        }
        required = (["args"] if given else []) + (["kwargs"] if kwargs["required"] else [])
        shapes.append({"properties": {"args": args, "kwargs": kwargs}, "required": required})
    return shapes


class StatsQuery(BaseModel):
    """The query of ``GET /stats``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    history: int | None = Field(
        None,
        ge=1,
        le=600,
        examples=[60],
        description="Add the tasks ended per second in the last N seconds.",
    )


# -- response bodies (built as plain dicts by the service; typed here) ---------------------------
class SubmitResult(TypedDict):
    """What became of each item of one ``POST /tasks``, names in request order."""

    RequestedTask: Annotated[int, Field(description="Items in the request.")]
    SubmittedTasks: Annotated[int, Field(description="Items queued.")]
    DuplicateTasks: Annotated[
        int,
        Field(description="Items whose name was pending or running, or repeated in the request."),
    ]
    RefusedTasks: Annotated[int, Field(description="Items refused: the queue was full.")]
    Accepted: list[str]
    Duplicates: list[str]
    Refused: list[str]


TaskStateName = Literal["pending", "running", "done", "failed", "cancelled"]
ServiceStateName = Literal["serving", "stopping", "stopped"]


class TaskListing(TypedDict):
    """A pending or running task: ``duration`` is null for a handler call."""

    name: str
    duration: int | None
    handler: NotRequired[str]


class TaskError(TypedDict):
    type: str
    message: str


class TaskState(TaskListing):
    """One task's state, and its result or error once it ended."""

    state: TaskStateName
    submitted_at: Annotated[float, Field(description="Unix time.")]
    started_at: float | None
    ended_at: float | None
    attempt: Annotated[
        int,
        Field(
            description="Which run this is: 1, or more for a task the server runs again "
            "from its journal (--state) after a crash cut its run short."
        ),
    ]
    result: NotRequired[Annotated[Any, Field(description="The handler's JSON result.")]]
    result_repr: NotRequired[Annotated[str, Field(description="repr() of a non-JSON result.")]]
    error: NotRequired[TaskError]
    cancel_requested: NotRequired[
        Annotated[bool, Field(description="DELETE asked the running task to stop.")]
    ]


class Throughput(TypedDict):
    interval_s: int
    ended: Annotated[list[int], Field(description="Tasks ended per interval, oldest first.")]


class JournalState(TypedDict):
    path: str
    recovered: Annotated[
        int, Field(description="Unfinished tasks it held at the start, run again.")
    ]


class Stats(TypedDict):
    """The service's and the executor's counters."""

    state: ServiceStateName
    core: Literal["c", "py"]
    pool_size: int
    queue_size: int
    uptime_s: float
    tasks: Annotated[
        dict[str, int],
        Field(
            description="accepted, duplicate, refused, done, failed, cancelled, running, pending"
        ),
    ]
    executor: Annotated[dict[str, int], Field(description="The executor's own counters.")]
    journal: Annotated[
        JournalState | None, Field(description="The --state journal; null: in memory only.")
    ]
    throughput: NotRequired[Throughput]


class FinishedQuery(BaseModel):
    """The query of ``GET /tasks/finished``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    limit: int = Field(100, ge=1, le=1000, description="At most this many tasks (default 100).")
    after: int | None = Field(
        None,
        ge=0,
        examples=[0],
        description="The previous page's ``next``: the tasks that ended after those.",
    )


class FinishedPage(TypedDict):
    """Finished tasks, in the order they ended, and where the next page starts."""

    tasks: list[TaskState]
    next: Annotated[
        int | None,
        Field(description="Give it as ?after= for the next page; null: this is the last one."),
    ]


class Health(TypedDict):
    status: Literal["ok", "stopping", "stopped"]


class ErrorBody(TypedDict):
    """What was wrong; for a 422, the field (``"[3].duration"``, ``"history"``)."""

    error: str
    field: NotRequired[str]


# -- reading a request ---------------------------------------------------------------------------
class RequestSchema:
    """The request types of one server: its ``--max-*`` limits and its
    handlers are part of them (and so of its ``/openapi.json``)."""

    def __init__(self, limits: Limits, handlers: Mapping[str, Callable[..., Any]]) -> None:
        self.limits = limits
        self.handlers = dict(handlers)
        # The limit is this server's --max-duration, in the check and in the schema.
        demo = demo_task_type(limits.max_duration_ms)
        calls = {name: handler_task_type(name, fn) for name, fn in sorted(handlers.items())}
        item: Any = demo
        if calls:  # demo first: the common case is tried first
            item = Annotated[
                Union[(demo, *calls.values())],  # noqa: UP007
                Field(union_mode="left_to_right"),
            ]
        # Each item type alone too: a refused item is explained by the one it aims at.
        self.demo: TypeAdapter[Any] = TypeAdapter(demo)
        self.calls = {name: TypeAdapter(call) for name, call in calls.items()}
        self.tasks: TypeAdapter[list[Any]] = TypeAdapter(
            Annotated[list[item], Field(max_length=limits.max_items)]
        )
        self.stats_query = TypeAdapter(StatsQuery)
        self.finished_query = TypeAdapter(FinishedQuery)

    def parse_tasks(self, body: bytes) -> list[TaskSpec]:
        """The body's items, validated; raises InputError on the first problem."""
        try:
            items = self.tasks.validate_json(body)
        except ValidationError as exc:
            raise self._explain(body, exc) from None
        return [
            TaskSpec(t["name"], t["duration"])
            if "duration" in t
            else TaskSpec(
                t["name"],
                handler=t["handler"],
                args=tuple(t.get("args", ())),
                kwargs=t.get("kwargs", NO_KWARGS),
            )
            for t in items
        ]

    def parse_stats_query(self, params: Mapping[str, str]) -> StatsQuery:
        try:
            return self.stats_query.validate_python(dict(params))
        except ValidationError as exc:
            raise query_error(exc) from None

    def parse_finished_query(self, params: Mapping[str, str]) -> FinishedQuery:
        try:
            return self.finished_query.validate_python(dict(params))
        except ValidationError as exc:
            raise query_error(exc) from None

    def _explain(self, body: bytes, exc: ValidationError) -> InputError:
        """The first problem of a refused body, said for the item it is in:
        the item is validated again against the one model it aims at."""
        data, problem = top_level_error(body, exc, self.limits.max_items)
        if problem is not None:
            return problem
        for i, item in enumerate(data):
            model = self._model_for(item, i)
            if isinstance(model, InputError):
                return model
            try:
                model.validate_python(item)
            except ValidationError as item_exc:
                return item_error(item_exc, f"[{i}]", self.limits)
        return InputError(422, str(exc).splitlines()[0], "body")  # not reached: a fallback

    def _model_for(self, item: Any, i: int) -> TypeAdapter[Any] | InputError:
        if not isinstance(item, dict) or "handler" not in item:
            return self.demo
        handler = item["handler"]
        if not isinstance(handler, str):
            return InputError(422, f"must be a string, got {json_type(handler)}", f"[{i}].handler")
        if handler not in self.calls:
            known = ", ".join(self.calls) or "none: start the server with --handlers MODULE"
            return InputError(
                422, f"unknown handler {handler!r} (registered: {known})", f"[{i}].handler"
            )
        return self.calls[handler]


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
