"""What execution reads to judge an intent: risk state, free balances; and its audited events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

import orjson
import psycopg

from model.risk import LiveOrder, RiskState, live_realized, utc_day_start

_WENT_OUT = "('test_ok', 'done', 'submitted', 'unknown')"


def event(cur: psycopg.Cursor | psycopg.Connection, kind: str, detail: Mapping[str, object], *, at: datetime | None = None) -> None:
    """An audited execution event (mode requested or changed, kill switch trip, reconciliation …);
    ``at`` defaults to the transaction's time."""
    cur.execute("INSERT INTO execution_events (at, kind, detail) VALUES (coalesce(%s, now()), %s, %s::jsonb)",
                (at, kind, orjson.dumps(detail, default=str).decode()))


def risk_state(conn: psycopg.Connection, *, mode: str, day_of: datetime) -> RiskState:
    """Open markets and last sells of ``mode``'s attempts that went out, and the realised PnL of the
    UTC day of ``day_of``: in live mode our live ledger's (real fills and fees,
    :func:`model.risk.live_realized`), otherwise the paper book's (market time, so a replay's
    days are the recording's). One committed read transaction, pipelined: it waits for the server
    once. Its cost grows with the number of markets (migration 0006's indexes) and, live, with
    the number of live orders that filled."""
    start = utc_day_start(day_of)
    with conn.pipeline():
        markets = conn.execute(_LAST_PER_MARKET, {"mode": mode}) if mode else None
        if mode == "live":
            pnl = conn.execute(_LIVE_ORDERS)
        else:
            pnl = conn.execute(
                "SELECT coalesce(sum(realized_pnl), 0) FROM paper_trades WHERE side = 'sell' AND bar_ts >= %s"
                " AND bar_ts < %s", (start, start + timedelta(days=1)))
        conn.commit()
    rows = markets.fetchall() if markets is not None else []
    if mode == "live":
        realized = live_realized((LiveOrder(market=r[0], side=r[1], executed_volume=r[2], executed_funds=r[3],
                                            paid_fee=r[4], filled_at=r[5]) for r in pnl.fetchall()),
                                 day_start=start)
    else:
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


# Our live orders that executed anything, in the order they were placed, with the time of their last fill.
_LIVE_ORDERS = """
SELECT a.market, a.side, a.executed_volume, a.executed_funds, a.paid_fee,
       (SELECT max(f.traded_at) FROM order_fills f WHERE f.attempt_id = a.id)
FROM order_attempts a WHERE a.mode = 'live' AND a.executed_volume > 0 ORDER BY a.id
"""


def free_balance(conn: psycopg.Connection, currency: str) -> tuple[Decimal, datetime] | None:
    """The free balance of ``currency`` in the latest account snapshot, and when it was taken."""
    row = conn.execute(
        "SELECT balance, taken_at FROM account_snapshots WHERE currency = %s ORDER BY taken_at DESC LIMIT 1",
        (currency,)).fetchone()
    return None if row is None else (Decimal(row[0]), row[1])


def sellable_volume(conn: psycopg.Connection, market: str, *, replacing: int | None = None) -> Decimal:
    """What our live ledger holds of ``market`` and no open sell of ours has on the book yet: the
    volume our fills bought minus what they sold, minus what our non-final live sells still ask
    for (their requested volume not yet executed). Never the account's own coins: only our fills.
    ``replacing``: an attempt about to be finished and replaced by the new one (not counted)."""
    row = conn.execute(_SELLABLE, {"market": market, "replacing": replacing}).fetchone()
    return max(Decimal(row[0]), Decimal(0)) if row is not None else Decimal(0)


_SELLABLE = """
SELECT coalesce((SELECT sum(CASE WHEN side = 'bid' THEN volume ELSE -volume END) FROM order_fills
                 WHERE market = %(market)s), 0)
     - coalesce((SELECT sum(greatest((request->>'volume')::numeric - executed_volume, 0)) FROM order_attempts
                 WHERE mode = 'live' AND side = 'ask' AND market = %(market)s AND NOT final
                 AND id IS DISTINCT FROM %(replacing)s::bigint), 0)
"""
