"""Benchmark 5 — database write rate of closed bars, against a plain COPY.

The batches are the BarActor's at ``--speed max``: the candle recording fed to a
``BarAggregator`` 2,000 trades at a time (the feed's batch), each batch's closed bars saved with
the aggregator's applied offsets and closed-through seconds, exactly the arguments
``BarActor._emit`` passes. Each batch is one transaction, as in the BarActor.

- **save_bars**: ``persistence.bars.save_bars`` (an ``executemany`` upsert of the bars plus the
  ``feed_offsets`` upsert) into ``market_1s`` of a freshly migrated database;
- **ceiling**: ``COPY … FROM STDIN`` of the very same row tuples, batch by batch, one transaction
  each, into ``market_1s_copy`` — ``CREATE TABLE … (LIKE market_1s INCLUDING ALL)``, so the same
  columns, primary key and checks. Both tables are emptied before every run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg

from model.market import Bar
from bench.context import CANDLES, Context, Window
from bench.result import Result
from bench.stats import Figure, ratios
from market.bars import BarAggregator
from persistence import bars as bars_repo
from persistence.migrate import migrate

FEED = "replay:bench"
TRADE_BATCH = 2_000  # actors.feed.BATCH: one TradesReceived, one save_bars, one transaction
BARS_FULL = 40_000
BARS_QUICK = 4_000
_COLUMNS = "market, ts, open, high, low, close, volume, trade_count, late_trades, source, incomplete"

Batch = tuple[list[Bar], dict[str, int], dict[str, int]]


def batches(bars_wanted: int) -> list[Batch]:
    """The BarActor's batches over the start of the candle recording, until ``bars_wanted`` bars."""
    agg = BarAggregator()
    out: list[Batch] = []
    total = 0
    for trades in Window().recording().batches(TRADE_BATCH):
        closed = agg.add_many(trades)
        closed += agg.tick(max(t.ts_ms for t in trades))
        if closed:
            out.append((closed, agg.applied_offsets(), agg.closed_through()))
            total += len(closed)
        if total >= bars_wanted:
            break
    return out


def _rows(bars: list[Bar]) -> list[tuple[object, ...]]:
    """The tuples ``save_bars`` writes (built the same way, inside the timed section)."""
    return [(b.market, datetime.fromtimestamp(b.ts, UTC), b.open, b.high, b.low, b.close, b.volume, b.trade_count,
             b.late_trades, b.source.value, b.incomplete) for b in bars]


def _save(conn: psycopg.Connection, work: list[Batch]) -> float:
    started = time.perf_counter()
    for bars, offsets, closed in work:
        with conn.transaction(), conn.cursor() as cur:
            bars_repo.save_bars(cur, bars, FEED, offsets, closed)
    return time.perf_counter() - started


def _copy(conn: psycopg.Connection, work: list[Batch]) -> float:
    started = time.perf_counter()
    for bars, _offsets, _closed in work:
        with conn.transaction(), conn.cursor() as cur, cur.copy(f"COPY market_1s_copy ({_COLUMNS}) FROM STDIN") as copy:
            for row in _rows(bars):
                copy.write_row(row)
    return time.perf_counter() - started


def _reset(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("TRUNCATE market_1s, feed_offsets, market_1s_copy")


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed table names
    return int(row[0]) if row else 0


def run(ctx: Context) -> Result:
    work = batches(BARS_QUICK if ctx.quick else BARS_FULL)
    n = sum(len(b) for b, _o, _c in work)
    sizes = sorted(len(b) for b, _o, _c in work)
    db_url = ctx.server.create("writes")
    save_rates: list[float] = []
    copy_rates: list[float] = []
    try:
        migrate(db_url)
        with psycopg.connect(db_url, autocommit=True) as conn:  # transaction() blocks: BEGIN … COMMIT
            with conn.transaction():
                conn.execute("CREATE TABLE market_1s_copy (LIKE market_1s INCLUDING ALL)")
            ctx.say(f"db writes: {n:,} bars in {len(work)} batches, save_bars vs COPY, {ctx.runs} runs")
            for _ in range(ctx.runs):
                _reset(conn)
                save_rates.append(n / _save(conn, work))
                copy_rates.append(n / _copy(conn, work))
                if _count(conn, "market_1s") != n or _count(conn, "market_1s_copy") != n:
                    raise RuntimeError("a write run did not store every bar")
    finally:
        ctx.server.drop(db_url)
    ctx.say(f"  save_bars {sorted(save_rates)[len(save_rates) // 2]:,.0f} bars/s,"
            f" COPY {sorted(copy_rates)[len(copy_rates) // 2]:,.0f} bars/s")
    return Result(
        key="db_write_rate",
        title="Database write rate of 1-second bars",
        method=(f"{n:,} bars from {CANDLES.name} in the BarActor's --speed max batches (median {sizes[len(sizes) // 2]}"
                " bars, one transaction each); persistence.bars.save_bars into market_1s vs COPY FROM STDIN of the"
                " same rows into an identical table"),
        figures=[
            Figure(name="save_bars", unit="bars/s", samples=tuple(save_rates), decimals=0,
                   what="save_bars (executemany upsert + feed_offsets), a transaction per batch"),
            Figure(name="ceiling_copy", unit="bars/s", samples=tuple(copy_rates), decimals=0,
                   what="COPY FROM STDIN of the same rows, a transaction per batch"),
            Figure(name="ratio_to_copy", unit="x ceiling", samples=ratios(save_rates, copy_rates), decimals=3,
                   what="save_bars ÷ COPY (pairwise per run)"),
        ],
        details={"bars": n, "batches": len(work), "batch_bars_min": sizes[0], "batch_bars_max": sizes[-1]},
    )

