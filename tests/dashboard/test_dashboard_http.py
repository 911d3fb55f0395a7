"""The HTTP surface without a running system: routes, headers, outages, redaction, lifecycle."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard import DashboardServer
from dashboard.db import ReadOnlyPool
from persistence.db import database_name, with_database
from persistence.errors import DatabaseBug
from model.clock import FakeClock
from tests.dashboard import rows
from tests.dashboard.conftest import get, get_json
from tests.dashboard.rows import NOW

Start = Callable[..., DashboardServer]
REPLAY = "replay:test"


def _metrics(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    status, headers, body = get(url + "metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        samples.setdefault(family.name, [])  # a family with no sample yet is still declared
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def test_page_api_health_and_metrics_of_a_database_with_no_system(db: psycopg.Connection, db_url: str,
                                                                  start_dashboard: Start) -> None:
    rows.running_system(db)
    server = start_dashboard(db_url, clock=FakeClock(now=NOW), poll_interval_s=0.5)
    status, headers, body = get(server.url)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'content="500"' in body  # the poll interval reaches the page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for asset in ("app.js", "app.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "vendor/uPlot.LICENSE"):
        assert f"/static/{asset}".encode() in body, asset
        assert get(server.url + "static/" + asset)[0] == 200, asset

    status, doc = get_json(server.url + "api/status")
    assert status == 200
    assert (doc["database"]["ok"], doc["database"]["error"]) == (True, None)
    assert doc["database"]["clock_skew_s"] > 3600  # the fake clock is far behind the server's
    assert doc["system"]["root"]["state"] == "stopped"
    assert [n["node"] for n in doc["system"]["nodes"]] == ["ops", "execution", "market"]
    assert doc["generated_at"] == "2025-03-04T05:06:07Z"

    status, verdict = get_json(server.url + "healthz")
    assert status == 503
    assert verdict["reason"] == "root stopped: no root holds the system lock: the system is not running"

    metrics = _metrics(server.url)
    assert metrics["upbit_dashboard_database_up"] == [({}, 1.0)]
    assert metrics["upbit_system_running"] == [({}, 0.0)]
    assert ({"node": "market", "actor": "bar"}, 0.0) in metrics["upbit_actor_mailbox_depth"]
    assert ({"supervisor": "market", "child": "feed"}, 0.0) in metrics["upbit_child_restarts_total"]
    assert metrics["upbit_feed_trades_total"] == [({}, 480.0)]
    assert metrics["upbit_bars_total"] == [({}, 470.0)]
    assert metrics["upbit_dashboard_section_available"] == [
        ({"section": key}, 1.0) for key in ("safety", "guards", "breakers", "throttling", "account", "reconciliation")]
    assert metrics["upbit_breaker_state"] == []  # the execution actor does not run
    assert metrics["upbit_reconciliation_differences"] == []  # no reconciliation yet
    assert metrics["upbit_database_clock_skew_seconds"][0][1] > 3600


def test_execution_and_account_sections_in_the_json_and_the_metrics(db: psycopg.Connection, db_url: str,
                                                                   start_dashboard: Start,
                                                                   system_lock: Callable[[], None]) -> None:
    system_lock()
    rows.running_system(db)
    rows.actor(db, "execution", "execution", counters={
        "mode": "shadow", "requested_mode": "test", "mode_reasons": ["KEYS_MISSING"],
        "breakers": {"order": "open", "order-test": "closed"}})
    rows.flag(db, "killswitch", True, by="risk")
    rows.execution_event(db, "kill_switch", {"by": "risk", "realized_today_krw": "-51000"})
    rows.snapshot(db, 30, {"KRW": ("1234567.5", "0", "0")})
    rows.live_position(db, "KRW-BTC", "0.002", "90000000")
    rows.report(db, at=20, differences=[rows.difference("KRW", "1234567.5", "1234000", "567.5")], halted=True)
    server = start_dashboard(db_url, clock=FakeClock(now=NOW))

    status, doc = get_json(server.url + "api/status")
    assert status == 200
    sections = {s["key"]: s for s in doc["sections"]}
    assert list(sections) == ["safety", "guards", "breakers", "throttling", "account", "reconciliation"]
    assert sections["breakers"]["breakers"] == [{"group": "order", "state": "open"},
                                                {"group": "order-test", "state": "closed"}]
    guards = sections["guards"]
    assert (guards["mode"], guards["requested_mode"], guards["mode_reasons"]) == ("shadow", "test", ["KEYS_MISSING"])
    assert next(s for s in guards["switches"] if s["name"] == "killswitch")["text"] == "ON"
    assert guards["events"][0]["kind"] == "kill_switch"
    assert guards["events"][0]["at"] == "2025-03-04T05:06:06Z"
    assert sections["throttling"]["note"] == "no throttling in the last 24 h"
    account = sections["account"]
    assert account["balances"][0] | {"taken_at": None} == {
        "currency": "KRW", "taken_at": None, "balance": 1234567.5, "locked": 0.0, "avg_buy_price": 0.0,
        "unit_currency": "KRW", "in_latest": True}
    assert account["positions"][0]["cost_krw"] == 180000.0
    latest = sections["reconciliation"]["latest"]
    assert (latest["ok"], latest["halted"], latest["differences_count"]) == (False, True, 1)

    metrics = _metrics(server.url)
    assert sorted((s["breaker"], s["state"], v) for s, v in metrics["upbit_breaker_state"]) == [
        ("order", "closed", 0.0), ("order", "half-open", 0.0), ("order", "open", 1.0),
        ("order-test", "closed", 1.0), ("order-test", "half-open", 0.0), ("order-test", "open", 0.0)]
    assert metrics["upbit_reconciliation_differences"] == [({}, 1.0)]


def test_series_endpoint(db: psycopg.Connection, db_url: str, start_dashboard: Start) -> None:
    t0 = NOW - timedelta(days=3)
    for i in range(5):
        rows.bar(db, "KRW-BTC", t0 + timedelta(seconds=i), 100 + i)
    rows.offset(db, REPLAY, "KRW-BTC", 4, stored=1)
    server = start_dashboard(db_url)
    status, series = get_json(server.url + "api/series?market=KRW-BTC&limit=3")
    assert status == 200
    assert series["bars"]["t"] == [int((t0 + timedelta(seconds=i)).timestamp()) for i in (2, 3, 4)]
    assert series["bars"]["close"] == [102.0, 103.0, 104.0]
    assert get_json(server.url + "api/series?limit=junk")[1]["market"] == "KRW-BTC"


def test_read_only_loopback_only_and_no_files_outside_static(db_url: str, start_dashboard: Start) -> None:
    server = start_dashboard(db_url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/api/status", body=b"{}")
    res = conn.getresponse()
    assert (res.status, res.getheader("Allow")) == (405, "GET, HEAD")
    res.read()
    conn.request("GET", "/api/status", headers={"Host": "attacker.example:8765"})  # DNS rebinding
    res = conn.getresponse()
    assert res.status == 421
    res.read()
    conn.request("HEAD", "/healthz")
    res = conn.getresponse()
    assert res.status == 503 and res.read() == b"" and int(res.getheader("Content-Length")) > 0
    conn.close()
    for path in ("static/../server.py", "static/%2e%2e/server.py", "static/index.html", "nope", "static/"):
        assert get(server.url + path)[0] == 404, path


def test_database_outage_then_recovery(db: psycopg.Connection, db_url: str, pg_server_url: str,
                                       template_url: str, start_dashboard: Start) -> None:
    rows.running_system(db)
    db.close()
    server = start_dashboard(db_url)
    assert get_json(server.url + "api/status")[0] == 200  # the pool now holds a connection
    name = database_name(db_url)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # kills the dashboard's connection too
    status, doc = get_json(server.url + "api/status")
    assert status == 503
    assert doc["database"]["ok"] is False and doc["database"]["error"]
    status, verdict = get_json(server.url + "healthz")
    assert status == 503 and verdict["reason"].startswith("database unreachable: ")
    assert _metrics(server.url) == {"upbit_dashboard_database_up": [({}, 0.0)]}  # and nothing else
    assert get(server.url)[0] == 200  # the page itself is still served, to show the outage

    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{database_name(template_url)}"')
    status, doc = get_json(server.url + "api/status")
    assert status == 200 and doc["database"]["ok"] is True


def test_nothing_listens_on_a_missing_database_either(pg_server_url: str, start_dashboard: Start) -> None:
    server = start_dashboard(with_database(pg_server_url, "no_such_database"))
    status, doc = get_json(server.url + "api/status")
    assert status == 503 and "no_such_database" in doc["database"]["error"]


def test_configured_secrets_are_masked_in_every_answer(db: psycopg.Connection, db_url: str,
                                                       start_dashboard: Start) -> None:
    token = "123456789:AAHk3Jq9S3cr3tT0kenValue_xyzABCDEF"
    db.execute("INSERT INTO alerts (kind, level, text, attempts, last_error) VALUES ('t', 'error', %s, 3, %s)",
               (f"delivery failed for bot{token}", f"POST https://api.telegram.org/bot{token}/sendMessage: 502"))
    plain = start_dashboard(db_url)
    assert token.encode() in get(plain.url + "api/status")[2]  # the test can see a leak when there is one
    masked = start_dashboard(db_url, redact=lambda text: text.replace(token, "1234…CDEF"))
    for path in ("", "api/status", "api/series", "healthz", "metrics"):
        body = get(masked.url + path)[2]
        assert token.encode() not in body, path
    assert "1234…CDEF".encode() in get(masked.url + "api/status")[2]


def test_port_zero_picks_a_free_port_and_stop_releases_it(db_url: str) -> None:
    first = DashboardServer(db_url, host="127.0.0.1", port=0)
    second = DashboardServer(db_url, host="127.0.0.1", port=0)  # two in one process: no shared registry
    try:
        port = first.start()
        assert port > 0 and first.url == f"http://127.0.0.1:{port}/"
        assert second.start() != port
        assert get(first.url + "metrics")[0] == get(second.url + "metrics")[0] == 200
        with pytest.raises(OSError):
            DashboardServer(db_url, host="127.0.0.1", port=port).start()
    finally:
        first.stop()
        second.stop()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: past TIME_WAIT
        probe.bind(("127.0.0.1", port))  # nothing listens there any more
        probe.listen()
    with pytest.raises(ValueError, match="port"):
        DashboardServer(db_url, host="127.0.0.1", port=70000)


def test_the_dashboards_connections_cannot_write(db_url: str) -> None:
    pool = ReadOnlyPool(db_url, size=1)
    try:
        with pool.snapshot() as conn:
            row = conn.execute("SELECT current_setting('transaction_read_only'),"
                               " current_setting('transaction_isolation')").fetchone()
            assert row == ("on", "repeatable read")
        with pytest.raises(DatabaseBug, match="ReadOnlySqlTransaction"), pool.snapshot() as conn:
            conn.execute("INSERT INTO alerts (kind, level, text) VALUES ('x', 'info', 'written by the dashboard')")
        with pool.snapshot() as conn:  # a failed snapshot costs its connection, not the pool
            assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    finally:
        pool.close()
