"""The endpoints of ``conexe serve`` as one table (:data:`OPERATIONS`): the app
builds its routes from it and ``GET /openapi.json`` is generated from it and
from the body types of :mod:`._schema`, so the document lists exactly the
routes served, with the schemas that validate them.

    >>> from ._schema import Limits, RequestSchema
    >>> doc = openapi_document("0", RequestSchema(Limits(), {}))
    >>> sorted(doc["paths"])[:2]
    ['/', '/healthz']
    >>> doc["paths"]["/stats"]["get"]["parameters"][0]["schema"]["maximum"]
    600
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from ._schema import (
    ErrorBody,
    FinishedPage,
    FinishedQuery,
    Health,
    RequestSchema,
    Stats,
    StatsQuery,
    SubmitResult,
    TaskListing,
    TaskPathName,
    TaskState,
)

__all__ = ["OPERATIONS", "Operation", "openapi_document"]

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """One endpoint: ``responses`` maps a status to (the body's type, or a
    media type for a body that is not JSON; what it means)."""

    operation_id: str
    method: str
    path: str
    summary: str
    responses: dict[int, tuple[Any, str]]
    route: str = ""  # the Starlette path when it differs from ``path``
    # Whether a server with a token asks this endpoint for it: "yes", "no"
    # (liveness, and the dashboard's page: its requests carry the token), or
    # "metrics" (only with --token-metrics: a scraper may have no token).
    guarded: str = "yes"
    query: type[BaseModel] | None = None
    links: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def route_path(self) -> str:
        return self.route or self.path


_LISTING = (list[TaskListing], "always an array, [] when there are none")
_BAD = (ErrorBody, "what was wrong, and for a 422 the field")
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "dashboard",
        "get",
        "/",
        "The live dashboard (self-contained HTML; behind a token, open /#token=TOKEN)",
        {200: ("text/html", "HTML")},
        guarded="no",
    ),
    Operation(
        "submitTasks",
        "post",
        "/tasks",
        "Submit a batch of tasks",
        {
            200: (SubmitResult, "what became of each item"),
            400: (ErrorBody, "malformed JSON, or a body that is not UTF-8"),
            413: (ErrorBody, "body over --max-body or items over --max-items"),
            415: (ErrorBody, "a Content-Type other than application/json"),
            422: _BAD,
            429: (SubmitResult, "the queue was full and no item fit (see Retry-After)"),
            503: (ErrorBody, "the server is shutting down"),
        },
        links={
            200: {
                "GetAcceptedTask": {
                    "operationId": "getTask",
                    "parameters": {"name": "$response.body#/Accepted/0"},
                    "description": "The first task the request queued: GET /tasks/{name} shows it.",
                },
                "CancelAcceptedTask": {
                    "operationId": "cancelTask",
                    "parameters": {"name": "$response.body#/Accepted/0"},
                    "description": "The first task the request queued: DELETE /tasks/{name} "
                    "cancels it.",
                },
            }
        },
    ),
    Operation("listRunning", "get", "/tasks/running", "The running tasks", {200: _LISTING}),
    Operation(
        "listPending", "get", "/tasks/pending", "The queued tasks, in queue order", {200: _LISTING}
    ),
    Operation(
        "listFinished",
        "get",
        "/tasks/finished",
        "Finished tasks still kept (--keep-results), in the order they ended, a page at a time",
        {200: (FinishedPage, "a page, and where the next one starts"), 422: _BAD},
        query=FinishedQuery,
    ),
    Operation(
        "getTask",
        "get",
        "/tasks/{name}",
        "One task's state, and its result or error once finished",
        {
            200: (TaskState, "the task"),
            404: (ErrorBody, "unknown, or forgotten (--keep-results)"),
        },
        route="/tasks/{name:path}",
    ),
    Operation(
        "cancelTask",
        "delete",
        "/tasks/{name}",
        "Cancel a task that has not started; ask a running one to stop",
        {
            200: (TaskState, "cancelled: it had not started"),
            202: (TaskState, "running, asked to stop (cancel_requested: it may still finish)"),
            404: (ErrorBody, "unknown, or forgotten (--keep-results)"),
            409: (TaskState, "it had already ended"),
        },
        route="/tasks/{name:path}",
    ),
    Operation(
        "getStats",
        "get",
        "/stats",
        "Counters of the service and its executor",
        {200: (Stats, "the counters"), 422: _BAD},
        query=StatsQuery,
    ),
    Operation(
        "healthz",
        "get",
        "/healthz",
        "Liveness: 200 while serving, 503 while stopping",
        {200: (Health, "serving"), 503: (Health, "stopping")},
        guarded="no",
    ),
    Operation(
        "metrics",
        "get",
        "/metrics",
        "Prometheus metrics",
        {200: ("text/plain", "text exposition format")},
        guarded="metrics",
    ),
    Operation(
        "openapi", "get", "/openapi.json", "This document", {200: (dict[str, Any], "OpenAPI 3.1")}
    ),
)


class _Components:
    """``components/schemas``: each named type once, referred to by ``$ref``."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def schema_of(self, adapter: TypeAdapter[Any], name: str | None) -> dict[str, Any]:
        schema = adapter.json_schema(ref_template=REF)
        self.schemas.update(schema.pop("$defs", {}))
        if name is None:
            return schema
        self.schemas[name] = schema
        return {"$ref": REF.format(model=name)}

    def body(self, kind: Any, description: str) -> dict[str, Any]:
        if isinstance(kind, str):
            return {"description": description, "content": {kind: {}}}
        name = kind.__name__ if isinstance(kind, type) else None
        schema = self.schema_of(TypeAdapter(kind), name)
        return {"description": description, "content": {"application/json": {"schema": schema}}}


def needs_token(op: Operation, token: bool, token_metrics: bool) -> bool:
    """Whether ``op`` asks for the bearer token on a server with ``token``
    (and ``token_metrics``: ``--token-metrics``)."""
    if not token or op.guarded == "no":
        return False
    return op.guarded == "yes" or token_metrics


def _operation(
    op: Operation, components: _Components, request: RequestSchema, guarded: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    responses = {
        str(status): components.body(kind, description)
        for status, (kind, description) in op.responses.items()
    }
    for status, links in op.links.items():
        responses[str(status)]["links"] = links
    for status in (429, 503):
        if str(status) in responses:
            responses[str(status)]["headers"] = {
                "Retry-After": {
                    "required": True,
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
    if "{name}" in op.path:
        out["parameters"] = [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": components.schema_of(TypeAdapter(TaskPathName), None),
            }
        ]
    if op.query is not None:
        query = components.schema_of(TypeAdapter(op.query), None)
        out["parameters"] = [
            {
                "name": name,
                "in": "query",
                "required": name in query.get("required", ()),
                "description": prop.pop("description", ""),
                "schema": _absent_not_null(prop),
            }
            for name, prop in query["properties"].items()
        ]
    if op.method == "post":
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.schema_of(request.tasks, None)}},
        }
    if guarded:
        out["security"] = [{"bearer": []}]
        responses["401"] = components.body(ErrorBody, "a missing or wrong bearer token")
    out["responses"] = responses
    return out


def _absent_not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without its ``null`` alternative: leaving
    the parameter out is how a query says "none"."""
    options = [s for s in schema.pop("anyOf", [schema]) if s.get("type") != "null"]
    schema.pop("default", None)
    return {**options[0], **schema} if len(options) == 1 else {"anyOf": options, **schema}


def openapi_document(
    version: str, request: RequestSchema, *, token: bool = False, token_metrics: bool = False
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of this server: its limits, its handlers
    and which endpoints need a token are part of it."""
    components = _Components()
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        guarded = needs_token(op, token, token_metrics)
        paths.setdefault(op.path, {})[op.method] = _operation(op, components, request, guarded)
    out: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "conexe serve",
            "version": version,
            "description": "Named tasks on a conexe executor: a name pending or running is "
            "a duplicate, a full queue refuses instead of blocking.",
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(components.schemas.items()))},
    }
    if token:
        out["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return out
