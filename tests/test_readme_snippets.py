"""Every Python block of the README runs, so none rots.

The blocks name the user's own functions and data (``fetch``, ``urls``,
``connect``...); the test supplies small stand-ins for them, runs each
block as written, then checks what the block promised (the stand-ins
record what they were given)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import conexe

README = Path(__file__).resolve().parent.parent / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(README.read_text())


class StandIns:
    """What the README's blocks call theirs, recording how they were used."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.applied: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def namespace(self) -> dict[str, Any]:
        def fetch(url: str) -> str:
            with self.lock:
                self.fetched.append(url)
            return f"<page {url}>"

        def apply(account: str, amount: int) -> None:
            with self.lock:
                self.applied.append((account, amount))

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(":memory:", check_same_thread=False)

        return {
            "build_report": lambda day: f"report for {day}",
            "day": "2026-12-07",
            "urls": [f"https://example.test/{i}" for i in range(5)],
            "fetch": fetch,
            "transfers": [("a", 1), ("b", 2), ("a", 3), ("b", 4), ("a", 5)],
            "apply": apply,
            "build": lambda: "built",
            "connect": connect,
            "close": lambda db: db.close(),
            "is_healthy": lambda exc: not isinstance(exc, sqlite3.ProgrammingError),
            "db_lookup": lambda key: {"key": key},
            "render": lambda row: f"<row {row['key']}>",
            "key": 7,
        }


def test_the_readme_has_a_block_per_api() -> None:
    blocks = python_blocks()
    for name in (
        "ThreadPoolExecutor",
        "ConcurrentExecutor",
        "run_in_executor",
        "KeyedExecutor",
        "Runner",
    ):
        assert any(name in b for b in blocks), name


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_each_readme_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    block = python_blocks()[index]
    stand_ins = StandIns()
    namespace = stand_ins.namespace()
    exec(compile(block, f"README.md, python block {index + 1}", "exec"), namespace)
    if "async def handler" in block:
        # The block defines a coroutine; run it as a server would.
        async def serve() -> Any:
            with conexe.ConcurrentExecutor(2) as ex:
                return await namespace["handler"](asyncio.get_running_loop(), ex)

        assert asyncio.run(serve()) == "<row 7>"
    if "g.submit(fetch, url)" in block:
        assert sorted(stand_ins.fetched) == sorted(namespace["urls"])
        assert "1024 [1, 2]" in capsys.readouterr().out
    if "ex.submit(account, apply" in block:
        in_order = {k: [a for key, a in stand_ins.applied if key == k] for k in "ab"}
        assert in_order == {"a": [1, 3, 5], "b": [2, 4]}  # per-key order kept
    if "conexe.Runner(" in block:
        assert namespace["rows"] == [(1,)]
