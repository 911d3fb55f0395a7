"""``market_1s`` and ``feed_offsets``: closed bars and how far each market's feed is applied.

``save_bars`` writes bars and the feed offsets in the caller's transaction, so after a crash the
feed resumes exactly after the last trade whose effect is in the table. A bar that is already
there (a late-trade amendment) is merged: high/low widened, volume and counts added, open and
close kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import MAX_PREC, Context

import psycopg
from psycopg.pq import TransactionStatus

from actors.messages import Bar, TradeSource

_UPSERT = """
INSERT INTO market_1s (market, ts, open, high, low, close, volume, trade_count, late_trades, source, incomplete)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (market, ts) DO UPDATE SET
    high = GREATEST(market_1s.high, EXCLUDED.high),
    low = LEAST(market_1s.low, EXCLUDED.low),
    volume = market_1s.volume + EXCLUDED.volume,
    trade_count = market_1s.trade_count + EXCLUDED.trade_count,
    late_trades = market_1s.late_trades + EXCLUDED.late_trades,
    incomplete = market_1s.incomplete OR EXCLUDED.incomplete
"""

_COLUMNS = "market, ts, open, high, low, close, volume, trade_count, late_trades, source, incomplete"
# Bars are COPied into a per-session staging table, then upserted in one statement. Rows vanish at commit.
_STAGE = "CREATE TEMP TABLE IF NOT EXISTS market_1s_stage (LIKE market_1s) ON COMMIT DELETE ROWS"
_UPSERT_STAGED = f"""
INSERT INTO market_1s ({_COLUMNS}) SELECT {_COLUMNS} FROM market_1s_stage
ON CONFLICT (market, ts) DO UPDATE SET
    high = GREATEST(market_1s.high, EXCLUDED.high),
    low = LEAST(market_1s.low, EXCLUDED.low),
    volume = market_1s.volume + EXCLUDED.volume,
    trade_count = market_1s.trade_count + EXCLUDED.trade_count,
    late_trades = market_1s.late_trades + EXCLUDED.late_trades,
    incomplete = market_1s.incomplete OR EXCLUDED.incomplete
"""
_EXACT = Context(prec=MAX_PREC)
_SMALL_BATCH = 32  # up to this many bars, staging (3 statements) costs more than it saves

_OFFSET = """
INSERT INTO feed_offsets (feed, market, applied_offset, closed_through) VALUES (%s, %s, %s, %s)
ON CONFLICT (feed, market) DO UPDATE SET applied_offset = EXCLUDED.applied_offset,
    closed_through = EXCLUDED.closed_through, updated_at = now()
"""


def save_bars(cur: psycopg.Cursor, bars: Iterable[Bar], feed: str, offsets: Mapping[str, int],
              closed_through: Mapping[str, int] | None = None) -> None:
    """Upsert bars and set the feed's applied offsets (inside the caller's transaction)."""
    merged: dict[tuple[str, int], list] = {}
    for b in bars:
        row = merged.get((b.market, b.ts))
        if row is None:
            merged[(b.market, b.ts)] = [b.market, b.ts, b.open, b.high, b.low, b.close, b.volume, b.trade_count,
                                        b.late_trades, b.source.value, b.incomplete]
        else:  # an amendment of a bar of the same batch: one statement may not upsert a row twice, so fold
            row[3] = max(row[3], b.high)  # it in here exactly as the upsert would
            row[4] = min(row[4], b.low)
            row[6] = _EXACT.add(row[6], b.volume)
            row[7] += b.trade_count
            row[8] += b.late_trades
            row[10] = row[10] or b.incomplete
    if 0 < len(merged) <= _SMALL_BATCH:  # live and paced: a bar or a few; a plain upsert is one round trip
        cur.executemany(_UPSERT, [(r[0], _ts(r[1]), *r[2:]) for r in merged.values()])
    elif merged:
        conn = cur.connection  # the staged rows live until commit: never let autocommit commit them early
        idle = conn.info.transaction_status == TransactionStatus.IDLE
        with conn.transaction() if idle else nullcontext():
            cur.execute(_STAGE)
            with cur.copy(f"COPY market_1s_stage ({_COLUMNS}) FROM STDIN") as copy:
                for row in merged.values():
                    row[1] = _ts(row[1])
                    copy.write_row(row)
            cur.execute(_UPSERT_STAGED)
    if offsets:
        closed = closed_through or {}
        cur.executemany(_OFFSET, [(feed, market, off, closed.get(market)) for market, off in offsets.items()])


def load_offsets(conn: psycopg.Connection, feed: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per market of ``feed``: the applied offset, and the second of the last closed bar."""
    rows = conn.execute(
        "SELECT market, applied_offset, closed_through FROM feed_offsets WHERE feed = %s", (feed,)
    ).fetchall()
    return {m: int(a) for m, a, _c in rows}, {m: int(c) for m, _a, c in rows if c is not None}


def bars_after(conn: psycopg.Connection, market: str, after_ts: int | None, limit: int = 10_000) -> list[Bar]:
    """Persisted bars of ``market`` newer than ``after_ts`` (epoch seconds), oldest first."""
    rows = conn.execute(
        "SELECT market, ts, open, high, low, close, volume, trade_count, late_trades, source, incomplete"
        " FROM market_1s WHERE market = %s AND (%s::timestamptz IS NULL OR ts > %s::timestamptz) ORDER BY ts LIMIT %s",
        (market, _ts_or_none(after_ts), _ts_or_none(after_ts), limit),
    ).fetchall()
    return [_bar(r) for r in rows]


def last_bars(conn: psycopg.Connection, market: str, upto_ts: int | None, count: int) -> list[Bar]:
    """The ``count`` newest bars of ``market`` at or before ``upto_ts``, oldest first (warm-up)."""
    rows = conn.execute(
        "SELECT market, ts, open, high, low, close, volume, trade_count, late_trades, source, incomplete"
        " FROM market_1s WHERE market = %s AND (%s::timestamptz IS NULL OR ts <= %s::timestamptz)"
        " ORDER BY ts DESC LIMIT %s",
        (market, _ts_or_none(upto_ts), _ts_or_none(upto_ts), count),
    ).fetchall()
    return [_bar(r) for r in reversed(rows)]


def markets(conn: psycopg.Connection) -> list[str]:
    """Markets that have bars."""
    return [r[0] for r in conn.execute("SELECT DISTINCT market FROM market_1s ORDER BY 1").fetchall()]


def _bar(row: tuple) -> Bar:
    market, ts, o, h, l, c, v, n, late, source, incomplete = row
    return Bar(
        market=market, ts=int(ts.timestamp()), open=o, high=h, low=l, close=c, volume=v,
        trade_count=n, late_trades=late, source=TradeSource(source), incomplete=incomplete,
    )


def record_gap(cur: psycopg.Cursor, *, market: str, from_ms: int, until_ms: int, reason: str) -> int:
    """Record a gap and mark the stored bars inside it incomplete; how many bars were marked."""
    start, end = datetime.fromtimestamp(from_ms / 1000, UTC), datetime.fromtimestamp(until_ms / 1000, UTC)
    cur.execute("INSERT INTO feed_gaps (market, from_ts, until_ts, reason) VALUES (%s, %s, %s, %s)",
                (market, start, end, reason))
    # every second the gap touches, both ends included: each may be missing trades
    cur.execute("UPDATE market_1s SET incomplete = true WHERE market = %s"
                " AND ts >= date_trunc('second', %s::timestamptz) AND ts <= date_trunc('second', %s::timestamptz)",
                (market, start, end))
    return cur.rowcount


def _ts(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _ts_or_none(epoch_s: int | None) -> datetime | None:
    return None if epoch_s is None else _ts(epoch_s)
