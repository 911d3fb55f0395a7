"""BarActor: trades in, closed 1-second bars out — persisted first, then passed downstream.

Owns the ``market_1s`` writer connection. Each batch's closed bars and the feed offsets they
cover are committed in one transaction (pipelined: one wait for the server per batch) before the
bars are told to the strategy, so after any crash the feed resumes exactly after the last trade
whose effect is stored (see ``market.bars``). A large live batch goes in two: the bars its first
``FIRST_CHUNK`` trades close are committed and passed on before the rest is aggregated, so a
burst of market data that arrived behind a trade does not delay that trade's bar. On start it
also re-emits the stored bars the paper stage has not processed yet (a crash can fall between
the commit and the strategy's turn), so nothing is skipped; downstream stages ignore bars they
have already seen, so nothing counts twice.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from actors.node_actor import NodeActor
from model.market import Bar
from actors.messages import BarsClosed, ClockTicked, Drained, GapDetected, ReplayFinished, TradesReceived
from actors.peers import Peers
from market.bars import BarAggregator
from persistence import alerts
from persistence import bars as bars_repo
from persistence.bars import pipelined_transaction
from persistence.db import connect
from persistence.errors import translated

log = logging.getLogger(__name__)

CATCH_UP_CHUNK = 2_000
FIRST_CHUNK = 32  # live: the bars a batch's first trades close go out before the rest is aggregated


class BarActor(NodeActor):
    """Aggregates trades into bars, persists them with the feed offsets, tells the strategy."""

    def __init__(self, *, feed: str, db_url: str, peers: Peers, grace_ms: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.feed = feed
        self.db_url = db_url
        self.peers = peers
        self.grace_ms = grace_ms
        self.conn: psycopg.Connection | None = None
        self.agg = BarAggregator(grace_ms=grace_ms)
        self.last_seen: dict[str, int] = {}
        self.gaps: dict[str, list[tuple[int, int]]] = {}
        self.counters.update(bars=0, trades=0, late_trades=0, skipped=0, gaps=0)

    def setup(self) -> None:
        super().setup()
        self.conn = conn = connect(self.db_url, application_name=f"{self.context.supervisor_name}-bar",
                                   durable=False)
        with translated():
            applied, closed = bars_repo.load_offsets(conn, self.feed)
            self.agg.resume(applied, closed)
            self.last_seen = dict(applied)
            self._catch_up_downstream()
            conn.commit()

    def _catch_up_downstream(self) -> None:
        """Re-emit stored bars newer than what the paper stage has processed."""
        assert self.conn is not None
        marks: dict[str, int] = dict(self.conn.execute(
            "SELECT market, extract(epoch FROM last_bar_ts)::bigint FROM paper_positions").fetchall())
        for market in bars_repo.markets(self.conn):
            after = marks.get(market)
            while True:
                chunk = bars_repo.bars_after(self.conn, market, after, CATCH_UP_CHUNK)
                if not chunk:
                    break
                self.peers.tell("strategy", BarsClosed(bars=tuple(chunk)))
                after = chunk[-1].ts
                log.info("re-emitted %d stored bars of %s not yet processed downstream", len(chunk), market)

    def handle(self, message: Any) -> None:
        if isinstance(message, TradesReceived):
            if message.replay_time_ms is None and len(message.trades) > FIRST_CHUNK:
                # A live batch is whatever the WebSocket had buffered: a bar closed by its first trades
                # (a signal's, say) must not wait behind a burst of market data that arrived after it.
                head = TradesReceived(trades=message.trades[:FIRST_CHUNK])
                self._emit(self._add(head))
                message = TradesReceived(trades=message.trades[FIRST_CHUNK:])
            self._emit(self._add(message))
        elif isinstance(message, ClockTicked):
            self._emit(self.agg.tick(message.now_ms))
        elif isinstance(message, GapDetected):
            self._gap(message)
        elif isinstance(message, ReplayFinished):
            self._emit(self.agg.flush(), force=True)
            self.peers.tell("strategy", Drained(last_offset=message.last_offset))
        else:
            super().handle(message)

    def _add(self, message: TradesReceived) -> list[Bar]:
        """Aggregate one batch of trades (skipping those applied before a restart); the bars it closed."""
        seen = self.last_seen.get
        fresh = [t for t in message.trades if t.offset < 0 or t.offset > seen(t.market, -1)]
        self.last_seen.update({t.market: t.offset for t in fresh if t.offset >= 0})  # the last one per market
        self.counters["skipped"] += len(message.trades) - len(fresh)
        self.counters["trades"] += len(fresh)
        closed = self.agg.add_many(fresh)
        if message.replay_time_ms is not None:
            closed += self.agg.tick(message.replay_time_ms)
        return closed

    def _gap(self, gap: GapDetected) -> None:
        """Record an unrecoverable gap; its bars, stored and still to come, are incomplete."""
        assert self.conn is not None
        with translated(), self.conn.transaction(), self.conn.cursor() as cur:
            marked = bars_repo.record_gap(cur, market=gap.market, from_ms=gap.from_ms, until_ms=gap.until_ms,
                                          reason=gap.reason)
            alerts.enqueue(cur, kind="feed_gap", level="warning",
                           text=f"{gap.market}: trades between {_utc(gap.from_ms)} and {_utc(gap.until_ms)} could not "
                                f"be recovered ({gap.reason}); {marked} stored bars marked incomplete")
        self.gaps.setdefault(gap.market, []).append((gap.from_ms // 1000, gap.until_ms // 1000))
        self.counters["gaps"] += 1

    def _mark(self, closed: list[Bar]) -> list[Bar]:
        if not self.gaps:
            return closed
        return [replace(b, incomplete=True) if any(lo <= b.ts <= hi for lo, hi in self.gaps.get(b.market, ()))
                else b for b in closed]

    def _emit(self, closed: list, *, force: bool = False) -> None:
        if not closed and not force:
            return
        closed = self._mark(closed)
        assert self.conn is not None
        with translated(), pipelined_transaction(self.conn) as cur:
            bars_repo.save_bars(cur, closed, self.feed, self.agg.applied_offsets(), self.agg.closed_through())
        late = sum(b.late_trades for b in closed)
        self.counters["bars"] += len(closed) if not late else sum(1 for b in closed if b.late_trades == 0)
        self.counters["late_trades"] += late
        if closed:
            self.peers.tell("strategy", BarsClosed(bars=tuple(closed)))

    def cleanup(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
