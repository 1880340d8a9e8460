"""Every Python block of the guides in ``docs/`` runs, so none rots.

As for the README (test_readme_snippets.py): the blocks name the user's own
functions and data, and the test supplies small stand-ins for them, plus an
executor ``ex`` for the fragments that continue an earlier example. A block
with a top-level ``await`` (or that asks for the running loop at top level)
runs inside an event loop, as it would in the user's coroutine. A block
that connects to a Dask cluster gets a ``LocalCluster`` in its place."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

import conexe

DOCS = Path(__file__).resolve().parent.parent / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# At column 0: needs a running loop around the block.
IN_A_LOOP = re.compile(r"^(await |asyncio\.get_running_loop\(\))", re.M)
# How a printed value begins, in a "print(x)  # value" comment.
LITERAL_STARTS = tuple("{[('\"0123456789")


def printed(comment: str) -> str:
    """What a "# value" comment promises is printed: a quoted text stands
    for itself, and a trailing "..." for whatever follows."""
    value = comment.strip()
    if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    return value.removesuffix("...").rstrip(" ,")


def guide_blocks() -> list[tuple[str, int, str]]:
    """(guide, block number, code) for every Python block in docs/*.md."""
    return [
        (guide.name, number, code)
        for guide in sorted(DOCS.glob("*.md"))
        for number, code in enumerate(PYTHON_BLOCK.findall(guide.read_text()), 1)
    ]


BLOCKS = guide_blocks()


def stand_ins(ex: conexe.ConcurrentExecutor) -> dict[str, Any]:
    """The names the guides' blocks take from the user's own code."""

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(":memory:", check_same_thread=False)

    return {
        "asyncio": asyncio,
        "conexe": conexe,
        "KeyedExecutor": conexe.KeyedExecutor,
        "ex": ex,
        "arg": 0.001,
        "blocking_call": time.sleep,
        "build_report": lambda day: f"report for {day}",
        "day": "2026-12-07",
        "db_lookup": lambda key: {"key": key},
        "render": lambda row: f"<row {row['key']}>",
        "key": 7,
        "urls": [f"https://example.test/{i}" for i in range(3)],
        "fetch": lambda url: f"<page {url}>",
        "work": lambda i: i * i,
        "score": len,
        "documents": ["a", "bb", "ccc"],
        "connect": connect,
        "disconnect": lambda db: db.close(),
        "is_healthy": lambda exc: not isinstance(exc, sqlite3.ProgrammingError),
    }


@contextmanager
def a_local_cluster_for_client_addresses(code: str) -> Iterator[None]:
    """A block that connects to ``Client("tcp://...")`` gets an in-process
    LocalCluster instead (the guide's point is the constructor change)."""
    if "Client(" not in code:
        yield
        return
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    real_client = distributed.Client
    clients: list[Any] = []

    class LocalClient(real_client):  # type: ignore[misc, valid-type]
        def __init__(self, address: Any = None, **kwargs: Any) -> None:
            super().__init__(cluster, **kwargs)
            clients.append(self)

    distributed.Client = LocalClient
    try:
        yield
    finally:
        distributed.Client = real_client
        for c in clients:
            c.close()
        cluster.close()


def stop_what_the_block_left_running(namespace: dict[str, Any], keep: object) -> None:
    """Executors and Runners a block made and did not close (conexe's or
    conexe.dask's: their classes' names say so)."""
    for value in namespace.values():
        kind = type(value).__name__
        if value is keep or not type(value).__module__.startswith("conexe"):
            continue
        if kind.endswith("Executor"):
            value.shutdown(wait=True)
        elif kind == "Runner" and not value.stopped:
            value.stop()


def run_block(code: str, where: str, namespace: dict[str, Any]) -> None:
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if not IN_A_LOOP.search(code):
        result = eval(compiled, namespace)
        assert not inspect.iscoroutine(result), "a top-level await outside a loop"
        return

    async def in_the_users_coroutine() -> None:
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):
            await result

    asyncio.run(in_the_users_coroutine())


def test_the_guides_have_python_blocks() -> None:
    guides = {guide for guide, _, _ in BLOCKS}
    assert {"executor.md", "keyed.md", "runner.md", "asyncio.md", "compat.md"} <= guides


@pytest.mark.parametrize(
    ("guide", "number", "code"), BLOCKS, ids=[f"{g}#{n}" for g, n, _ in BLOCKS]
)
def test_each_guide_block_runs(guide: str, number: int, code: str) -> None:
    with conexe.ConcurrentExecutor(2) as ex:
        namespace = stand_ins(ex)
        out = StringIO()
        with a_local_cluster_for_client_addresses(code):
            try:
                with redirect_stdout(out):
                    run_block(code, f"docs/{guide}, python block {number}", namespace)
            finally:
                stop_what_the_block_left_running(namespace, keep=ex)
        # What a block says it prints, it prints: "print(x)  # value".
        for comment in re.findall(r"print\([^\n]*\)\s*#\s*(.+)$", code, re.M):
            value = comment if comment[:1] in LITERAL_STARTS else comment.split(": ", 1)[-1]
            if value[:1] in LITERAL_STARTS:
                assert printed(value) in out.getvalue(), (value, out.getvalue())
