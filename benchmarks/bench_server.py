#!/usr/bin/env python3
"""Load test of ``conexe serve`` (issue 5): the service's cost per request
against bare endpoints served by the same process on the same stack.

    python benchmarks/bench_server.py                 # 10 s of load
    python benchmarks/bench_server.py --quick --json out.json

One server process runs the real app plus two bare routes (``GET /bare``
answers ``[]``; ``POST /bare`` parses the JSON and answers counts, running
nothing). ``--posters`` connections post 100-item batches of instant tasks
(``duration`` 0, fresh names) as fast as they are answered, while one more
connection polls ``GET /tasks/running`` and ``GET /bare`` in turn; between
phases the server's queue is let drain. Reported: tasks accepted and ended
per second, the latencies of both GETs under that load and
their ratio (the target: the service's GET at most 1.5x the bare one's p99),
plus, for reference, the same GETs with no load and the POST batch against
a bare POST of the same body. One more row times ``POST /tasks`` of 100
items alone: one connection posting one batch after another, nothing else
running (its p50 and p99 show what parsing, validating and queueing a batch
costs).

``--state PATH`` runs the service with its journal in the SQLite file PATH
(deleted first), as ``conexe serve --state`` does: run it with and without,
alternated, to see what the journal costs ``POST /tasks``.

``--in-process N`` instead drives the app's ASGI callable directly (no
socket, no uvicorn) with N such batches and reports the latency and the
CPU time the serving thread spends per batch (parsing, validating and
queueing; the workers' time is not in it): the cost of ``POST /tasks``
itself, far less disturbed by other load on the machine than the latencies.

Everything stays on 127.0.0.1; the run is bounded by ``--seconds`` and
``--max-requests``. The client is a minimal asyncio HTTP/1.1 keep-alive
client, so the load generator costs little next to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
BATCH = 100
TARGET_RATIO = 1.5
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


# -- the server side (runs in a subprocess: ``--serve PORT``) ----------------------------------
def make_service(pool_size: int, queue_size: int, state: str | None) -> Any:
    """The service, with a fresh journal at ``state`` if given."""
    from conexe.server import TaskService
    from conexe.server.journal import Journal

    journal = None
    if state is not None:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(state + suffix):
                os.remove(state + suffix)
        journal = Journal(state, keep_seconds=300.0)
    return TaskService(pool_size, queue_size, journal=journal)


def serve(port: int, pool_size: int, queue_size: int, state: str | None) -> None:
    """The real app plus the bare routes, on uvicorn as ``conexe serve`` runs it."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from conexe.server import create_app

    service = make_service(pool_size, queue_size, state)
    app = create_app(service)

    async def bare_get(request: Request) -> JSONResponse:
        return JSONResponse([])

    async def bare_post(request: Request) -> JSONResponse:
        items = json.loads(await request.body())
        return JSONResponse({"RequestedTask": len(items), "SubmittedTasks": 0, "DuplicateTasks": 0})

    app.router.routes.insert(0, Route("/bare", bare_get, methods=["GET"]))
    app.router.routes.insert(0, Route("/bare", bare_post, methods=["POST"]))
    uvicorn.run(
        app, host=HOST, port=port, log_level="warning", access_log=False, server_header=False
    )


def post_in_process(
    batches: int, pool_size: int, queue_size: int, state: str | None
) -> dict[str, Any]:
    """``batches`` POSTs of 100 fresh instant tasks, straight into the ASGI app."""
    from conexe.server import create_app

    service = make_service(pool_size, queue_size, state)
    app = create_app(service)

    async def post(body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/tasks",
            "raw_path": b"/tasks",
            "root_path": "",
            "query_string": b"",
            "server": (HOST, 80),
            "client": (HOST, 1),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
        status = [0]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        await app(scope, receive, send)
        return status[0]

    async def main() -> tuple[Samples, float]:
        samples = Samples()
        cpu0 = time.thread_time()  # the event loop's thread: the request, not the workers
        for k in range(batches):
            body = json.dumps(
                [{"name": f"inproc-{k}-{i}", "duration": 0} for i in range(BATCH)]
            ).encode()
            t0 = time.perf_counter()
            assert await post(body) == 200
            samples.times.append(time.perf_counter() - t0)
        return samples, (time.thread_time() - cpu0) / batches

    try:
        samples, cpu = asyncio.run(main())
    finally:
        service.close()
    return {
        "POST /tasks": samples.summary(),
        "cpu_ms_per_batch": 1e3 * cpu,
        "core": service.stats()["core"],
    }


# -- the client side -----------------------------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Samples:
    """Latencies (seconds) of one kind of request."""

    times: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        if not self.times:
            return {"n": 0}
        ordered = sorted(self.times)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return {
            "n": len(ordered),
            "mean_ms": 1e3 * statistics.fmean(ordered),
            "p50_ms": 1e3 * ordered[len(ordered) // 2],
            "p99_ms": 1e3 * p99,
        }


async def timed(
    conn: Connection, method: str, path: str, body: bytes = b""
) -> tuple[float, int, bytes]:
    t0 = time.perf_counter()
    status, data = await conn.request(method, path, body)
    return time.perf_counter() - t0, status, data


async def poll_gets(
    port: int, stop: asyncio.Event, paths: Sequence[str], budget: list[int]
) -> dict[str, Samples]:
    """GET each of ``paths`` in turn until ``stop``; one connection."""
    conn = await Connection.open(port)
    out = {p: Samples() for p in paths}
    try:
        for path in itertools.cycle(paths):
            if stop.is_set() or budget[0] <= 0:
                break
            budget[0] -= 1
            dt, status, _ = await timed(conn, "GET", path)
            assert status == 200, (path, status)
            out[path].times.append(dt)
    finally:
        conn.close()
    return out


async def post_batches(
    port: int, stop: asyncio.Event, path: str, prefix: str, budget: list[int]
) -> tuple[Samples, int, int]:
    """POST 100-item batches of instant tasks until ``stop``: (latencies,
    tasks accepted, batches refused with 429)."""
    conn = await Connection.open(port)
    samples, accepted, refused = Samples(), 0, 0
    counter = itertools.count()
    try:
        while not stop.is_set() and budget[0] > 0:
            budget[0] -= 1
            start = next(counter) * BATCH
            body = json.dumps(
                [{"name": f"{prefix}-{i}", "duration": 0} for i in range(start, start + BATCH)]
            ).encode()
            dt, status, data = await timed(conn, "POST", path, body)
            samples.times.append(dt)
            if status == 429:
                refused += 1
            else:
                assert status == 200, (status, data[:200])
                accepted += json.loads(data)["SubmittedTasks"]
    finally:
        conn.close()
    return samples, accepted, refused


async def phase(
    port: int,
    seconds: float,
    posters: int,
    post_path: str | None,
    get_paths: Sequence[str],
    budget: list[int],
) -> dict[str, Any]:
    stop = asyncio.Event()
    getter = asyncio.create_task(poll_gets(port, stop, get_paths, budget))
    post_tasks = [
        asyncio.create_task(
            post_batches(port, stop, post_path, f"p{os.getpid()}-{k}-{time.monotonic_ns()}", budget)
        )
        for k in range(posters if post_path else 0)
    ]
    ended_before = await ended(port)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    stop.set()
    gets = await getter
    posts = [await t for t in post_tasks]
    elapsed = time.perf_counter() - t0
    ended_during = await ended(port) - ended_before
    await drained(port)  # the next phase starts with idle workers
    out: dict[str, Any] = {f"GET {p}": s.summary() for p, s in gets.items()}
    if post_path:
        merged = Samples([t for s, _, _ in posts for t in s.times])
        out[f"POST {post_path}"] = merged.summary()
        out["accepted_tasks_per_s"] = sum(a for _, a, _ in posts) / elapsed
        out["ended_tasks_per_s"] = ended_during / elapsed
        out["batches_per_s"] = len(merged.times) / elapsed
        out["batches_refused_429"] = sum(r for _, _, r in posts)
    return out


async def server_stats(port: int) -> dict[str, Any]:
    conn = await Connection.open(port)
    try:
        return dict(json.loads((await conn.request("GET", "/stats"))[1]))
    finally:
        conn.close()


async def ended(port: int) -> int:
    tasks = (await server_stats(port))["tasks"]
    return int(tasks["done"] + tasks["failed"])


async def drained(port: int, timeout: float = 120.0) -> None:
    """Wait (bounded) until the server has nothing pending or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = (await server_stats(port))["tasks"]
        if tasks["pending"] == 0 and tasks["running"] == 0:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"the server did not drain its queue in {timeout:g} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            conn = await Connection.open(port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        status, _ = await conn.request("GET", "/healthz")
        conn.close()
        if status == 200:
            return
    raise SystemExit("the server did not become healthy")


async def run(args: argparse.Namespace, port: int, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    await wait_healthy(port, proc)
    budget = [args.max_requests]
    gets = ["/tasks/running", "/bare"]
    await phase(port, min(1.0, args.seconds / 5), args.posters, "/tasks", gets, budget)  # warm
    report: dict[str, Any] = {
        "idle": await phase(port, args.seconds / 3, 0, None, gets, budget),
        "post_alone": await phase(port, args.seconds / 3, 1, "/tasks", [], budget),
        "service_load": await phase(port, args.seconds, args.posters, "/tasks", gets, budget),
        "bare_load": await phase(port, args.seconds / 2, args.posters, "/bare", gets, budget),
    }
    load = report["service_load"]
    report["get_p99_ratio"] = load["GET /tasks/running"]["p99_ms"] / load["GET /bare"]["p99_ms"]
    report["get_mean_ratio"] = load["GET /tasks/running"]["mean_ms"] / load["GET /bare"]["mean_ms"]
    report["post_mean_ratio_vs_bare_post"] = (
        load["POST /tasks"]["mean_ms"] / report["bare_load"]["POST /bare"]["mean_ms"]
    )
    report["requests_left_in_budget"] = budget[0]
    report["server_stats"] = await server_stats(port)
    report["core"] = report["server_stats"]["core"]
    return report


def print_report(r: dict[str, Any], args: argparse.Namespace) -> None:
    def row(label: str, s: dict[str, float]) -> str:
        return (
            f"  {label:<22} n={s['n']:>6}  mean {s['mean_ms']:7.3f} ms  "
            f"p50 {s['p50_ms']:7.3f} ms  p99 {s['p99_ms']:7.3f} ms"
        )

    load = r["service_load"]
    print(
        f"conexe serve load test: {args.posters} posters x {BATCH}-task batches, "
        f"pool {args.pool_size}, core {r['core']}, {args.seconds:g} s, "
        f"state {'journal ' + args.state if args.state else 'in memory'}"
    )
    print("no load:")
    for k in ("GET /tasks/running", "GET /bare"):
        print(row(k, r["idle"][k]))
    print(
        f"under load: {load['accepted_tasks_per_s']:,.0f} tasks accepted/s, "
        f"{load['ended_tasks_per_s']:,.0f} ended/s ({load['batches_per_s']:.0f} batches/s, "
        f"{load['batches_refused_429']} answered 429)"
    )
    for k in ("POST /tasks", "GET /tasks/running", "GET /bare"):
        print(row(k, load[k]))
    alone = r["post_alone"]
    print(f"POST /tasks of {BATCH} items alone (one connection, nothing else running):")
    print(row("POST /tasks", alone["POST /tasks"]))
    print("bare POST under the same load shape (reference):")
    print(row("POST /bare", r["bare_load"]["POST /bare"]))
    verdict = "OK" if r["get_p99_ratio"] <= TARGET_RATIO else "OVER TARGET"
    print(
        f"GET /tasks/running vs bare GET under load: p99 x{r['get_p99_ratio']:.2f}, "
        f"mean x{r['get_mean_ratio']:.2f} (target <= {TARGET_RATIO}x): {verdict}"
    )
    print(
        f"POST /tasks (queues and runs 100 tasks) vs bare POST (parses them): "
        f"mean x{r['post_mean_ratio_vs_bare_post']:.2f} (reference, no target)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="length of the loaded phase")
    p.add_argument("--quick", action="store_true", help="3 s instead of --seconds")
    p.add_argument("--posters", type=int, default=4, help="concurrent posting connections")
    p.add_argument("--pool-size", type=int, default=8)
    p.add_argument("--queue-size", type=int, default=100_000)
    p.add_argument(
        "--max-requests", type=int, default=500_000, help="stop after this many requests in all"
    )
    p.add_argument("--core", choices=["default", "c", "py"], default="default")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    p.add_argument(
        "--in-process",
        type=int,
        metavar="N",
        help="time N POST /tasks batches on the ASGI app itself (no HTTP)",
    )
    p.add_argument(
        "--state", metavar="PATH", help="keep the journal in PATH (deleted first): --state"
    )
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.in_process:
        sys.path.insert(0, SRC)
        out = post_in_process(args.in_process, args.pool_size, args.queue_size, args.state)
        s = out["POST /tasks"]
        print(
            f"POST /tasks of {BATCH} items on the ASGI app, core {out['core']}, "
            f"state {'journal' if args.state else 'in memory'}: "
            f"n={s['n']}  p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  "
            f"serving thread's CPU {out['cpu_ms_per_batch']:.3f} ms per batch"
        )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
        return 0
    if args.serve:
        serve(args.serve, args.pool_size, args.queue_size, args.state)
        return 0
    if args.quick:
        args.seconds = 3.0
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    )
    env.pop("CONEXE_NO_EXTENSIONS", None)
    if args.core == "py":
        env["CONEXE_NO_EXTENSIONS"] = "1"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--serve",
            str(port),
            "--pool-size",
            str(args.pool_size),
            "--queue-size",
            str(args.queue_size),
            *(["--state", args.state] if args.state else []),
        ],
        env=env,
    )
    try:
        report = asyncio.run(run(args, port, proc))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print_report(report, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["get_p99_ratio"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
