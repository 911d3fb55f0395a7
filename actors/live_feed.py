"""LiveFeedActor: trades from Upbit's public WebSocket (``FEED_SOURCE=upbit``).

The actor owns one resource, the WebSocket session, run by ``market.upbit_ws.UpbitTradeStream``
in a reader thread of its own (the stream blocks; the mailbox must not). Trades go straight to
the BarActor in the batches the stream delivers. A ticker thread of its own sends the actor a
``Pump`` every ``tick_s``, on which it ticks the wall clock, so a quiet market's bar still closes
on time (after a grace for late delivery). The actor itself never waits: a trade batch is handed
on as soon as it reaches the mailbox (an earlier version slept between ticks in the actor's
thread, which held every batch back by up to 250 ms). A feed
failure the stream does not retry itself (rejected subscription, malformed frame, the exchange
unreachable for ``max_retries`` reconnects) is re-raised in the actor's thread, so the actor
crashes and its supervisor decides — it is never swallowed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.messages import ClockTicked, GapDetected, Pump, TradesReceived
from model.market import Side, Trade, TradeSource
from actors.node_actor import NodeActor
from actors.peers import Peers
from exchange.errors import ExchangeError
from exchange.rest import UpbitClient
from market.gaps import GapTracker
from market.upbit_ws import FeedError, StreamSettings, StreamState, UpbitTradeStream
from persistence.db import connect
from persistence.errors import translated

log = logging.getLogger(__name__)

LIVE_FEED = "live:upbit"
TICK_S = 0.25
CLOSE_GRACE_MS = 1_500  # how long after a second ends a quiet market's bar waits for stragglers
STALE_AFTER_S = 60.0  # no message for this long: reconnect (Upbit is silent while nothing trades)
PAGE = 500  # trades per backfill page (UNCONFIRMED upper bound of /v1/trades/ticks count)
MAX_PAGES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class _StreamFailed:
    """Event raised (to the actor itself) when the reader thread's stream gave up."""

    error: FeedError


@dataclass(frozen=True, slots=True, kw_only=True)
class _TradesArrived:
    """Event raised by the reader thread: a batch from the stream (de-duplicated in the actor)."""

    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Connected:
    """Event raised by the reader thread when a session is subscribed, or a frame was unreadable:
    time to backfill."""


class LiveFeedActor(NodeActor):
    """Runs the Upbit trade stream and ticks the wall clock."""

    def __init__(self, *, url: str, markets: tuple[str, ...], peers: Peers, db_url: str,
                 rest: UpbitClient | None = None, stale_after_s: float | None = STALE_AFTER_S,
                 wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000, tick_s: float = TICK_S,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url
        self.markets = markets
        self.peers = peers
        self.db_url = db_url
        self.rest = rest
        self.stale_after_s = stale_after_s
        self.tracker = GapTracker()
        self.open_gaps: dict[str, tuple[int, str]] = {}
        self.wall_ms = wall_ms
        self.stop_stream = threading.Event()
        self.reader: threading.Thread | None = None
        self.tick_s = tick_s
        self.stop_ticks = threading.Event()
        self.ticker: threading.Thread | None = None
        self.counters.update(trades=0, connected=False, sessions=0, duplicates=0, backfilled=0, gaps=0, bad_frames=0)

    def setup(self) -> None:
        super().setup()
        with connect(self.db_url, application_name=f"{self.context.supervisor_name}-live-feed") as conn, \
                translated():
            stored = conn.execute("SELECT market, extract(epoch FROM max(ts))::bigint FROM market_1s"
                                  " WHERE market = ANY(%s) GROUP BY market", (list(self.markets),)).fetchall()
        for market, last_second in stored:  # after a restart: refetch from the first second not stored
            self.tracker.start_from(market, (int(last_second) + 1) * 1000)
        settings = StreamSettings(stale_after_s=self.stale_after_s, max_retries=None)
        stream = UpbitTradeStream(self.url, self.markets, self._on_trades, self.stop_stream, on_state=self._on_state,
                                  settings=settings, on_bad_frame=self._on_bad_frame)
        self.reader = threading.Thread(target=self._read, args=(stream,), name="upbit-ws", daemon=True)
        self.reader.start()
        self.actor_ref.tell(Pump())
        self.ticker = threading.Thread(target=self._tick, name="upbit-ws-ticker", daemon=True)
        self.ticker.start()
        log.info("live Upbit trades for %s from %s", ",".join(self.markets), self.url)

    def _read(self, stream: UpbitTradeStream) -> None:
        try:
            stream.run()
        except FeedError as exc:
            try:
                self.actor_ref.tell(_StreamFailed(error=exc))
            except Exception:  # noqa: BLE001 - the actor is already gone; nothing left to tell
                log.warning("live feed failed after its actor stopped: %s", exc)

    def _tick(self) -> None:  # ticker thread
        while not self.stop_ticks.wait(self.tick_s):
            try:
                self.actor_ref.tell(Pump())
            except pykka.ActorDeadError:
                return

    def _on_trades(self, trades: list[Trade]) -> None:  # reader thread
        self.actor_ref.tell(_TradesArrived(trades=tuple(trades)))

    def _on_bad_frame(self, problem: str) -> None:  # reader thread
        self.counters["bad_frames"] += 1
        log.warning("dropped a malformed frame from the live feed (%s); backfilling what it may have held", problem)
        self.actor_ref.tell(_Connected())

    def _on_state(self, state: StreamState, detail: str) -> None:  # reader thread
        self.counters["connected"] = state is StreamState.CONNECTED
        if state is StreamState.CONNECTED:
            self.counters["sessions"] += 1
            self.actor_ref.tell(_Connected())

    def _deliver(self, trades: list[Trade]) -> None:
        fresh = self.tracker.accept(trades)
        self.counters["duplicates"] += len(trades) - len(fresh)
        if fresh:
            self.counters["trades"] += len(fresh)
            self.peers.tell("bar", TradesReceived(trades=tuple(fresh)))
        for trade in fresh:  # an open-ended gap ends where the stream picks the market up again
            opened = self.open_gaps.pop(trade.market, None)
            if opened is not None:
                self._report_gap(GapDetected(market=trade.market, from_ms=opened[0], until_ms=trade.ts_ms,
                                             reason=opened[1]))

    def _report_gap(self, gap: GapDetected) -> None:
        self.counters["gaps"] += 1
        log.warning("%s: a gap could not be backfilled: %s", gap.market, gap.reason)
        self.peers.tell("bar", gap)

    def _backfill(self) -> None:
        """Fetch what the stream missed while it was down (see ``market.gaps`` for the policy)."""
        for market in self.markets:
            if self.tracker.last_ts_ms(market) < 0:
                continue  # nothing seen or stored yet: nothing can have been missed
            pages, exhausted, reason = fetch_since(self.rest, market, self.tracker.last_ts_ms(market))
            fresh, gap = self.tracker.missing(market, pages, complete=exhausted, reason=reason)
            if fresh:
                self.counters["backfilled"] += len(fresh)
                self.counters["trades"] += len(fresh)
                self.peers.tell("bar", TradesReceived(trades=tuple(fresh)))
                log.info("backfilled %d %s trades missed while disconnected", len(fresh), market)
            if gap is None:
                continue
            if gap.until_ms <= gap.from_ms:  # nothing came back: the gap lasts until the stream's next trade
                self.open_gaps.setdefault(market, (gap.from_ms, gap.reason))
            else:
                self._report_gap(GapDetected(market=gap.market, from_ms=gap.from_ms, until_ms=gap.until_ms,
                                             reason=gap.reason))

    def handle(self, message: Any) -> None:
        if isinstance(message, Pump):
            self.peers.tell("bar", ClockTicked(now_ms=self.wall_ms()))
        elif isinstance(message, _TradesArrived):
            self._deliver(list(message.trades))
        elif isinstance(message, _Connected):
            self._backfill()
        elif isinstance(message, _StreamFailed):
            raise message.error
        else:
            super().handle(message)

    def cleanup(self) -> None:
        self.stop_stream.set()
        self.stop_ticks.set()
        for thread in (self.ticker, self.reader):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=10)


def fetch_since(rest: UpbitClient | None, market: str, since_ms: int) -> tuple[list[list[Trade]], bool, str]:
    """Pages of recent trades, newest first, until one reaches ``since_ms``; also whether the
    history ran out (nothing older exists) and, if the fetch stopped short, why."""
    if rest is None:
        return [], False, "no REST endpoint configured for backfill"
    pages: list[list[Trade]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        try:
            ticks = rest.trades(market, count=PAGE, cursor=cursor)
        except ExchangeError as exc:
            if exc.status == 404 and not pages:  # the exchange has no trade of it: nothing was missed
                return pages, True, ""
            return pages, False, f"backfill failed: {exc}"
        page = [Trade(market=t.market, ts_ms=t.timestamp, price=t.trade_price, volume=t.trade_volume,
                      side=Side(t.ask_bid), seq=t.sequential_id, source=TradeSource.LIVE) for t in ticks]
        pages.append(page)
        if not page or len(page) < PAGE:
            return pages, True, ""
        if min(t.ts_ms for t in page) <= since_ms:
            return pages, True, ""
        cursor = str(min(t.seq for t in page))
    return pages, False, f"more than {MAX_PAGES * PAGE} trades were missed"
