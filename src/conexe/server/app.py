"""The ASGI app (Starlette): the HTTP face of a :class:`TaskService`.

Every handler answers from the event loop without waiting on the pool: a
submit never blocks (a full queue refuses), and the reads copy a few dicts
under a short lock, so the GETs stay responsive with a full queue and busy
workers.

    >>> from conexe.server.service import TaskService
    >>> app = create_app(TaskService(pool_size=5, queue_size=1000))
    >>> sorted({r.path for r in app.routes})[:3]
    ['/', '/healthz', '/metrics']
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from . import metrics as prometheus
from ._schema import InputError, Limits, RequestSchema, check_content_type
from .dashboard import PAGE
from .journal import JournalError
from .openapi import OPERATIONS, needs_token, openapi_document
from .service import ServiceStopping, TaskService

__all__ = ["create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]

log = logging.getLogger("conexe.server")

RETRY_AFTER_S = 1  # what a 429 or 503 tells the client to wait
# The dashboard is self-contained: the browser may load nothing from elsewhere.
_DASHBOARD_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:"
)


def create_app(
    service: TaskService,
    *,
    token: str | None = None,
    token_metrics: bool = False,
    limits: Limits | None = None,
    shutdown_grace: float = 0.0,
) -> Starlette:
    """The app serving ``service``. With ``token``, every endpoint but
    ``/healthz``, ``/metrics`` (unless ``token_metrics``) and the dashboard's
    page needs ``Authorization: Bearer <token>``. ``shutdown_grace`` is used
    only when the ASGI server stops the app without a graceful stop first."""
    api = _Api(service, RequestSchema(limits or Limits(), service.handlers), token, token_metrics)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if service.state != "stopped":  # no graceful stop ran (not our CLI)
            await run_in_threadpool(service.stop, shutdown_grace)

    # One route per path, its methods dispatched here: a method the path
    # doesn't serve gets 405 with every method it does in ``Allow``.
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in OPERATIONS:
        endpoint = getattr(api, op.operation_id)
        if needs_token(op, token is not None, token_metrics):
            endpoint = api.guard(endpoint)
        by_path.setdefault(op.route_path, {})[op.method.upper()] = endpoint
    routes = [
        Route(path, _by_method(endpoints), methods=list(endpoints))
        for path, endpoints in by_path.items()
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.service = service
    return app


def _by_method(endpoints: dict[str, Endpoint]) -> Endpoint:
    """One endpoint for a path that several methods share."""
    if len(endpoints) == 1:
        return next(iter(endpoints.values()))

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return dispatch


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="conexe"'}
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class _Api:
    """The endpoints, one method per ``operation_id`` of :data:`OPERATIONS`."""

    def __init__(
        self, service: TaskService, schema: RequestSchema, token: str | None, token_metrics: bool
    ) -> None:
        self.service = service
        self.schema = schema
        self.expected = f"Bearer {token}".encode() if token else b""
        self.registry = prometheus.registry_for(service)
        self.document = openapi_document(
            __version__, schema, token=token is not None, token_metrics=token_metrics
        )

    def guard(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint``, answering 401 unless the request carries the token
        (checked before anything of the request is read)."""
        expected = self.expected

        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return _error(
                    401,
                    "this endpoint needs Authorization: Bearer <token> "
                    "(the server's --token or CONEXE_TOKEN)",
                )
            return await endpoint(request)

        return guarded

    async def submitTasks(self, request: Request) -> Response:
        service = self.service
        if service.state != "serving":
            return _error(503, "the server is shutting down and accepts no new tasks")
        try:
            check_content_type(request.headers.get("content-type"))
            body = await _read_body(request, self.schema.limits.max_body_bytes)
            specs = self.schema.parse_tasks(body)
        except InputError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status)
        try:
            outcome = service.submit_batch(specs)
        except ServiceStopping as exc:
            return _error(503, str(exc))
        if outcome.journaled is not None:
            # The 200 says "accepted": only once the tasks are in the journal.
            try:
                await asyncio.wrap_future(outcome.journaled)
            except JournalError as exc:
                return _error(
                    503, f"{exc}: the tasks may run, but would not be run again after a crash"
                )
        if outcome.refused and not outcome.accepted:
            return JSONResponse(
                outcome.to_json(), status_code=429, headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        return JSONResponse(outcome.to_json())

    async def listRunning(self, request: Request) -> Response:
        return JSONResponse(self.service.running())

    async def listPending(self, request: Request) -> Response:
        return JSONResponse(self.service.pending())

    def _not_found(self, name: str) -> JSONResponse:
        return _error(
            404,
            f"no task named {name!r}: never submitted, or finished more "
            f"than {self.service.keep_seconds:g} s ago",
        )

    async def getTask(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = self.service.get(name)
        if found is None:
            return self._not_found(name)
        return JSONResponse(found)

    async def listFinished(self, request: Request) -> Response:
        try:
            query = self.schema.parse_finished_query(request.query_params)
        except InputError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status)
        return JSONResponse(self.service.finished(query.limit, query.after))

    async def cancelTask(self, request: Request) -> Response:
        name = request.path_params["name"]
        what, state = self.service.cancel(name)
        if state is None:
            return self._not_found(name)
        status = {"cancelled": 200, "asked": 202, "ended": 409}[what]
        return JSONResponse(state, status_code=status)

    async def getStats(self, request: Request) -> Response:
        try:
            query = self.schema.parse_stats_query(request.query_params)
        except InputError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status)
        out: dict[str, Any] = dict(self.service.stats())
        if query.history is not None:
            out["throughput"] = {"interval_s": 1, "ended": self.service.history(query.history)}
        return JSONResponse(out)

    async def healthz(self, request: Request) -> Response:
        if self.service.state != "serving":
            return JSONResponse(
                {"status": self.service.state},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return JSONResponse({"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        return Response(prometheus.render(self.registry), media_type=prometheus.CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.document)

    async def dashboard(self, request: Request) -> Response:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": _DASHBOARD_CSP})


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit``."""
    too_big = InputError(
        413,
        f"the body is over the limit of {limit} bytes (--max-body): send fewer tasks per request",
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InputError(400, f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise too_big
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
