"""What execution reads to judge an intent: risk state, free balances; and its audited events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

import orjson
import psycopg

from execution.risk import RiskState, utc_day_start

_WENT_OUT = "('test_ok', 'done', 'submitted', 'unknown')"


def event(cur: psycopg.Cursor, kind: str, detail: Mapping[str, object], *, at: datetime | None = None) -> None:
    """An audited execution event (mode requested or changed, kill switch trip, reconciliation …);
    ``at`` defaults to the transaction's time."""
    cur.execute("INSERT INTO execution_events (at, kind, detail) VALUES (coalesce(%s, now()), %s, %s::jsonb)",
                (at, kind, orjson.dumps(detail, default=str).decode()))


def risk_state(conn: psycopg.Connection, *, mode: str, day_of: datetime) -> RiskState:
    """Open markets and last sells of ``mode``'s attempts that went out; the paper book's realised
    PnL in the UTC day of ``day_of`` (market time, so a replay's days are the recording's). One
    committed read transaction, pipelined: it waits for the server once."""
    start = utc_day_start(day_of)
    with conn.pipeline():
        last = conn.execute(
            f"SELECT DISTINCT ON (market) market, side, created_at FROM order_attempts"
            f" WHERE mode = %s AND status IN {_WENT_OUT} ORDER BY market, id DESC", (mode,)) if mode else None
        sells = conn.execute(
            f"SELECT market, max(created_at) FROM order_attempts WHERE mode = %s AND side = 'ask'"
            f" AND status IN {_WENT_OUT} GROUP BY market", (mode,)) if mode else None
        pnl = conn.execute(
            "SELECT coalesce(sum(realized_pnl), 0) FROM paper_trades WHERE side = 'sell' AND bar_ts >= %s"
            " AND bar_ts < %s", (start, start + timedelta(days=1)))
        conn.commit()
    open_markets = {market for market, side, _ in last.fetchall() if side == "bid"} if last is not None else set()
    last_sell: dict[str, datetime] = dict(sells.fetchall()) if sells is not None else {}
    row = pnl.fetchone()
    realized = Decimal(row[0]) if row is not None else Decimal(0)
    return RiskState(open_markets=frozenset(open_markets), last_sell_at=last_sell, realized_today_krw=realized)


def free_balance(conn: psycopg.Connection, currency: str) -> tuple[Decimal, datetime] | None:
    """The free balance of ``currency`` in the latest account snapshot, and when it was taken."""
    row = conn.execute(
        "SELECT balance, taken_at FROM account_snapshots WHERE currency = %s ORDER BY taken_at DESC LIMIT 1",
        (currency,)).fetchone()
    return None if row is None else (Decimal(row[0]), row[1])


def held_volume(conn: psycopg.Connection, market: str) -> Decimal:
    """Our live ledger's net volume of ``market``: bought minus sold, from the recorded fills."""
    row = conn.execute(
        "SELECT coalesce(sum(CASE WHEN side = 'bid' THEN volume ELSE -volume END), 0) FROM order_fills"
        " WHERE market = %s", (market,)).fetchone()
    return Decimal(row[0]) if row is not None else Decimal(0)
