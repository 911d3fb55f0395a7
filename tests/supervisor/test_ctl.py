"""``ctl status``'s execution lines, against a database holding what the actors would have written."""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import psycopg
import pytest

from config import Settings, load_settings
from persistence import control, runtime
from supervisor import ctl


@pytest.fixture
def running(db_url: str) -> Iterator[Settings]:
    """Settings for the test's database, on which a (pretend) root holds the system lock."""
    with psycopg.connect(db_url, autocommit=True) as root:
        assert runtime.try_lock_system(root)
        yield load_settings(env={"DATABASE_URL": db_url}, env_file=None)


def status(settings: Settings) -> str:
    out = io.StringIO()
    assert ctl.status(settings, out) == ctl.EXIT_OK, out.getvalue()
    return out.getvalue()


def execution_counters(db: psycopg.Connection, counters: dict[str, object]) -> None:
    db.execute("INSERT INTO runtime_actors (node, actor, state, counters) VALUES ('execution', 'execution',"
               " 'running', %s::jsonb)", (orjson.dumps(counters).decode(),))


def test_nothing_reported_yet_shows_unknown_and_na(running: Settings) -> None:
    text = status(running)
    assert "execution: requested shadow (TRADE_MODE); effective unknown" in text
    assert "exchange breakers: n/a" in text
    assert "reconciliation: none yet" in text
    assert "entries: not halted by reconciliation" in text
    assert "live positions: 0" in text


def test_requested_effective_breakers_reconciliation_halt_and_positions(running: Settings,
                                                                        db: psycopg.Connection) -> None:
    control.set_flag(db, "mode", "live", "cli:op@host")
    halt = {"at": "2025-01-01T00:00:00Z", "report": 7, "why": "KRW differs"}
    control.set_flag(db, "reconcile_halt", halt, "account")
    execution_counters(db, {"mode": "shadow", "mode_reasons": ["KEYS_MISSING", "LIVE_DISABLED"],
                            "breakers": {"orders": "open", "exchange": "closed"}})
    db.execute("INSERT INTO reconciliation_reports (trigger, ok, differences, unknown_orders, halted) VALUES"
               " ('periodic', true, '[]', '[]', false),"
               " ('command', false, %s::jsonb, '[{\"uuid\": \"x\"}]', true)",
               (orjson.dumps([{"currency": "KRW", "expected": "1000", "actual": "900"}]).decode(),))
    db.execute("INSERT INTO live_positions (market, volume, locked, avg_buy_price) VALUES"
               " ('KRW-BTC', 0.001, 0, 90000000), ('KRW-ETH', 0, 0.5, 3000000), ('KRW-XRP', 0, 0, 0)")
    text = status(running)
    assert ("execution: requested live (set by ctl/Telegram); effective shadow, downgraded: KEYS_MISSING, "
            "LIVE_DISABLED") in text
    assert "exchange breakers: exchange closed, orders open" in text
    line = next(x for x in text.splitlines() if x.startswith("reconciliation #"))
    assert "(command)" in line and "DIFFERENCES" in line
    assert "1 difference: actual=900 currency=KRW expected=1000" in line  # jsonb's key order
    assert "1 open exchange order we do not know" in line
    assert "entries: HALTED by report #7: KRW differs" in text
    assert "live positions: 2" in text


def test_an_effective_mode_without_downgrade(running: Settings, db: psycopg.Connection) -> None:
    execution_counters(db, {"mode": "test", "mode_reasons": [], "breakers": {}})
    text = status(running)
    assert "effective test (every guard agrees)" in text and "exchange breakers: n/a" in text
