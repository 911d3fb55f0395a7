"""The page in headless Chromium against a running sandbox: what an operator actually sees.

Screenshots land in the test's tmp dir and, when ``TEST_ARTIFACTS`` is set, are copied there.
Every wait is a deadline-bounded poll (Playwright's ``wait_for_*``, ``eventually``), never a sleep.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from dashboard import DashboardServer
from persistence.db import database_name
from model.clock import FakeClock
from tests.dashboard import rows
from tests.dashboard.rows import NOW
from tests.e2e.harness import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, output
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
            # id and text in one read: the page refreshes itself, and a row may be replaced in between
            attempt_id, text = shown.nth(i).evaluate("r => [Number(r.dataset.attemptId), r.innerText]")
            ident, status = conn.execute("SELECT identifier, status FROM order_attempts WHERE id = %s",
                                         (attempt_id,)).fetchone()
            assert ident in text and status in text
        assert "Nothing blocked in the last 24 h" in page.locator("#reasons-empty").inner_text()
        assert "flowing" in page.locator("#feed-state").inner_text()

        # the execution and account sections: what the system wrote, and rows this test adds (in
        # shadow mode without API keys nothing writes the account tables, and nothing reads them)
        assert page.locator("#sections [data-section]").count() == 6
        assert "not available in this build" not in page.locator("#sections").inner_text()
        safety = page.locator("#sections [data-section='safety']")
        assert "nothing waiting" in safety.locator(".card-head").inner_text()
        assert "no exit pending" in safety.locator("#pending-exits").inner_text()
        guards = page.locator("#sections [data-section='guards']")
        assert guards.locator("tr[data-kind='mode_changed']").count() >= 1  # written by execution at start
        assert "shadow mode" in guards.locator(".card-head").inner_text()
        assert "No blocked reason" in guards.locator("#guard-reasons").inner_text()
        assert "no exchange client" in page.locator("#sections [data-section='breakers']").inner_text()
        assert "No throttling" in page.locator("#no-throttling").inner_text()
        _add_account_rows(conn)
        page.wait_for_selector("#reconciliations tr[data-report-id]", timeout=pw(10_000))
        assert "by cli:test · mode shadow" in guards.locator("tr[data-kind='mode_requested']").inner_text()
        assert "shadow requested at run time" in guards.locator("[data-switch='mode']").inner_text()
        krw = page.locator("#balances tr[data-currency='KRW']").inner_text()
        assert "1,234,567.5" in krw and "latest" in krw
        assert "0.002" in page.locator("#live-positions tr[data-market='KRW-BTC']").inner_text()
        report = page.locator("#reconciliations tr[data-report-id]").first.inner_text()
        assert "BTC: expected 0.5, exchange has 0.4" in report and "differences" in report
        assert "1 difference(s)" in page.locator("#sections [data-section='reconciliation'] .card-head").inner_text()
        page.wait_for_selector("#pending-exits tr[data-paper-trade-id]", timeout=pw(10_000))
        pending = page.locator("#pending-exits tr[data-paper-trade-id]").first.inner_text()
        assert "KRW-BTC" in pending and "blocked (BREAKER_OPEN)" in pending
        assert "1 waiting" in safety.locator(".card-head").inner_text()

    polls = int(page.evaluate("document.body.dataset.polls"))
    page.wait_for_function(f"() => Number(document.body.dataset.polls) >= {polls + 2}", timeout=pw(10_000))
    shot = screenshot(page, "dashboard")
    assert shot.stat().st_size > 50_000
    assert proc.poll() is None, output(proc)


def _add_account_rows(conn: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    rows.flag(conn, "mode", "shadow", by="cli:test", at=now)  # what `ctl mode shadow` writes: no change here
    rows.execution_event(conn, "mode_requested", {"mode": "shadow", "by": "cli:test"}, at=now)
    rows.snapshot(conn, now, {"KRW": ("1234567.5", "0", "0"), "BTC": ("0.002", "0", "90000000")})
    rows.live_position(conn, "KRW-BTC", "0.002", "90000000", updated=now)
    rows.report(conn, at=now, differences=[rows.difference("BTC", "0.5", "0.4", "9000000")])
    trade = conn.execute("SELECT max(id) FROM paper_trades").fetchone()[0]
    conn.execute("INSERT INTO pending_exits (paper_trade_id, market, mode, reason, next_at)"
                 " VALUES (%s, 'KRW-BTC', 'live', 'blocked (BREAKER_OPEN)', now())", (trade,))


def test_the_execution_and_account_sections_show_what_was_recorded(db_url: str, start_dashboard: Start, page: Any,
                                                                   screenshot: Shot,
                                                                   system_lock: Callable[[], None]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        system_lock()
        rows.running_system(conn)
        rows.actor(conn, "execution", "execution", counters={
            "mode": "shadow", "requested_mode": "live", "mode_reasons": ["LIVE_DISABLED"],
            "breakers": {"exchange-default": "half-open", "order": "open", "order-test": "closed"}})
        rows.flag(conn, "paused", True, by="telegram:ops")
        t = NOW - timedelta(days=1)
        throttled, blocked = (rows.paper_trade(conn, "KRW-BTC", "buy", 100, t) for _ in range(2))
        rows.attempt(conn, throttled, status="throttled", mode="test", reasons=["THROTTLED"], created=30,
                     error="refused by the rate limit: 429")
        rows.attempt(conn, blocked, status="blocked", reasons=["LIVE_DISABLED", "DATA_LAG"], created=20)
        event = rows.execution_event(conn, "kill_switch", {"by": "risk", "realized_today_krw": "-51000",
                                                           "api_key": "hunter2-never-shown"}, at=10)
        rows.snapshot(conn, 60, {"KRW": ("900000", "50000", "0"), "ETH": ("1", "0", "3000000")})
        rows.live_position(conn, "KRW-ETH", "1", "3000000", updated=60)
        report = rows.report(conn, at=5, differences=[rows.difference("ETH", "1.5", "1", "1500000")], unknown=1,
                             halted=True)
        rows.flag(conn, "reconcile_halt", {"report": report, "why": "1 difference"}, by="account")
    dash = start_dashboard(db_url, clock=FakeClock(now=NOW), poll_interval_s=0.5)
    page.goto(dash.url)
    page.wait_for_selector(f"#reconciliations tr[data-report-id='{report}']", timeout=pw(10_000))

    guards = page.locator("#sections [data-section='guards']")
    assert "shadow mode" in guards.locator(".card-head").inner_text()
    assert "LIVE_DISABLED" in guards.locator("#mode-reasons").inner_text()
    assert guards.locator("[data-switch='paused'][data-active='true']").count() == 1
    assert guards.locator("[data-switch='killswitch'][data-active='false']").count() == 1
    assert f"HALTED by report #{report}: 1 difference" in guards.locator("[data-switch='reconcile_halt']").inner_text()
    kill = guards.locator(f"tr[data-event-id='{event}']").inner_text()
    assert "kill switch" in kill and "realized_today_krw -51000" in kill
    assert "hunter2" not in page.content()
    reasons = guards.locator("#guard-reasons").inner_text()
    assert "LIVE_DISABLED" in reasons and "mode downgraded" in reasons and "DATA_LAG" in reasons

    breakers = page.locator("#breakers")
    assert breakers.locator("tr[data-breaker]").count() == 3
    assert breakers.locator("tr[data-breaker='order'][data-state='open']").count() == 1
    assert "2 not closed" in page.locator("#sections [data-section='breakers'] .card-head").inner_text()

    throttled_row = page.locator("#throttled tr[data-attempt-id]")
    assert throttled_row.count() == 1 and "refused by the rate limit: 429" in throttled_row.inner_text()
    assert "1 in 24 h" in page.locator("#sections [data-section='throttling'] .card-head").inner_text()

    assert "900,000" in page.locator("#balances tr[data-currency='KRW']").inner_text()
    assert "3,000,000 KRW" in page.locator("#live-positions tr[data-market='KRW-ETH']").inner_text()
    rec = page.locator(f"#reconciliations tr[data-report-id='{report}']").inner_text()
    assert "ETH: expected 1.5, exchange has 1" in rec and "halted" in rec
    head = page.locator("#sections [data-section='reconciliation'] .card-head").inner_text()
    assert "1 difference(s)" in head and "entries halted" in head
    screenshot(page, "execution-sections")


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
