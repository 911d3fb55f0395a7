"""The page in headless Chromium against a running sandbox: what an operator actually sees.

Screenshots land in the test's tmp dir and, when ``TEST_ARTIFACTS`` is set, are copied there.
Every wait is a deadline-bounded poll (Playwright's ``wait_for_*``, ``eventually``), never a sleep.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from dashboard import DashboardServer
from persistence.db import database_name
from tests.dashboard import rows
from tests.e2e.system import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, output
from tests.helpers import MS, eventually

Start = Callable[..., DashboardServer]
Shot = Callable[[Any, str], Path]
SLOW = ["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL]
ALL_RUNNING = """() => {
  const rows = [...document.querySelectorAll('#tree tbody tr[data-node], #tree tbody tr[data-actor]')];
  return rows.length === 11 && rows.every((r) => r.dataset.state === 'running');
}"""


def pw(ms: float) -> float:
    """A Playwright timeout (milliseconds), scaled like every other test timeout."""
    return ms * MS * 1000


def _count(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_the_page_shows_the_running_sandbox(runner: Runner, db_url: str, start_dashboard: Start, page: Any,
                                            screenshot: Shot) -> None:
    dash = start_dashboard(db_url, poll_interval_s=0.5)
    proc = runner.start(SLOW, base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY))
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: _count(conn, "SELECT count(*) FROM order_attempts") >= 30, timeout=90_000 * MS,
                   interval=0.05, what=f"30 order attempts\n{output(proc)}")
        page.goto(dash.url)
        page.wait_for_function(ALL_RUNNING, timeout=pw(15_000))
        page.wait_for_selector("#health[data-ok='true']", timeout=pw(15_000))

        # the tree: root, three nodes with their pids, seven actors
        for node in ("ops", "execution", "market"):
            row = page.locator(f"#tree tr[data-node='{node}']")
            assert str(conn.execute("SELECT pid FROM runtime_nodes WHERE node = %s", (node,)).fetchone()[0]) in (
                row.inner_text())
        assert page.locator("#tree tr[data-actor='market/feed']").count() == 1

        # the price chart is drawn from the stored bars, with the paper fills marked
        page.wait_for_function("() => Number(document.querySelector('#price-chart').dataset.fills) > 0",
                               timeout=pw(15_000))
        points = int(page.locator("#price-chart").get_attribute("data-points"))
        assert 0 < points <= _count(conn, "SELECT count(*) FROM market_1s")
        assert page.locator("#price-chart canvas").count() == 1
        assert page.locator("#price-chart canvas").bounding_box()["height"] > 250
        assert page.locator("#equity-chart canvas").count() == 1

        # the attempts table lists real attempts, with their identifiers and status
        shown = page.locator("#attempts tbody tr[data-attempt-id]")
        assert shown.count() >= 10
        for i in range(5):
            attempt_id = int(shown.nth(i).get_attribute("data-attempt-id"))
            ident, status = conn.execute("SELECT identifier, status FROM order_attempts WHERE id = %s",
                                         (attempt_id,)).fetchone()
            text = shown.nth(i).inner_text()
            assert ident in text and status in text
        assert "Nothing blocked in the last 24 h" in page.locator("#reasons-empty").inner_text()
        assert page.locator("#sections [data-section]").count() == 5
        assert page.locator("#sections").inner_text().count("not available in this build") == 5
        assert "flowing" in page.locator("#feed-state").inner_text()

    polls = int(page.evaluate("document.body.dataset.polls"))
    page.wait_for_function(f"() => Number(document.body.dataset.polls) >= {polls + 2}", timeout=pw(10_000))
    shot = screenshot(page, "dashboard")
    assert shot.stat().st_size > 50_000
    assert proc.poll() is None, output(proc)


def test_a_killed_node_shows_down_then_restarted(runner: Runner, db_url: str, start_dashboard: Start, page: Any,
                                                 screenshot: Shot) -> None:
    dash = start_dashboard(db_url, poll_interval_s=0.25)
    proc = runner.start(SLOW, base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY))
    page.goto(dash.url)
    page.wait_for_function(ALL_RUNNING, timeout=pw(60_000))
    with psycopg.connect(db_url, autocommit=True) as conn, psycopg.connect(db_url) as blocker:
        pid = conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'execution'").fetchone()[0]
        blocker.execute("LOCK TABLE consumer_cursors IN ACCESS EXCLUSIVE MODE")  # hold the restart back
        os.kill(pid, signal.SIGKILL)
        down = page.wait_for_selector("#tree tr[data-node='execution'][data-state='down']", timeout=pw(10_000))
        assert "restarting after killed(SIGKILL)" in down.inner_text()
        assert str(pid) not in down.inner_text()
        page.wait_for_selector("#health[data-ok='false']", timeout=pw(5_000))
        assert "node execution down" in page.locator("#health").inner_text()
        screenshot(page, "node-down")
        blocker.rollback()

    up = page.wait_for_selector("#tree tr[data-node='execution'][data-state='running'][data-incarnation='2']",
                                timeout=pw(30_000))
    assert "after killed(SIGKILL)" in up.inner_text()
    assert "restarted" in up.inner_text()
    page.wait_for_function(ALL_RUNNING, timeout=pw(15_000))
    page.wait_for_selector("#health[data-ok='true']", timeout=pw(15_000))
    assert page.locator("#events tbody").inner_text().count("killed(SIGKILL)") >= 1
    screenshot(page, "node-restarted")
    assert proc.poll() is None, output(proc)


def test_stopped_system_and_database_outage_are_shown_not_blank(db_url: str, pg_server_url: str, template_url: str,
                                                                start_dashboard: Start, page: Any,
                                                                screenshot: Shot) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows.running_system(conn)  # what a run left behind: nobody holds the lock any more
    dash = start_dashboard(db_url, poll_interval_s=0.25)
    page.goto(dash.url)
    banner = page.wait_for_selector("#system-banner", timeout=pw(10_000))
    assert "The system is not running" in banner.inner_text()
    assert page.locator("#tree tr[data-node='market'][data-state='stopped']").count() == 1

    name = database_name(db_url)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    banner = page.wait_for_selector("#db-banner", timeout=pw(10_000))
    assert "Database unreachable" in banner.inner_text()
    assert page.locator("#tree tr[data-node='market']").count() == 1  # the last data stays on screen
    assert page.locator("#health[data-ok='false']").count() == 1
    screenshot(page, "database-outage")

    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{database_name(template_url)}"')
    page.wait_for_selector("#db-banner", state="detached", timeout=pw(10_000))
    page.wait_for_selector("#tree tbody tr.empty-row", timeout=pw(10_000))  # the new database is empty
