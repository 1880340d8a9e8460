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

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from . import metrics
from ._schema import InputError, Limits, check_content_type, parse_tasks
from .dashboard import PAGE
from .openapi import openapi_document
from .service import ServiceStopping, TaskService

__all__ = ["create_app"]

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
    limits: Limits | None = None,
    shutdown_grace: float = 0.0,
) -> Starlette:
    """The app serving ``service``. With ``token``, ``POST /tasks`` needs
    ``Authorization: Bearer <token>``. ``shutdown_grace`` is used only when
    the ASGI server stops the app without a graceful stop first."""
    limits = limits or Limits()
    expected = f"Bearer {token}".encode() if token else None
    registry = metrics.registry_for(service)
    openapi = openapi_document(__version__)

    def error(status: int, message: str, **extra: Any) -> JSONResponse:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else None
        if status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="conexe"'}
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    async def post_tasks(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return error(401, "this endpoint needs Authorization: Bearer <token> "
                                  "(the server's --token or CONEXE_TOKEN)")
        if service.state != "serving":
            return error(503, "the server is shutting down and accepts no new tasks")
        try:
            check_content_type(request.headers.get("content-type"))
            body = await _read_body(request, limits.max_body_bytes)
            specs = parse_tasks(body, limits, service.handlers)
        except InputError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status)
        try:
            outcome = service.submit_batch(specs)
        except ServiceStopping as exc:
            return error(503, str(exc))
        if outcome.refused and not outcome.accepted:
            return JSONResponse(outcome.to_json(), status_code=429,
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse(outcome.to_json())

    async def get_running(request: Request) -> Response:
        return JSONResponse(service.running())

    async def get_pending(request: Request) -> Response:
        return JSONResponse(service.pending())

    async def get_task(request: Request) -> Response:
        name = request.path_params["name"]
        found = service.get(name)
        if found is None:
            return error(404, f"no task named {name!r}: never submitted, or finished more "
                              f"than {service.keep_seconds:g} s ago")
        return JSONResponse(found)

    async def get_stats(request: Request) -> Response:
        out = service.stats()
        history = request.query_params.get("history")
        if history is not None:
            try:
                seconds = int(history)
            except ValueError:
                return error(422, f"history must be a number of seconds, got {history!r}",
                             field="history")
            out["throughput"] = {"interval_s": 1, "ended": service.history(seconds)}
        return JSONResponse(out)

    async def healthz(request: Request) -> Response:
        if service.state != "serving":
            return JSONResponse({"status": service.state}, status_code=503,
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"status": "ok"})

    async def get_metrics(request: Request) -> Response:
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi)

    async def dashboard(request: Request) -> Response:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": _DASHBOARD_CSP})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if service.state != "stopped":  # no graceful stop ran (not our CLI)
            await run_in_threadpool(service.stop, shutdown_grace)

    routes = [
        Route("/", dashboard, methods=["GET"]),
        Route("/tasks", post_tasks, methods=["POST"]),
        Route("/tasks/running", get_running, methods=["GET"]),
        Route("/tasks/pending", get_pending, methods=["GET"]),
        Route("/tasks/{name:path}", get_task, methods=["GET"]),
        Route("/stats", get_stats, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/openapi.json", get_openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit``."""
    too_big = InputError(413, f"the body is over the limit of {limit} bytes (--max-body): "
                              "send fewer tasks per request")
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
