"""Fixtures for the dashboard tests: dashboards per test, the real system as a subprocess, a browser.

Browser tests drive the machine's own Chromium through Playwright (``executable_path``; Playwright
never downloads a browser here). Without one they skip, saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from dashboard import DashboardServer
from persistence import runtime
from model.clock import Clock
from tests.e2e.harness import Runner

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


@pytest.fixture
def start_dashboard() -> Iterator[Callable[..., DashboardServer]]:
    """``start_dashboard(db_url, **kw)``: a started dashboard on 127.0.0.1 and a free port, stopped at teardown."""
    started: list[DashboardServer] = []

    def start(db_url: str, *, clock: Clock | None = None, **kw: Any) -> DashboardServer:
        server = DashboardServer(db_url, host="127.0.0.1", port=0, clock=clock, **kw)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


@pytest.fixture
def system_lock(db_url: str) -> Iterator[Callable[[], None]]:
    """Call it to hold the system lock on the test database (as a running root would)."""
    conns: list[psycopg.Connection] = []

    def hold() -> None:
        conn = psycopg.connect(db_url, autocommit=True)
        conns.append(conn)
        assert runtime.try_lock_system(conn)

    yield hold
    for conn in conns:
        conn.close()


def get(url: str, *, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: status, headers, body (HTTP errors are answers too)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:  # noqa: S310 - a loopback test server
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get_json(url: str) -> tuple[int, Any]:
    status, _headers, body = get(url)
    return status, orjson.loads(body)


# --- the browser -----------------------------------------------------------------------------

def _chromium() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return next((c for c in CHROMIUM_CANDIDATES if Path(c).exists()), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (the system's), shared by the session's browser tests."""
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium on this machine: install one with `apt-get install chromium` "
                    "(or set CHROMIUM_PATH) to run the dashboard's browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e .[test]` installs it (the driver only)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page at a desktop size; page errors fail the test at teardown."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``screenshot(page, name)``: a full-page PNG under the test's tmp dir, copied to ``$TEST_ARTIFACTS``."""
    def take(tab: Any, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        target = os.environ.get("TEST_ARTIFACTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / f"{request.node.name}-{name}.png")
        return path

    return take
