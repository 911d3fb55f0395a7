"""``paper_trades`` and ``paper_positions``: the paper book's durable state.

``save`` writes fills, positions and the processed-through mark in the caller's transaction and
NOTIFYs the execution node. ``paper_trades`` has a single writer (the market node's PaperActor),
so its ids become visible in order and a cursor over them never skips one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg

from persistence.notify import PAPER_TRADES
from trading.paper import Fill, Position

_POSITION = """
INSERT INTO paper_positions (market, volume, avg_price, entry_fee_krw, max_price, realized_pnl, fees_krw, trades,
                             last_price, last_bar_ts, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (market) DO UPDATE SET
    volume = EXCLUDED.volume, avg_price = EXCLUDED.avg_price, entry_fee_krw = EXCLUDED.entry_fee_krw,
    max_price = EXCLUDED.max_price, realized_pnl = EXCLUDED.realized_pnl, fees_krw = EXCLUDED.fees_krw,
    trades = EXCLUDED.trades, last_price = EXCLUDED.last_price, last_bar_ts = EXCLUDED.last_bar_ts,
    updated_at = now()
"""


def save(cur: psycopg.Cursor, fills: Iterable[Fill], positions: Iterable[Position]) -> list[int]:
    """Insert fills and upsert positions; returns the new paper trade ids."""
    ids: list[int] = []
    for f in fills:
        cur.execute(
            "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason,"
            " bar_ts, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (f.market, f.side, f.price, f.volume, f.amount_krw, f.fee_krw, f.realized_pnl, f.reason,
             datetime.fromtimestamp(f.bar_ts, UTC), f.source),
        )
        row = cur.fetchone()
        assert row is not None
        ids.append(int(row[0]))
    rows = [
        (p.market, p.volume, p.avg_price, p.entry_fee_krw, p.max_price, p.realized_pnl, p.fees_krw, p.trades,
         p.last_price, None if p.last_bar_ts is None else datetime.fromtimestamp(p.last_bar_ts, UTC))
        for p in positions
    ]
    if rows:
        cur.executemany(_POSITION, rows)
    if ids:
        cur.execute(f"NOTIFY {PAPER_TRADES}")
    return ids


def load_positions(conn: psycopg.Connection) -> dict[str, Position]:
    """Every persisted position (restored on start)."""
    rows = conn.execute(
        "SELECT market, volume, avg_price, entry_fee_krw, max_price, realized_pnl, fees_krw, trades, last_price,"
        " last_bar_ts FROM paper_positions"
    ).fetchall()
    return {
        r[0]: Position(
            market=r[0], volume=r[1], avg_price=r[2], entry_fee_krw=r[3], max_price=r[4], realized_pnl=r[5],
            fees_krw=r[6], trades=r[7], last_price=r[8], last_bar_ts=None if r[9] is None else int(r[9].timestamp()),
        )
        for r in rows
    }
