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
    committed read transaction, pipelined: it waits for the server once. Its cost grows with the
    number of markets, not of attempts (migration 0006's indexes)."""
    start = utc_day_start(day_of)
    with conn.pipeline():
        markets = conn.execute(_LAST_PER_MARKET, {"mode": mode}) if mode else None
        pnl = conn.execute(
            "SELECT coalesce(sum(realized_pnl), 0) FROM paper_trades WHERE side = 'sell' AND bar_ts >= %s"
            " AND bar_ts < %s", (start, start + timedelta(days=1)))
        conn.commit()
    rows = markets.fetchall() if markets is not None else []
    row = pnl.fetchone()
    realized = Decimal(row[0]) if row is not None else Decimal(0)
    return RiskState(open_markets=frozenset(m for m, side, _sold in rows if side == "bid"),
                     last_sell_at={m: sold for m, _side, sold in rows if sold is not None},
                     realized_today_krw=realized)


# Per market with an attempt of the mode that went out: the side of the latest such attempt and the
# time of the latest such sell. The markets are walked with a loose index scan (one index probe per
# market), each answered from order_attempts_went_out / order_attempts_went_out_sells.
_LAST_PER_MARKET = f"""
WITH RECURSIVE markets AS (
    (SELECT market FROM order_attempts WHERE mode = %(mode)s AND status IN {_WENT_OUT} ORDER BY market LIMIT 1)
    UNION ALL
    SELECT (SELECT a.market FROM order_attempts a
            WHERE a.mode = %(mode)s AND a.status IN {_WENT_OUT} AND a.market > m.market ORDER BY a.market LIMIT 1)
    FROM markets m WHERE m.market IS NOT NULL
)
SELECT m.market,
       (SELECT a.side FROM order_attempts a WHERE a.mode = %(mode)s AND a.status IN {_WENT_OUT}
        AND a.market = m.market ORDER BY a.id DESC LIMIT 1),
       (SELECT a.created_at FROM order_attempts a WHERE a.mode = %(mode)s AND a.side = 'ask'
        AND a.status IN {_WENT_OUT} AND a.market = m.market ORDER BY a.created_at DESC LIMIT 1)
FROM markets m WHERE m.market IS NOT NULL
"""


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
