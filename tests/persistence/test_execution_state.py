"""persistence.execution_state.risk_state on a real database, against its definition computed in Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import psycopg
import pytest

from persistence import execution_state as state_repo
from persistence.db import connect

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WENT_OUT = {"test_ok", "done", "submitted", "unknown"}
STATUSES = ["test_ok", "done", "submitted", "unknown", "error", "blocked", "throttled"]


def _fill(db: psycopg.Connection, rng: random.Random, n: int) -> list[tuple]:
    """``n`` intents with an attempt each (random mode, status, side, market, time); the rows written."""
    rows = []
    for i in range(1, n + 1):
        market, side = f"KRW-M{rng.randrange(6)}", rng.choice(["bid", "ask"])
        mode, status = rng.choice(["test", "live", "shadow"]), rng.choice(STATUSES)
        at = T0 + timedelta(seconds=rng.randrange(3 * 86_400))
        pnl = D(rng.randrange(-5_000, 5_000)) if side == "ask" else D(0)
        db.execute(
            "INSERT INTO paper_trades (id, market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason,"
            " bar_ts, source) VALUES (%s, %s, %s, 1, 1, 5000, 0, %s, 'test', %s, 'test')",
            (i, market, "buy" if side == "bid" else "sell", pnl, at))
        db.execute(
            "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
            " created_at) VALUES (%s, 1, %s, %s, %s, %s, %s, '{}', %s)",
            (i, f"t-{i}-1", mode, status, market, side, at))
        rows.append((i, market, side, mode, status, at, pnl))
    return rows


def _expected(rows: list[tuple], mode: str, day_of: datetime) -> tuple[frozenset[str], dict[str, datetime], D]:
    out = [r for r in rows if r[3] == mode and r[4] in WENT_OUT]
    latest: dict[str, tuple[int, str]] = {}
    sold: dict[str, datetime] = {}
    for i, market, side, _mode, _status, at, _pnl in out:
        if market not in latest or i > latest[market][0]:
            latest[market] = (i, side)
        if side == "ask":
            sold[market] = max(sold.get(market, at), at)
    start = day_of.replace(hour=0, minute=0, second=0, microsecond=0)
    realized = sum((r[6] for r in rows if r[2] == "ask" and start <= r[5] < start + timedelta(days=1)), D(0))
    if mode == "live":
        realized = D(0)  # live counts our live fills, not the paper book: none of these attempts filled
    return frozenset(m for m, (_i, side) in latest.items() if side == "bid"), sold, realized


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_risk_state_is_the_latest_attempt_per_market_that_went_out(db_url: str, db: psycopg.Connection,
                                                                   seed: int) -> None:
    rng = random.Random(seed)
    rows = _fill(db, rng, 400)
    with connect(db_url) as conn:
        for mode in ("test", "live", "shadow", "nothing-yet"):
            for day_of in (T0, T0 + timedelta(days=1, hours=3), T0 + timedelta(days=5)):
                got = state_repo.risk_state(conn, mode=mode, day_of=day_of)
                open_markets, last_sell, realized = _expected(rows, mode, day_of)
                assert got.open_markets == open_markets, (mode, day_of)
                assert dict(got.last_sell_at) == last_sell, (mode, day_of)
                assert got.realized_today_krw == realized, (mode, day_of)
                assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # committed


def test_the_risk_check_walks_the_indexes_not_the_attempts(db_url: str, db: psycopg.Connection) -> None:
    """Its plan probes order_attempts through the partial indexes (a sequential scan would read every attempt)."""
    _fill(db, random.Random(4), 50)
    db.execute("ANALYZE order_attempts")
    db.execute("SET enable_seqscan = off")  # a table this small would be scanned whole anyway: ask for the plan
    plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + state_repo._LAST_PER_MARKET, {"mode": "test"}).fetchall())
    assert "order_attempts_went_out" in plan and "order_attempts_went_out_sells" in plan


def test_live_risk_state_realises_our_live_fills_at_average_cost(db_url: str, db: psycopg.Connection) -> None:
    """Two buys (cost includes their fees), a sell the day after: realised = funds - fee - volume x average."""
    orders = [  # (side, volume, funds, fee, filled at)
        ("bid", D("0.002"), D(200_000), D(100), T0),
        ("bid", D("0.002"), D(240_000), D(120), T0 + timedelta(hours=1)),
        ("ask", D("0.003"), D(270_000), D(135), T0 + timedelta(days=1, hours=2)),
        ("ask", D("0.001"), D(50_000), D(25), T0 + timedelta(days=2)),
    ]
    for i, (side, volume, funds, fee, at) in enumerate(orders, start=1):
        db.execute("INSERT INTO paper_trades (id, market, side, price, volume, amount_krw, fee_krw, reason, bar_ts,"
                   " source) VALUES (%s, 'KRW-BTC', %s, 1, 1, 1, 0, 't', %s, 't')",
                   (i, "buy" if side == "bid" else "sell", at))
        attempt = db.execute(
            "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
            " executed_volume, executed_funds, paid_fee) VALUES (%s, 1, %s, 'live', 'done', 'KRW-BTC', %s, '{}',"
            " %s, %s, %s) RETURNING id", (i, f"t-{i}-1-abcdefgh", side, volume, funds, fee)).fetchone()[0]
        db.execute("INSERT INTO order_fills (trade_uuid, attempt_id, market, side, price, volume, funds, traded_at)"
                   " VALUES (%s, %s, 'KRW-BTC', %s, 1, %s, %s, %s)", (f"f-{i}", attempt, side, volume, funds, at))
    average = (D(200_000) + 100 + 240_000 + 120) / D("0.004")
    with connect(db_url) as conn:
        day2 = state_repo.risk_state(conn, mode="live", day_of=T0 + timedelta(days=1))
        day3 = state_repo.risk_state(conn, mode="live", day_of=T0 + timedelta(days=2, hours=5))
        day1 = state_repo.risk_state(conn, mode="live", day_of=T0)
    assert day2.realized_today_krw == D(270_000) - 135 - D("0.003") * average
    assert day3.realized_today_krw == D(50_000) - 25 - D("0.001") * average
    assert day1.realized_today_krw == 0
