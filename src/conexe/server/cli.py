"""``conexe serve``: run the HTTP task service on uvicorn.

    $ conexe serve --pool-size 5 --queue-size 1000 --port 8080
    $ python -m conexe serve --handlers mypkg.tasks --token "$SECRET" --drain
    $ conexe serve --state /var/lib/conexe/state.db   # accepted tasks outlive a crash

The Go seed's single-dash flags (``-pool-size 5 -queue-size 1000 -port
8080``) work too. SIGTERM or SIGINT stops gracefully (see ``--grace`` and
``--drain``); a second one stops at once.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import uvicorn

from ._schema import Limits
from .app import create_app
from .handlers import HandlerError, load_handlers
from .journal import Journal, JournalError
from .service import StopReport, TaskService

__all__ = ["build_parser", "main"]

log = logging.getLogger("conexe.server")

TOKEN_ENV = "CONEXE_TOKEN"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (0..65535), got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conexe serve",
        description="Run named tasks over HTTP: POST /tasks a JSON list of "
        '{"name", "duration"} (or {"name", "handler", "args"}); a name pending or running '
        "is a duplicate; a full queue refuses (429) instead of blocking. "
        "Dashboard at /, API description at /openapi.json.",
        allow_abbrev=False,
    )
    _network_options(p.add_argument_group("network"))
    _execution_options(p.add_argument_group("execution"))
    _limit_options(p.add_argument_group("request limits"))
    _shutdown_options(
        p.add_argument_group("shutdown (SIGTERM or SIGINT; a second signal stops at once)")
    )
    _logging_options(p.add_argument_group("logging"))
    return p


def _network_options(net: argparse._ArgumentGroup) -> None:
    net.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind; 0.0.0.0 exposes the service to the network (default: %(default)s)",
    )
    net.add_argument(
        "--port",
        "-port",
        type=_port,
        default=8080,
        help="TCP port to listen on (default: %(default)s)",
    )
    net.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"require 'Authorization: Bearer TOKEN' on every endpoint but /healthz, "
        "/metrics (see --token-metrics) and the dashboard's page (open it as "
        f"/#token=TOKEN); prefer the {TOKEN_ENV} environment variable (a flag shows "
        "in the process list) (default: $CONEXE_TOKEN if set, else no token)",
    )
    net.add_argument(
        "--token-metrics",
        action="store_true",
        help="require the token on /metrics too (give your scraper the token)",
    )


def _execution_options(pool: argparse._ArgumentGroup) -> None:
    pool.add_argument(
        "--pool-size",
        "-pool-size",
        type=_positive,
        default=5,
        help="worker threads running tasks (default: %(default)s)",
    )
    pool.add_argument(
        "--queue-size",
        "-queue-size",
        type=_positive,
        default=1000,
        help="tasks that may wait for a worker; beyond that POST /tasks "
        "refuses the items that don't fit (default: %(default)s)",
    )
    pool.add_argument(
        "--handlers",
        metavar="MODULE",
        action="append",
        default=[],
        help="a module whose public functions requests may run by name "
        '({"name", "handler", "args", "kwargs"}); repeat for more modules '
        "(default: none, only the demo sleep tasks)",
    )
    pool.add_argument(
        "--state",
        metavar="PATH",
        default=None,
        help="keep a journal of every accepted task in the SQLite file PATH (created if "
        "missing): a task is in it before POST /tasks answers 200, and a restart on the "
        "same PATH runs again every accepted task that had not ended (at least once) and "
        "serves finished tasks' outcomes for --keep-results; SIGTERM then leaves the "
        "queue there instead of cancelling it. Without --state everything is in memory "
        "and lost when the process ends (default: in memory)",
    )
    pool.add_argument(
        "--keep-results",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long GET /tasks/{name} still shows a finished task (default: %(default)s)",
    )
    pool.add_argument(
        "--keep-max",
        type=_positive,
        default=10_000,
        metavar="N",
        help="most finished tasks GET /tasks/{name} remembers, the oldest "
        "forgotten first (default: %(default)s)",
    )


def _limit_options(limits: argparse._ArgumentGroup) -> None:
    limits.add_argument(
        "--max-body",
        type=_positive,
        default=1 << 20,
        metavar="BYTES",
        help="largest POST /tasks body (larger: 413; default: %(default)s)",
    )
    limits.add_argument(
        "--max-items",
        type=_positive,
        default=10_000,
        metavar="N",
        help="most tasks in one request (more: 413; default: %(default)s)",
    )
    limits.add_argument(
        "--max-duration",
        type=_positive,
        default=3_600_000,
        metavar="MS",
        help="longest demo task duration in milliseconds (longer: 422; default: %(default)s)",
    )


def _shutdown_options(stop: argparse._ArgumentGroup) -> None:
    stop.add_argument(
        "--grace",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long running tasks (and with --drain the queue) may take "
        "to finish; POST /tasks and /healthz answer 503 meanwhile; then demo "
        "tasks are interrupted and what is left is logged (default: %(default)s)",
    )
    stop.add_argument(
        "--drain",
        action="store_true",
        help="run the queued tasks before stopping instead of cancelling "
        "them (still within --grace)",
    )


def _logging_options(logs: argparse._ArgumentGroup) -> None:
    logs.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log verbosity (default: %(default)s)",
    )
    logs.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: it costs throughput)",
    )


class _GracefulServer(uvicorn.Server):
    """uvicorn, with the first SIGTERM/SIGINT starting the service's graceful
    stop (the API keeps answering, 503 on POST) and a second one forcing it."""

    def __init__(
        self, config: uvicorn.Config, service: TaskService, grace: float, drain: bool
    ) -> None:
        super().__init__(config)
        self.service = service
        self.grace = grace
        self.drain = drain
        self.report: StopReport | None = None
        self._stopper: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._stopper is not None:  # the second signal: stop now
            super().handle_exit(sig, frame)
            return
        # In a signal handler: only flip the state here; the thread logs and waits.
        self.service.begin_stop()
        self._stopper = threading.Thread(
            target=self._stop, args=(signal.Signals(sig).name,), name="conexe-stop", daemon=True
        )
        self._stopper.start()

    def _stop(self, signame: str) -> None:
        counts = self.service.counts()
        log.info(
            "%s: stopping (%d running, %d pending; %s, grace %gs); send it again to stop now",
            signame,
            counts["running"],
            counts["pending"],
            _what_stop_does(self.service.journaled, self.drain),
            self.grace,
        )
        self.report = self.service.stop(self.grace, drain=self.drain)
        self.should_exit = True


def _is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _what_stop_does(journaled: bool, drain: bool) -> str:
    if journaled:
        if drain:
            return "draining the queue, what is left staying in the journal"
        return "leaving the queue in the journal for the next start"
    return "draining the queue" if drain else "cancelling the queue"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until stopped; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        handlers = load_handlers(args.handlers)
    except HandlerError as exc:
        print(f"conexe serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    journal = None
    if args.state is not None:
        try:
            journal = Journal(args.state, keep_seconds=args.keep_results)
        except JournalError as exc:
            print(f"conexe serve: {exc}", file=sys.stderr)
            return 2
    service = TaskService(
        args.pool_size,
        args.queue_size,
        handlers=handlers,
        keep_seconds=args.keep_results,
        keep_max=args.keep_max,
        journal=journal,
    )
    limits = Limits(
        max_items=args.max_items, max_duration_ms=args.max_duration, max_body_bytes=args.max_body
    )
    app = create_app(service, token=args.token, token_metrics=args.token_metrics, limits=limits)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = _GracefulServer(config, service, args.grace, args.drain)
    log.info(
        "conexe serve: %d workers, queue of %d, handlers: %s, token %s",
        args.pool_size,
        args.queue_size,
        ", ".join(sorted(handlers)) or "none",
        "required" if args.token else "not required",
    )
    if not args.token and not _is_loopback(args.host):
        log.warning(
            "listening on %s without a token: anyone who reaches this port can submit "
            "tasks and read their results; set %s (or --token)",
            args.host,
            TOKEN_ENV,
        )
    if journal is None:
        log.info("state: in memory (lost when the process ends; --state PATH keeps it)")
    else:
        log.info(
            "state: journal %s: %d unfinished tasks to run again, %d finished kept",
            journal.path,
            len(journal.unfinished),
            len(journal.finished),
        )
    server.run()
    report = server.report
    if report is not None and report.still_running:
        # Handler code that outlived the grace period can't be interrupted;
        # the threads would keep the process alive, so leave without them.
        log.error("exiting with %d tasks still running", len(report.still_running))
        logging.shutdown()
        os._exit(1)
    log.info("stopped")
    return 0
