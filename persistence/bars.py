"""``market_1s`` and ``feed_offsets``: closed bars and how far each market's feed is applied.

``save_bars`` writes bars and the feed offsets in the caller's transaction, so after a crash the
feed resumes exactly after the last trade whose effect is in the table. A bar that is already
there (a late-trade amendment) is merged: high/low widened, volume and counts added, open and
close kept. A replay's batch of bars is one statement whose parameters are whole columns (array
literals), so it can go out in a pipeline with the rest of the transaction
(:func:`pipelined_transaction`: the writer waits for the server once per batch, not once per statement).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import MAX_PREC, Context
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from model.market import Bar, TradeSource

log = logging.getLogger(__name__)

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
# Many bars (a replay's batch) go in one statement: each column is one array parameter, written as a
# PostgreSQL array literal (numbers exactly as ``str`` writes them — what psycopg sends for a Decimal — and
# the time as epoch seconds), so nothing is adapted per value and no COPY is needed (the statement can be
# pipelined with the rest of the caller's transaction).
_UPSERT_ARRAYS = f"""
INSERT INTO market_1s ({_COLUMNS})
SELECT market, to_timestamp(ts), open, high, low, close, volume, trade_count, late_trades, source, incomplete
FROM unnest(%s::text[], %s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
            %s::integer[], %s::integer[], %s::text[], %s::boolean[])
    AS b (market, ts, open, high, low, close, volume, trade_count, late_trades, source, incomplete)
ON CONFLICT (market, ts) DO UPDATE SET
    high = GREATEST(market_1s.high, EXCLUDED.high),
    low = LEAST(market_1s.low, EXCLUDED.low),
    volume = market_1s.volume + EXCLUDED.volume,
    trade_count = market_1s.trade_count + EXCLUDED.trade_count,
    late_trades = market_1s.late_trades + EXCLUDED.late_trades,
    incomplete = market_1s.incomplete OR EXCLUDED.incomplete
"""
_EXACT = Context(prec=MAX_PREC)
_SMALL_BATCH = 32  # up to this many bars, a plain executemany costs no more than building the arrays

_OFFSET = """
INSERT INTO feed_offsets (feed, market, applied_offset, closed_through) VALUES (%s, %s, %s, %s)
ON CONFLICT (feed, market) DO UPDATE SET applied_offset = EXCLUDED.applied_offset,
    closed_through = EXCLUDED.closed_through, updated_at = now()
"""


def save_bars(cur: psycopg.Cursor, bars: Iterable[Bar], feed: str, offsets: Mapping[str, int],
              closed_through: Mapping[str, int] | None = None) -> None:
    """Upsert bars and set the feed's applied offsets (inside the caller's transaction; pipeline mode is fine)."""
    bars = bars if isinstance(bars, list | tuple) else list(bars)
    if len({(b.market, b.ts) for b in bars}) == len(bars):  # the usual case: every (market, ts) once
        rows = None
        count = len(bars)
    else:  # an amendment of a bar of the same batch: one statement may not upsert a row twice
        rows = _merged(bars)
        count = len(rows)
    if 0 < count <= _SMALL_BATCH:  # live and paced: a bar or a few
        cur.executemany(_UPSERT, [(r[0], _ts(r[1]), *r[2:]) for r in (rows if rows is not None else map(_row, bars))])
    elif count:
        cur.execute(_UPSERT_ARRAYS, _columns(bars) if rows is None else _columns_of_rows(rows))
    if offsets:
        closed = closed_through or {}
        cur.executemany(_OFFSET, [(feed, market, off, closed.get(market)) for market, off in offsets.items()])


def _row(b: Bar) -> list[Any]:
    return [b.market, b.ts, b.open, b.high, b.low, b.close, b.volume, b.trade_count, b.late_trades, b.source.value,
            b.incomplete]


def _merged(bars: Iterable[Bar]) -> list[list[Any]]:
    """One row per (market, ts), an amendment folded in exactly as the upsert would fold it."""
    merged: dict[tuple[str, int], list[Any]] = {}
    for b in bars:
        row = merged.get((b.market, b.ts))
        if row is None:
            merged[(b.market, b.ts)] = _row(b)
        else:
            row[3] = max(row[3], b.high)
            row[4] = min(row[4], b.low)
            row[6] = _EXACT.add(row[6], b.volume)
            row[7] += b.trade_count
            row[8] += b.late_trades
            row[10] = row[10] or b.incomplete
    return list(merged.values())


def _columns(bars: Sequence[Bar]) -> tuple[str, ...]:
    """The parameters of ``_UPSERT_ARRAYS``: one array literal per column."""
    texts = {m: quote_array_text(m) for m in {b.market for b in bars}}
    sources = {s: quote_array_text(s.value) for s in {b.source for b in bars}}
    return (
        array_literal([texts[b.market] for b in bars]),
        array_literal([b.ts for b in bars]),
        array_literal([b.open for b in bars]),
        array_literal([b.high for b in bars]),
        array_literal([b.low for b in bars]),
        array_literal([b.close for b in bars]),
        array_literal([b.volume for b in bars]),
        array_literal([b.trade_count for b in bars]),
        array_literal([b.late_trades for b in bars]),
        array_literal([sources[b.source] for b in bars]),
        array_literal([_BOOL[b.incomplete] for b in bars]),
    )


def _columns_of_rows(rows: list[list[Any]]) -> tuple[str, ...]:
    """The same from merged rows (``_row`` layout)."""
    cols = list(zip(*rows, strict=True))
    return tuple(array_literal(col) for col in (
        [quote_array_text(m) for m in cols[0]], *cols[1:9], [quote_array_text(s) for s in cols[9]],
        [_BOOL[i] for i in cols[10]],
    ))


_BOOL = ("f", "t")


def array_literal(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of the ``str`` of each value: numbers (a Decimal exactly as psycopg sends
    it), ``t``/``f`` for booleans, ``NULL``, or strings already quoted with :func:`quote_array_text`."""
    return "{" + ",".join(map(str, values)) + "}"


def quote_array_text(text: str) -> str:
    """A string as an element of an array literal: double-quoted, backslashes and quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def pipelined_transaction(conn: psycopg.Connection) -> Iterator[psycopg.Cursor]:
    """One transaction sent as a pipeline: the statements go out as they are issued, ``COMMIT`` follows
    them, and the block waits for the server once, at the end (or where a result is fetched).

    The connection must not be in autocommit mode and must be idle (no transaction open). On an
    exception the transaction is rolled back and the connection is idle again, ready for the next
    block; if even the rollback fails (the connection is broken), the connection is closed, so that
    its owner sees a closed connection and replaces it instead of reusing a half-aborted one.

    The rollback runs after pipeline mode has ended, never inside it: when the server's error reaches
    the client before the block's last statement was issued, psycopg 3.3 marks the pipeline aborted
    and a ``ROLLBACK`` sent through it fails with "pipeline aborted" (3.2 happened to sync first),
    which would leave the transaction open in the failed state.
    """
    if conn.autocommit or conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("pipelined_transaction needs an idle connection that is not in autocommit mode")
    try:
        with conn.pipeline(), conn.cursor() as cur:
            yield cur
            conn.commit()
    except BaseException:
        _roll_back_after_pipeline(conn)
        raise


def _roll_back_after_pipeline(conn: psycopg.Connection) -> None:
    """Bring a connection whose pipelined transaction failed back to idle, or close it."""
    if conn.closed or _idle(conn):
        return
    try:
        conn.rollback()
    except psycopg.Error as exc:  # a broken connection: the error being raised says more
        log.warning("rollback after a failed pipelined transaction failed too (%s); closing the connection", exc)
    if not _idle(conn):  # read again: the rollback changed it
        conn.close()


def _idle(conn: psycopg.Connection) -> bool:
    return conn.info.transaction_status == TransactionStatus.IDLE


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
