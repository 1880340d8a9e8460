"""SIGTERM/SIGINT stop gracefully: new tasks get 503 (and /healthz too)
while running tasks finish within --grace; pending ones are cancelled and
logged, or run first with --drain; after the grace period demo tasks are
cut short. The process exits 0."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from .conftest import ServerProcess, wait_until


def start_busy(server: ServerProcess, running_ms: int, pending: int) -> None:
    server.post(
        [{"name": f"run-{i}", "duration": running_ms} for i in range(2)]
        + [{"name": f"wait-{i}", "duration": 1} for i in range(pending)]
    )
    server.wait_counts(running=2, pending=pending)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_refuses_new_tasks_lets_running_finish_and_cancels_pending(
    serve: Callable[..., ServerProcess], sig: int
) -> None:
    server = serve("--pool-size", "2", "--grace", "60")
    start_busy(server, running_ms=4000, pending=3)
    server.signal(sig)
    r = wait_until(
        lambda: (r := server.post([{"name": "late", "duration": 1}])).status_code == 503 and r,
        what="503 on POST while stopping",
    )
    assert "shutting down" in r.json()["error"]
    health = server.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] in ("stopping", "stopped")
    # Cancelled at once without --drain: 503s start just before the queue
    # is cancelled, so allow that instant, far less than the 4 s tasks.
    wait_until(lambda: server.names("pending") == [], 2.0, "pending tasks cancelled")
    assert sorted(server.names("running")) == ["run-0", "run-1"]  # still answering reads
    assert server.wait_exit() == 0
    log = server.log()
    assert "cancelled 3 pending tasks: 'wait-0', 'wait-1', 'wait-2'" in log
    assert "graceful stop: 2 tasks finished, 3 pending cancelled, 0 interrupted" in log


def test_drain_runs_the_queue_before_stopping(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--pool-size", "2", "--grace", "60", "--drain")
    start_busy(server, running_ms=1500, pending=4)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert "graceful stop: 6 tasks finished, 0 pending cancelled, 0 interrupted" in server.log()


def test_grace_period_over_interrupts_demo_tasks(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--pool-size", "2", "--grace", "0.5")
    start_busy(server, running_ms=600_000, pending=1)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    log = server.log()
    assert "interrupting 2 demo tasks: " in log  # in the order they started
    assert "'run-0'" in log and "'run-1'" in log
    assert "1 pending cancelled, 2 interrupted, 0 still running" in log


def test_handler_outliving_the_grace_period_is_logged_and_abandoned(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve("--grace", "0.2", "--handlers", "conexe.server._demo_handlers")
    server.post([{"name": "stubborn", "handler": "slow_echo", "args": [1, 600]}])
    wait_until(lambda: server.names("running") == ["stubborn"], what="stubborn running")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 1
    assert "1 tasks still running after the grace period: 'stubborn'" in server.log()


def test_idle_server_stops_at_once(serve: Callable[..., ServerProcess]) -> None:
    server = serve()
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert "graceful stop: 0 tasks finished, 0 pending cancelled" in server.log()
