"""``persistence.bars``: a batch of bars stored in one statement equals the same bars upserted one by one.

The reference is the plain per-bar upsert (``_UPSERT``, what a live feed's few bars use); the batch
statement passes whole columns as array literals and must store byte-identical rows (same numbers,
same scale), amendments of the same batch folded in, odd market names included.
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import psycopg
import pytest

from model.market import Bar, TradeSource
from persistence import bars as bars_repo
from persistence.bars import pipelined_transaction

D = Decimal
T0 = 1_724_500_000
MARKETS = ("KRW-BTC", "KRW-ETH", 'ODD "quoted", {braced} \\ market')
PRICES = ("1E+3", "1000", "1000.0", "85533000", "0.00000001", "12.3450", "5E-8")
VOLUMES = ("0.1", "1E-8", "0E-8", "3.14159265358979323846264338327950288")


def _batches(seed: int) -> list[list[Bar]]:
    rnd = random.Random(seed)
    batches = []
    for _ in range(12):
        batch = []
        for _ in range(rnd.randint(1, 90)):  # below and above the plain-upsert cut-off
            low, mid, high = sorted(D(rnd.choice(PRICES)) for _ in range(3))
            batch.append(Bar(market=rnd.choice(MARKETS), ts=T0 + rnd.randint(0, 40), open=mid, high=high, low=low,
                             close=rnd.choice((low, mid, high)), volume=D(rnd.choice(VOLUMES)),
                             trade_count=rnd.randint(1, 5), late_trades=rnd.choice((0, 0, 1, 2)),
                             source=rnd.choice(list(TradeSource)), incomplete=rnd.random() < 0.1))
        batches.append(batch)
    return batches


def _stored(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT row(m.*)::text FROM market_1s m ORDER BY market, ts")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_batch_stores_what_bar_by_bar_upserts_store(db_url: str, db: psycopg.Connection, seed: int) -> None:
    batches = _batches(seed)
    assert any(len({(b.market, b.ts) for b in batch}) < len(batch) for batch in batches), "no amendment in a batch"
    with psycopg.connect(db_url) as conn:
        for batch in batches:
            with pipelined_transaction(conn) as cur:
                bars_repo.save_bars(cur, batch, "replay:test", {"KRW-BTC": 7}, {"KRW-BTC": T0})
        batched = _stored(conn)
        conn.execute("TRUNCATE market_1s")
        conn.commit()
        for batch in batches:
            with conn.transaction(), conn.cursor() as cur:
                for b in batch:
                    cur.execute(bars_repo._UPSERT, (b.market, bars_repo._ts(b.ts), b.open, b.high, b.low, b.close,  # noqa: SLF001
                                                    b.volume, b.trade_count, b.late_trades, b.source.value,
                                                    b.incomplete))
        assert _stored(conn) == batched
    assert db.execute("SELECT applied_offset, closed_through FROM feed_offsets").fetchall() == [(7, T0)]


def test_a_pipelined_transaction_commits_once_and_rolls_back_on_errors(db_url: str, db: psycopg.Connection) -> None:
    bar = Bar(market="KRW-BTC", ts=T0, open=D(1), high=D(1), low=D(1), close=D(1), volume=D(1), trade_count=1,
              source=TradeSource.CANDLES)
    with psycopg.connect(db_url) as conn:
        with pipelined_transaction(conn) as cur:
            bars_repo.save_bars(cur, [bar], "replay:test", {"KRW-BTC": 0})
        assert db.execute("SELECT count(*) FROM market_1s").fetchone() == (1,)

        with pytest.raises(psycopg.errors.CheckViolation), pipelined_transaction(conn) as cur:
            bars_repo.save_bars(cur, [replace(bar, ts=T0 + 1)], "replay:test", {"KRW-BTC": 1})
            cur.execute("INSERT INTO market_1s (market, ts, open, high, low, close, volume, trade_count, source)"
                        " VALUES ('KRW-BTC', now(), 1, 1, 2, 1, 1, 1, 'x')")  # low above high: refused
        with pytest.raises(ZeroDivisionError), pipelined_transaction(conn) as cur:
            bars_repo.save_bars(cur, [replace(bar, ts=T0 + 2)], "replay:test", {"KRW-BTC": 2})
            _ = 1 / 0
        with pytest.raises(psycopg.errors.CheckViolation), pipelined_transaction(conn) as cur:
            bars_repo.save_bars(cur, [replace(bar, ts=T0 + 3)], "replay:test", {"KRW-BTC": 3})
            cur.execute("INSERT INTO market_1s (market, ts, open, high, low, close, volume, trade_count, source)"
                        " VALUES ('KRW-BTC', now(), 1, 1, 2, 1, 1, 1, 'x')")
            cur.execute("SELECT 1")
            cur.fetchone()  # waits for the server: the error arrives inside the block, the pipeline is aborted
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert db.execute("SELECT count(*), max(applied_offset) FROM market_1s, feed_offsets").fetchone() == (1, 0)
        with pipelined_transaction(conn) as cur:  # and the connection is usable again
            bars_repo.save_bars(cur, [replace(bar, ts=T0 + 4)], "replay:test", {"KRW-BTC": 4})
        assert db.execute("SELECT count(*), max(applied_offset) FROM market_1s, feed_offsets").fetchone() == (2, 4)

        conn.execute("SELECT 1")  # a transaction is open now
        with pytest.raises(RuntimeError, match="idle connection"), pipelined_transaction(conn):
            pass


def test_a_pipelined_transaction_on_a_broken_connection_closes_it(db_url: str, db: psycopg.Connection) -> None:
    """When the rollback cannot run either, the connection is closed, so its owner replaces it."""
    with psycopg.connect(db_url) as conn:
        pid = conn.info.backend_pid
        with pytest.raises(psycopg.OperationalError), pipelined_transaction(conn) as cur:
            cur.execute("SELECT 1")
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            cur.execute("SELECT pg_sleep(0)")
            cur.fetchone()
        assert conn.closed
