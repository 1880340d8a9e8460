"""The published contract holds: Schemathesis reads ``/openapi.json`` from a
real ``conexe serve`` on loopback and runs every check through its coverage,
fuzzing and stateful phases (the stateful one follows the link from the
names ``POST /tasks`` accepted to ``GET /tasks/{name}``). Any request the
schema allows must be accepted, any it forbids refused with a 4xx, and every
answer must match its documented status, headers and schema.

Bounded for CI: a fixed example budget and seed (about 600 requests). The
longer run, and its command, are in docs/serve.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conexe._impl import cores

from .conftest import start_server

pytest.importorskip("schemathesis")

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25
SEED = 20261201
PHASES = "examples,coverage,fuzzing,stateful"


def schemathesis_command(url: str, max_examples: int, seed: int) -> list[str]:
    """The CLI run (also the one docs/serve.md shows, with a bigger budget)."""
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        # DELETE cancels a task and keeps its record readable (schemathesis.toml).
        "--exclude-checks",
        "use_after_free",
        "--phases",
        PHASES,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "20",
    ]


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    # One core is enough: the contract is the HTTP layer's, the cores are
    # tested against each other everywhere else.
    server = start_server(
        tmp_path,
        "--pool-size",
        "4",
        "--queue-size",
        "1000",
        "--handlers",
        "conexe.server._demo_handlers",
        "--max-items",
        "20",
        "--grace",
        "0",
        core="c" if "c" in cores else "py",
    )
    try:
        run = subprocess.run(
            schemathesis_command(server.url, MAX_EXAMPLES, SEED),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=540,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    finally:
        server.close()
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in report, report[-5_000:]
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", report)
    assert links is not None, report[-5_000:]
    assert int(links[1]) == int(links[2]) >= 1  # GetAcceptedTask among them


def test_the_schema_refuses_what_the_server_refuses(tmp_path: Path) -> None:
    """The two disagreements a fuzzer once found: the schema now says no too."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    server = start_server(
        tmp_path, "--handlers", "conexe.server._demo_handlers", core="c" if "c" in cores else "py"
    )
    try:
        doc = server.get("/openapi.json").json()
    finally:
        server.close()
    post = doc["paths"]["/tasks"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    valid = jsonschema_rs.validator_for({**body, "components": doc["components"]}).is_valid
    assert valid([{"name": "a", "duration": 0}, {"name": "b", "handler": "add", "args": [1, 2]}])
    assert not valid([{"name": "0", "duration": 0, "handler": "", "args": [None, None]}])
    assert not valid([{"name": "0", "duration": 0, "handler": "add", "args": [1, 2]}])
    assert not valid([{"name": "0", "handler": "add", "args": [1]}])  # add(a, b)
    assert valid([{"name": "0", "handler": "add", "args": [1], "kwargs": {"b": 2}}])
    assert not valid([{"name": "running", "duration": 0}])
    history = doc["paths"]["/stats"]["get"]["parameters"][0]["schema"]
    assert (history["minimum"], history["maximum"]) == (1, 600)
    link = post["responses"]["200"]["links"]["GetAcceptedTask"]
    assert link["operationId"] == "getTask"
    assert link["parameters"] == {"name": "$response.body#/Accepted/0"}
