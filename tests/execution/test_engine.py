"""The exactly-once protocol against the simulated Upbit over loopback and a real PostgreSQL.

The engine runs in-process here (one step at a time) so each fault can be placed exactly; the
system-level runs with SIGKILLed processes are in tests/e2e/test_execution_sim.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from config import ExecutionSettings, PaperProfile, RiskSettings, TradeMode
from exchange.rest import UpbitClient
from execution.engine import Engine, EngineConfig
from execution.failpoints import Failpoints
from execution.guards import GuardConfig
from persistence import control
from model.clock import SystemClock
from tests.helpers import eventually
from upbit_sim import SimConfig, SimServer

ACCESS, SECRET = "ACCESS" * 4, "S3CRET" * 8
LIVE = GuardConfig(has_keys=True, live_trading=True, live_confirmed=True, paper_profile=PaperProfile.DEFAULT,
                   read_only=False, test_orders=True, auto_test=False, feed_live=True)
RISK = RiskSettings(live_markets=("KRW-BTC",), max_positions=5, daily_loss_krw=Decimal(10_000_000))


class Crashed(BaseException):
    """What a failpoint raises here instead of SIGKILLing the test process."""


def _crash() -> None:
    raise Crashed


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": Decimal(10_000_000), "BTC": Decimal(1)}},
                                 seed=False, rate_limits=False)).start()
    server.print_trade("KRW-BTC", "100000000", "1")
    yield server
    server.stop()


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url) as c:
        yield c


@pytest.fixture
def client(sim: SimServer) -> Iterator[UpbitClient]:
    c = UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET)
    yield c
    c.close()


def _intent(conn: psycopg.Connection, side: str = "buy", *, amount: str = "100000", volume: str = "0.001",
            age_s: float = 0) -> int:
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    row = conn.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source,"
        " created_at) VALUES ('KRW-BTC', %s, 100000000, %s, %s, 50, 'test', %s, 'test', %s) RETURNING id",
        (side, Decimal(volume), Decimal(amount), created, created)).fetchone()
    conn.commit()
    return row[0]


def _reconciled(conn: psycopg.Connection, krw: str = "10000000") -> None:
    """What the AccountActor writes at start: a balance snapshot and a clean reconciliation."""
    conn.execute("INSERT INTO account_snapshots (taken_at, currency, balance, locked, avg_buy_price, unit_currency)"
                 " VALUES (now(), 'KRW', %s, 0, 0, 'KRW')", (Decimal(krw),))
    control.set_flag(conn, "reconciled", {"at": datetime.now(UTC).isoformat(), "ok": True, "report": 1}, "test")
    conn.commit()


def _engine(conn: psycopg.Connection, client: UpbitClient | None, mode: TradeMode = TradeMode.LIVE, *,
            failpoints: str = "", guards: GuardConfig = LIVE, **options: Any) -> Engine:
    config = EngineConfig(bot_id="t", requested=mode, guards=guards, risk=RISK,
                          execution=ExecutionSettings(**{"lookup_answers": 3, "lookup_window_s": 0.4, **options}))
    engine = Engine(conn, client, config, clock=SystemClock(), failpoints=Failpoints(failpoints, action=_crash))
    engine.started_at -= timedelta(seconds=1)  # the flag written by _reconciled counts as "since start"
    engine.prepare()
    return engine


def _attempts(conn: psycopg.Connection) -> list[tuple]:
    rows = conn.execute("SELECT paper_trade_id, attempt, identifier, mode, status, blocked_reasons, uuid"
                        " FROM order_attempts ORDER BY id").fetchall()
    conn.commit()
    return rows


def _ours(ident: str, intent: int, attempt: int) -> bool:
    """``t-{intent}-{attempt}-{nonce}``: our identifier for that attempt, with its random nonce."""
    return re.fullmatch(rf"t-{intent}-{attempt}-[a-z0-9]{{8}}", ident) is not None


def _sim_orders(sim: SimServer) -> list[dict]:
    return sim.venue.orders(ACCESS)


def test_test_mode_sends_orders_test_and_creates_nothing(conn, client, sim) -> None:
    ids = [_intent(conn), _intent(conn, "sell")]
    _engine(conn, client, TradeMode.TEST).step()
    rows = _attempts(conn)
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [(ids[0], 1, "test", "test_ok"), (ids[1], 1, "test", "test_ok")]
    assert _sim_orders(sim) == []


def test_live_buy_is_placed_once_followed_to_done_and_its_fills_recorded(conn, client, sim) -> None:
    _reconciled(conn)
    intent = _intent(conn)
    engine = _engine(conn, client)
    engine.step()
    (row,) = _attempts(conn)
    assert row[3:5] == ("live", "submitted") and row[6] is not None
    sim.print_trade("KRW-BTC", "100000000", "1")

    def done() -> bool:
        engine.step()
        return _attempts(conn)[0][4] == "done"

    eventually(done, what="the live order followed to done")
    (order,) = _sim_orders(sim)
    assert _ours(order["identifier"], intent, 1) and order["state"] in ("done", "cancel")
    fills = conn.execute("SELECT sum(volume), sum(funds) FROM order_fills").fetchone()
    attempt = conn.execute("SELECT executed_volume, paid_fee FROM order_attempts").fetchone()
    assert fills[0] == Decimal(order["executed_volume"]) == attempt[0]
    assert attempt[1] == Decimal(order["paid_fee"])


def test_accept_then_drop_is_resolved_by_identifier_never_sent_twice(conn, client, sim) -> None:
    _reconciled(conn)
    intent = _intent(conn)
    sim.faults.drop_after_accept(1, path="/v1/orders", method="POST")
    sim.faults.lookup_lag(0.3)  # and the exchange lists it late
    _engine(conn, client, lookup_window_s=1.0).step()
    (row,) = _attempts(conn)
    assert (row[1], row[3], row[4]) == (1, "live", "submitted") and _ours(row[2], intent, 1)
    assert len(_sim_orders(sim)) == 1


def test_a_request_that_never_arrived_is_confirmed_absent_before_a_second_attempt(conn, client, sim) -> None:
    _reconciled(conn)
    intent = _intent(conn)
    sim.faults.fail_next(1, 500, path="/v1/orders", method="POST")  # refused before it was processed
    _engine(conn, client).step()
    rows = _attempts(conn)
    assert [(r[1], r[4]) for r in rows] == [(1, "error"), (2, "submitted")]
    lookups = conn.execute("SELECT jsonb_array_length(lookups) FROM order_attempts WHERE attempt = 1").fetchone()[0]
    conn.commit()
    assert lookups >= 3
    (placed,) = _sim_orders(sim)
    assert _ours(placed["identifier"], intent, 2)


@pytest.mark.parametrize("point", ["execution.after_intent_commit", "execution.after_send"])
def test_a_crash_around_the_send_leaves_at_most_one_order(conn, client, sim, db_url, point) -> None:
    _reconciled(conn)
    intent = _intent(conn)
    with pytest.raises(Crashed):
        _engine(conn, client, failpoints=f"{point}@1").step()
    conn.rollback()
    with psycopg.connect(db_url) as fresh:  # the restarted incarnation
        _engine(fresh, client).step()
    rows = _attempts(conn)
    orders = _sim_orders(sim)
    assert len(orders) == 1
    assert sum(1 for r in rows if r[4] in ("submitted", "done")) == 1
    assert all(r[4] not in ("unknown",) for r in rows)
    if point == "execution.after_send":  # it was placed: adopted, not placed again
        assert [(r[1], r[4]) for r in rows] == [(1, "submitted")]
        assert _ours(orders[0]["identifier"], intent, 1)
    else:  # never sent: confirmed absent, then attempt 2
        assert [(r[1], r[4]) for r in rows] == [(1, "error"), (2, "submitted")]


def test_guards_and_switches_block_what_they_should(conn, client, sim) -> None:
    _reconciled(conn)
    control.set_flag(conn, "killswitch", True, "test")
    conn.commit()
    buy, sell = _intent(conn), _intent(conn, "sell")
    stale = _intent(conn, age_s=120)
    _engine(conn, client, TradeMode.TEST).step()
    rows = {r[0]: r for r in _attempts(conn)}
    assert rows[buy][4] == "blocked" and rows[buy][5] == ["KILL_SWITCH"]
    assert rows[sell][4] == "test_ok"  # an exit always goes
    assert rows[stale][4] == "blocked" and "KILL_SWITCH" in rows[stale][5] and "DATA_LAG" in rows[stale][5]


def test_live_without_every_guard_is_downgraded_and_says_why(conn, client, sim) -> None:
    unconfirmed = GuardConfig(has_keys=True, live_trading=True, live_confirmed=False,
                              paper_profile=PaperProfile.DEFAULT, read_only=False, test_orders=True, auto_test=True,
                              feed_live=True)
    _intent(conn)
    _engine(conn, client, guards=unconfirmed).step()
    (row,) = _attempts(conn)
    assert row[3:6] == ("test", "test_ok", ["LIVE_UNCONFIRMED"])
    assert _sim_orders(sim) == []
    event = conn.execute("SELECT detail FROM execution_events WHERE kind = 'mode_changed'").fetchone()[0]
    assert event["effective"] == "test" and event["requested"] == "live"


def test_live_waits_for_the_start_up_reconciliation(conn, client, sim) -> None:
    _intent(conn)
    engine = _engine(conn, client)
    engine.step()
    assert _attempts(conn) == []
    assert engine.waiting
    assert control.flags(conn)["reconcile_request"]["by"] == "execution start"
    conn.commit()
    _reconciled(conn)
    engine.step()
    assert [r[4] for r in _attempts(conn)] == ["submitted"]


def test_a_market_outside_live_markets_is_a_risk_limit(conn, client, sim) -> None:
    _reconciled(conn)
    conn.execute("UPDATE paper_trades SET market = 'KRW-ETH'")
    _intent(conn)
    conn.execute("UPDATE paper_trades SET market = 'KRW-ETH'")
    conn.commit()
    _engine(conn, client).step()
    (row,) = _attempts(conn)
    assert row[4:6] == ("blocked", ["RISK_LIMIT"])
    assert _sim_orders(sim) == []


def test_the_krw_budget_never_spends_the_same_won_twice(conn, client, sim) -> None:
    _reconciled(conn, krw="150000")  # room for one 100,000 KRW entry, not two
    RISK_TWO = RiskSettings(live_markets=("KRW-BTC",), max_positions=5, daily_loss_krw=Decimal(10_000_000))
    first = _intent(conn)
    conn.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source)"
                 " VALUES ('KRW-BTC', 'buy', 100000000, 0.001, 100000, 50, 'test', now(), 'test')")
    conn.commit()
    engine = _engine(conn, client)
    assert engine.config.risk == RISK_TWO
    engine.step()
    rows = _attempts(conn)
    assert [(r[0], r[4]) for r in rows][0] == (first, "submitted")
    assert rows[1][4:6] == ("blocked", ["RISK_LIMIT"])
    error = conn.execute("SELECT error FROM order_attempts WHERE id = 2").fetchone()[0]
    conn.commit()
    assert "budget" in error
    assert len(_sim_orders(sim)) == 1


def test_the_daily_loss_limit_trips_the_kill_switch(conn, client, sim) -> None:
    _reconciled(conn)
    conn.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason,"
                 " bar_ts, source) VALUES ('KRW-BTC', 'sell', 90000000, 0.001, 90000, 45, -10000001, 'test', now(),"
                 " 'test')")
    conn.commit()
    _engine(conn, client, TradeMode.TEST).step()  # the losing exit itself goes out
    buy = _intent(conn)
    _engine(conn, client, TradeMode.TEST).step()
    assert control.flags(conn)["killswitch"] is True
    rows = {r[0]: r for r in _attempts(conn)}
    assert rows[buy][4] == "blocked" and "KILL_SWITCH" in rows[buy][5]
    alert = conn.execute("SELECT level, text FROM alerts WHERE kind = 'killswitch'").fetchone()
    conn.commit()
    assert alert[0] == "critical" and "RISK_DAILY_LOSS_KRW" in alert[1]
