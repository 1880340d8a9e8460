"""Fixtures for the HTTP service: a real ``python -m conexe serve`` process
on a free port of 127.0.0.1, one per core ("c" when built, "py"), and a
``wait_until`` helper that polls with a deadline instead of sleeping.

Skipped as a whole when the ``server`` extra (and httpx) isn't installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

import conexe
import support

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")
pytest.importorskip("pydantic")
httpx = pytest.importorskip("httpx")

from conexe._impl import cores  # noqa: E402

T = TypeVar("T")
# Where the conexe under test was imported from (the installed package in CI,
# src/ in a development tree), so the server process runs the same code.
SRC = Path(conexe.__file__).resolve().parents[1]
START_TIMEOUT = 60.0  # a cold interpreter on a loaded 2-core machine


def wait_until(check: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """``support.wait_until`` with an HTTP server's pace: a longer default
    deadline (a server process starts in seconds) and a 20 ms poll."""
    return support.wait_until(check, timeout=timeout, what=what, poll=0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One running ``conexe serve``: its URL, process, log and a client."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    client: Any = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post(self, tasks: Any, **kw: Any) -> Any:
        return self.client.post("/tasks", json=tasks, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def names(self, which: str) -> list[str]:
        r = self.get(f"/tasks/{which}")
        assert r.status_code == 200, r.text
        return [t["name"] for t in r.json()]

    def wait_counts(self, running: int, pending: int, timeout: float = 30.0) -> None:
        def now() -> bool:
            t = self.get("/stats").json()["tasks"]
            return (t["running"], t["pending"]) == (running, pending)

        wait_until(now, timeout, f"{running} running and {pending} pending")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server did not exit in {timeout}s:\n{self.log()}") from None

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(
    log_dir: Path, *args: str, core: str = "py", env: dict[str, str] | None = None
) -> ServerProcess:
    """Start ``python -m conexe serve ARGS`` on a free port and wait for /healthz."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in ("CONEXE_TOKEN",)}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    full_env.pop("CONEXE_NO_EXTENSIONS", None)
    if core == "py":
        full_env["CONEXE_NO_EXTENSIONS"] = "1"
    full_env.update(env or {})
    log_path = log_dir / f"server-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conexe", "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(url, proc, log_path, httpx.Client(base_url=url, timeout=20.0))

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            return server.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, START_TIMEOUT, "the server's /healthz")
        token = full_env.get("CONEXE_TOKEN") or (
            args[args.index("--token") + 1] if "--token" in args else None
        )
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        assert server.get("/stats", headers=auth).json()["core"] == core
    except BaseException:
        server.close()
        raise
    return server


@pytest.fixture(scope="module", params=sorted(cores))
def core_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(tmp_path: Path, core_name: str) -> Iterator[Callable[..., ServerProcess]]:
    """``serve(*args, env=...)`` starts a server for this test only."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server(tmp_path, *args, core=core_name, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, core_name: str) -> Iterator[ServerProcess]:
    """A server shared by a module's tests (which use distinct task names):
    5 workers, a queue of 1000, the demo handlers, small request limits."""
    s = start_server(
        tmp_path_factory.mktemp("server"),
        "--pool-size",
        "5",
        "--queue-size",
        "1000",
        "--handlers",
        "conexe.server._demo_handlers",
        "--max-items",
        "50",
        "--max-body",
        "8192",
        "--max-duration",
        "600000",
        "--grace",
        "0",
        core=core_name,
    )
    yield s
    s.close()
