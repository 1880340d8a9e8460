"""``GET /openapi.json``: the API described in OpenAPI 3.1, written by hand
(Starlette makes none) and kept honest by a test that compares its paths
and methods with the app's routes.

    >>> sorted(openapi_document("0")["paths"])[:2]
    ['/', '/healthz']
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "what was wrong, and for a 422 the field")

_SCHEMAS: dict[str, Any] = {
    "TaskItem": {
        "type": "object",
        "description": "A demo task (name + duration: sleeps that long) or a call of a "
        "registered handler (name + handler + args/kwargs).",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 256,
                     "not": {"enum": ["running", "pending"]},
                     "description": "Unique among pending and running tasks."},
            "duration": {"type": "integer", "minimum": 0,
                         "description": "Milliseconds to sleep (at most --max-duration); "
                         "required without a handler."},
            "handler": {"type": "string",
                        "description": "A function registered with --handlers."},
            "args": {"type": "array", "description": "Positional JSON arguments."},
            "kwargs": {"type": "object", "description": "Keyword JSON arguments."},
        },
    },
    "SubmitResult": {
        "type": "object",
        "required": ["RequestedTask", "SubmittedTasks", "DuplicateTasks", "RefusedTasks",
                     "Accepted", "Duplicates", "Refused"],
        "properties": {
            "RequestedTask": {"type": "integer", "description": "Items in the request."},
            "SubmittedTasks": {"type": "integer", "description": "Items queued."},
            "DuplicateTasks": {"type": "integer",
                               "description": "Items whose name was pending or running, "
                               "or repeated in the request."},
            "RefusedTasks": {"type": "integer",
                             "description": "Items refused because the queue was full."},
            "Accepted": {"type": "array", "items": {"type": "string"}},
            "Duplicates": {"type": "array", "items": {"type": "string"}},
            "Refused": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TaskListing": {
        "type": "object",
        "required": ["name", "duration"],
        "properties": {
            "name": {"type": "string"},
            "duration": {"type": ["integer", "null"]},
            "handler": {"type": "string"},
        },
    },
    "TaskState": {
        "type": "object",
        "required": ["name", "state", "submitted_at"],
        "properties": {
            "name": {"type": "string"},
            "duration": {"type": ["integer", "null"]},
            "handler": {"type": "string"},
            "state": {"enum": ["pending", "running", "done", "failed", "cancelled"]},
            "submitted_at": {"type": "number", "description": "Unix time."},
            "started_at": {"type": ["number", "null"]},
            "ended_at": {"type": ["number", "null"]},
            "result": {"description": "The handler's JSON result (state done)."},
            "result_repr": {"type": "string",
                            "description": "repr() of a result that is not JSON."},
            "error": {"type": "object", "properties": {"type": {"type": "string"},
                                                       "message": {"type": "string"}}},
        },
    },
    "Stats": {
        "type": "object",
        "properties": {
            "state": {"enum": ["serving", "stopping", "stopped"]},
            "pool_size": {"type": "integer"},
            "queue_size": {"type": "integer"},
            "uptime_s": {"type": "number"},
            "tasks": {"type": "object", "additionalProperties": {"type": "integer"},
                      "description": "accepted, duplicate, refused, done, failed, "
                      "cancelled, running, pending"},
            "executor": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "The executor's own counters."},
            "throughput": {"type": "object", "properties": {
                "interval_s": {"type": "integer"},
                "ended": {"type": "array", "items": {"type": "integer"},
                          "description": "Tasks ended per interval, oldest first."}}},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    },
}


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint."""
    listing = _json({"type": "array", "items": _ref("TaskListing")},
                    "always an array, [] when there are none")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "conexe serve",
            "version": version,
            "description": "Named tasks on a conexe executor: a name pending or running is "
            "a duplicate, a full queue refuses instead of blocking.",
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/tasks": {"post": {
                "summary": "Submit a batch of tasks",
                "security": [{}, {"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "array", "items": _ref("TaskItem")}}}},
                "responses": {
                    "200": _json(_ref("SubmitResult"), "what became of each item"),
                    "400": _ERROR,
                    "401": _ERROR,
                    "413": _json(_ref("Error"), "body over --max-body or items over "
                                 "--max-items"),
                    "415": _ERROR,
                    "422": _ERROR,
                    "429": _json(_ref("SubmitResult"), "the queue was full and no item "
                                 "fit (see Retry-After)"),
                    "503": _json(_ref("Error"), "the server is shutting down"),
                },
            }},
            "/tasks/running": {"get": {"summary": "The running tasks",
                                       "responses": {"200": listing}}},
            "/tasks/pending": {"get": {"summary": "The queued tasks, in queue order",
                                       "responses": {"200": listing}}},
            "/tasks/{name}": {"get": {
                "summary": "One task's state, and its result or error once finished",
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("TaskState"), "the task"),
                              "404": _json(_ref("Error"), "unknown, or forgotten "
                                           "(--keep-results)")},
            }},
            "/stats": {"get": {
                "summary": "Counters of the service and its executor",
                "parameters": [{"name": "history", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 600},
                                "description": "Add the throughput of the last N seconds."}],
                "responses": {"200": _json(_ref("Stats"), "the counters"), "422": _ERROR},
            }},
            "/healthz": {"get": {"summary": "Liveness: 200 while serving, 503 while stopping",
                                 "responses": {"200": _json({"type": "object"}, "serving"),
                                               "503": _json({"type": "object"}, "stopping")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "text exposition format",
                                                       "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": _json({"type": "object"},
                                                                 "OpenAPI 3.1")}}},
            "/": {"get": {"summary": "The live dashboard (self-contained HTML)",
                          "responses": {"200": {"description": "HTML",
                                                "content": {"text/html": {}}}}}},
        },
    }
