"""The command line: --help documents every flag, bad flags and a busy port
fail with a message, and the default bind address is local."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from conexe.server.cli import build_parser, main

from .conftest import SRC, ServerProcess


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in text, flag
        assert action.help, action.option_strings


@pytest.mark.parametrize(
    "args",
    [
        ["--pool-size", "0"],
        ["--queue-size", "-1"],
        ["--port", "70000"],
        ["--grace", "-1"],
        ["--grace", "nan"],
        ["--max-items", "x"],
        ["--log-level", "loud"],
        ["--pool"],
    ],
)
def test_bad_flags_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_unimportable_handlers_module_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--handlers", "no_such_module_here"]) == 2
    assert "cannot import" in capsys.readouterr().err


def test_binds_localhost_by_default() -> None:
    assert build_parser().parse_args([]).host == "127.0.0.1"


def test_busy_port_fails_with_a_message(serve: Callable[..., ServerProcess]) -> None:
    server = serve()
    port = server.url.rsplit(":", 1)[1]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run(
        [sys.executable, "-m", "conexe", "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode != 0
    assert "address already in use" in done.stderr
