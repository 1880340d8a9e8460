"""Task functions for the Dask tests: module-level so they pickle by
reference, and talking through files so that the same function works in a
worker thread (local executors) and in a Dask worker process.

A test waits on files with :func:`wait_for`, the cross-process form of an
event: a deadline bounds the wait, nothing is asserted about time.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WAIT = 30.0  # seconds: only ever reached when something is broken


def wait_for(path: str | Path, timeout: float = WAIT) -> bool:
    """Wait until ``path`` exists; False if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def scheduler_knows(key: str, dask_scheduler: object = None) -> bool:
    return key in dask_scheduler.tasks  # type: ignore[union-attr]


def worker_holds(keys: list[str], dask_worker: object = None) -> bool:
    return any(k in dask_worker.state.tasks for k in keys)  # type: ignore[union-attr]


def touch(path: str | Path) -> None:
    Path(path).touch()


def append(path: str | Path, line: str) -> str:
    with open(path, "a") as f:
        f.write(line + "\n")
    return line


def lines(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def square(x: int) -> int:
    return x * x


def fail(message: str) -> int:
    raise ValueError(message)


def fail_plain(resource: object) -> None:
    raise ValueError("plain error")


def where() -> tuple[int, int]:
    """Which process and thread ran the task."""
    return os.getpid(), threading.get_ident()


def block(started: str, release: str, value: object = None) -> object:
    """Say it started, then wait for ``release``; returns ``value``."""
    touch(started)
    if not wait_for(release):
        raise TimeoutError(f"{release} never appeared")
    return value


def exclusive_step(lock: str, log: str, item: str) -> str:
    """A step of a keyed sequence: holds ``lock`` (a file made with
    O_EXCL) while it runs, and logs ``item``, or ``OVERLAP item`` when
    another step of the key held the lock."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        append(log, f"OVERLAP {item}")
        return item
    try:
        append(log, item)
        time.sleep(0.005)  # work: widens the window in which an overlap shows
    finally:
        os.close(fd)
        os.unlink(lock)
    return item


def submit_exclusive_steps(ex: Any, keys: Sequence[str], steps: int, where: Path) -> list[Any]:
    """Submit ``steps`` :func:`exclusive_step` tasks to each of ``keys`` on
    keyed executor ``ex``, the keys taking turns; key ``k``'s steps log
    ``k0``, ``k1``, ... to ``where/k.log`` (read it with :func:`lines`)."""
    return [
        ex.submit(
            key, exclusive_step, str(where / f"{key}.lock"), str(where / f"{key}.log"), f"{key}{i}"
        )
        for i in range(steps)
        for key in keys
    ]


def meet(me: str, other: str) -> bool:
    """True if the task for ``other`` ran at the same time as this one."""
    touch(me)
    return wait_for(other)


# -- Runner resources ---------------------------------------------------------------


class Broken(Exception):
    """A task's error that says its resource is broken."""


def healthy(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


class ResourceLog:
    """on_create / on_destroy that log to a directory (picklable)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def create(self) -> dict[str, object]:
        rid = uuid.uuid4().hex[:8]
        append(os.path.join(self.directory, "created"), rid)
        return {"id": rid, "pid": os.getpid(), "thread": threading.get_ident()}

    def destroy(self, resource: dict[str, object]) -> None:
        append(os.path.join(self.directory, "destroyed"), str(resource["id"]))


def resource_id(resource: dict[str, object]) -> str:
    return str(resource["id"])


def resource_is_mine(resource: dict[str, object]) -> bool:
    """The resource was made in the process and thread running the task."""
    return resource["pid"] == os.getpid() and resource["thread"] == threading.get_ident()


class BreakFirst:
    """A task that breaks the first resource it meets (recording its id)
    and returns the id of the resource it runs on after that."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, resource: dict[str, object]) -> str:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return str(resource["id"])
        os.write(fd, str(resource["id"]).encode())
        os.close(fd)
        raise Broken("first try breaks the resource")


class AlwaysBreak:
    def __init__(self, log: str) -> None:
        self.log = log

    def __call__(self, resource: dict[str, object]) -> None:
        append(self.log, str(resource["id"]))
        raise Broken("this resource is broken")


class BlockOnResource:
    """A Runner task that blocks like :func:`block`, then returns "done"."""

    def __init__(self, started: str, release: str) -> None:
        self.started, self.release = started, release

    def __call__(self, resource: object) -> object:
        return block(self.started, self.release, "done")


def user_priority(key: str, dask_scheduler: object = None) -> int:
    """The user priority Dask recorded (its TaskState.priority starts with
    the negated user priority)."""
    return -dask_scheduler.tasks[key].priority[0]  # type: ignore[attr-defined]
