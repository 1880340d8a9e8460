"""``conexe.server``: the HTTP task service (``conexe serve``), an optional
layer over the executors (``pip install "conexe[server]"``); nothing in
conexe's core APIs imports it.

    >>> from conexe.server import TaskService, create_app
    >>> app = create_app(TaskService(pool_size=5, queue_size=1000))  # any ASGI server

- :mod:`.service`: named tasks, dedup, results, throughput (no web framework);
  :mod:`.journal`: ``--state``, the SQLite journal that outlives a crash;
- :mod:`.app`: the Starlette app; :mod:`.cli`: ``conexe serve`` on uvicorn;
- :mod:`._pool`: the one adapter over the executor (``KeyedExecutor``);
- :mod:`._schema`: the request and response types (validation and the
  OpenAPI schemas), :mod:`._errors`: how a refusal is said;
  :mod:`.handlers`: ``--handlers``;
- :mod:`.openapi`: the table of endpoints, and ``/openapi.json`` from it;
- :mod:`.metrics`, :mod:`.dashboard`: the read-only extras.
"""

from __future__ import annotations

from .app import create_app
from .service import TaskService, current_attempt

__all__ = ["TaskService", "create_app", "current_attempt"]
