"""What a type checker says of conexe's submits, as it says of the stdlib's.

Checked by mypy (``tests/test_typing.py``), never imported: every
``assert_type`` must hold, and every line marked ``# type: ignore[code]``
must be that error (``--warn-unused-ignores`` fails a line that isn't).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import assert_type

import conexe


def describe(n: int) -> str:
    return str(n)


def checks(
    ex: conexe.ConcurrentExecutor,
    pool: conexe.ThreadPoolExecutor,
    keyed: conexe.KeyedExecutor,
    runner: conexe.Runner[bytes],
) -> None:
    assert_type(ex.submit(describe, 1), conexe.Future[str])
    assert_type(ex.submit(describe, n=1).result(), str)
    assert_type(pool.submit(describe, 1), conexe.Future[str])
    assert_type(ex.map(describe, [1, 2]), Iterator[str])
    ex.submit(describe, "1")  # type: ignore[arg-type]
    ex.submit(describe)  # type: ignore[call-arg]
    ex.submit(describe, 1, 2)  # type: ignore[call-arg]
    pool.submit(describe, b"1")  # type: ignore[arg-type]

    assert_type(keyed.submit("key", describe, 1), conexe.Future[str])
    assert_type(keyed.submit_unique("key", describe, 1), conexe.Future[str] | None)
    keyed.submit("key", describe, "1")  # type: ignore[arg-type]
    keyed.submit_unique("key", describe)  # type: ignore[call-arg]
    keyed.execute("key", describe, "1")  # type: ignore[arg-type]

    task = conexe.Task("t", describe, (1,), priority=2)
    assert_type(task, conexe.Task[str])
    assert_type(ex.submit_task(task), conexe.Future[str])
    assert_type(keyed.submit_task("key", task), conexe.Future[str])
    as_int: conexe.Future[int] = ex.submit_task(task)  # type: ignore[arg-type]
    del as_int

    assert_type(runner.submit(len), conexe.Future[int])
    runner.submit(describe)  # type: ignore[arg-type]

    fut: conexe.Future[str] = ex.submit(describe, 1)
    wrong: conexe.Future[int] = ex.submit(describe, 1)  # type: ignore[arg-type]
    del fut, wrong


async def awaits(ex: conexe.ConcurrentExecutor, runner: conexe.Runner[bytes]) -> None:
    assert_type(await ex.submit(describe, 1), str)
    assert_type(await runner.submit(len), int)
    loop = asyncio.get_running_loop()
    assert_type(await loop.run_in_executor(ex, describe, 1), str)
    assert_type(await asyncio.wrap_future(ex.submit(describe, 1)), str)
