"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``)
loads ``/``, the page polls the API, and the DOM shows the live numbers.
A screenshot is saved (``CONEXE_DASHBOARD_PNG=path`` keeps it, e.g. for
docs/dashboard.png)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ServerProcess

BROWSER = os.environ.get("CHROMIUM") or next(
    (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless Chromium: apt-get install chromium (or set CHROMIUM)"
)


@pytest.fixture(scope="module")
def core_name() -> str:
    """The page is the same whichever core runs the tasks: a browser run
    per core would only cost CI time, so the C core's (the py one without it)."""
    from conexe._impl import cores

    return "c" if "c" in cores else "py"


def chromium(url: str, profile: Path, *args: str) -> str:
    """Run headless Chromium on ``url``, letting the page's timers run for 4 s
    of virtual time (network waits included), and return its stdout."""
    cmd = [
        str(BROWSER),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=4000",
        *args,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    return done.stdout.decode()


def number(dom: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert match, f"#{element_id} not in the page"
    return int(match.group(1).replace(",", ""))


def test_dashboard_shows_live_numbers(serve: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = serve("--pool-size", "3", "--grace", "0")
    server.post([{"name": f"quick-{i}", "duration": 0} for i in range(40)])
    server.post([{"name": f"long-{i}", "duration": 600_000} for i in range(5)])
    server.wait_counts(running=3, pending=2)

    dom = chromium(f"{server.url}/", tmp_path / "profile", "--dump-dom")
    assert 'data-live="1"' in dom  # at least one poll of /stats succeeded
    assert (number(dom, "running"), number(dom, "pending")) == (3, 2)
    assert number(dom, "c-done") >= 40
    assert 'id="state" class="serving"' in dom
    assert "long-0" in dom  # the running list, from GET /tasks/running
    assert "in memory only (lost when the process ends)" in dom

    # The numbers follow the server: queue more and look again.
    server.post([{"name": f"later-{i}", "duration": 600_000} for i in range(4)])
    server.wait_counts(running=3, pending=6)
    dom = chromium(f"{server.url}/", tmp_path / "profile", "--dump-dom")
    assert (number(dom, "running"), number(dom, "pending")) == (3, 6)

    png = Path(os.environ.get("CONEXE_DASHBOARD_PNG") or tmp_path / "dashboard.png")
    chromium(
        f"{server.url}/", tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,900"
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") >= 1000  # the width in the IHDR chunk


def test_behind_a_token_the_page_polls_with_the_token_from_its_fragment_and_shows_the_journal(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    server = serve(
        "--pool-size", "2", "--grace", "0", "--state", str(db), env={"CONEXE_TOKEN": "s3cret"}
    )
    auth = {"Authorization": "Bearer s3cret"}
    server.post([{"name": f"long-{i}", "duration": 600_000} for i in range(3)], headers=auth)

    dom = chromium(f"{server.url}/#token=s3cret", tmp_path / "profile", "--dump-dom")
    assert 'data-live="1"' in dom
    assert (number(dom, "running"), number(dom, "pending")) == (2, 1)
    assert f"in the journal {db} (0 run again at start, 3 unfinished)" in dom

    dom = chromium(f"{server.url}/", tmp_path / "profile", "--dump-dom")  # no token
    assert 'data-live="1"' not in dom
    assert "token needed: open /#token=TOKEN" in dom
