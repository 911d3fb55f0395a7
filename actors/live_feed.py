"""LiveFeedActor: trades from Upbit's public WebSocket (``FEED_SOURCE=upbit``).

The actor owns one resource, the WebSocket session, run by ``market.upbit_ws.UpbitTradeStream``
in a reader thread of its own (the stream blocks; the mailbox must not). Trades go straight to
the BarActor in the batches the stream delivers; the actor's own ``Pump`` loop ticks the wall
clock so a quiet market's bar still closes on time (after a grace for late delivery). A feed
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

from actors.messages import ClockTicked, Pump, Trade, TradesReceived
from actors.node_actor import NodeActor
from actors.peers import Peers
from market.upbit_ws import FeedError, StreamState, UpbitTradeStream

log = logging.getLogger(__name__)

LIVE_FEED = "live:upbit"
TICK_S = 0.25
CLOSE_GRACE_MS = 1_500  # how long after a second ends a quiet market's bar waits for stragglers


@dataclass(frozen=True, slots=True, kw_only=True)
class _StreamFailed:
    """Event raised (to the actor itself) when the reader thread's stream gave up."""

    error: FeedError


class LiveFeedActor(NodeActor):
    """Runs the Upbit trade stream and ticks the wall clock."""

    def __init__(self, *, url: str, markets: tuple[str, ...], peers: Peers,
                 wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url
        self.markets = markets
        self.peers = peers
        self.wall_ms = wall_ms
        self.stop_stream = threading.Event()
        self.reader: threading.Thread | None = None
        self.tick_wait = threading.Event()
        self.counters.update(trades=0, connected=False, sessions=0)

    def setup(self) -> None:
        super().setup()
        stream = UpbitTradeStream(self.url, self.markets, self._on_trades, self.stop_stream, on_state=self._on_state)
        self.reader = threading.Thread(target=self._read, args=(stream,), name="upbit-ws", daemon=True)
        self.reader.start()
        self.actor_ref.tell(Pump())
        log.info("live Upbit trades for %s from %s", ",".join(self.markets), self.url)

    def _read(self, stream: UpbitTradeStream) -> None:
        try:
            stream.run()
        except FeedError as exc:
            try:
                self.actor_ref.tell(_StreamFailed(error=exc))
            except Exception:  # noqa: BLE001 - the actor is already gone; nothing left to tell
                log.warning("live feed failed after its actor stopped: %s", exc)

    def _on_trades(self, trades: list[Trade]) -> None:
        self.counters["trades"] += len(trades)
        self.peers.tell("bar", TradesReceived(trades=tuple(trades)))

    def _on_state(self, state: StreamState, detail: str) -> None:
        self.counters["connected"] = state is StreamState.CONNECTED
        if state is StreamState.CONNECTED:
            self.counters["sessions"] += 1

    def handle(self, message: Any) -> None:
        if isinstance(message, Pump):
            self.peers.tell("bar", ClockTicked(now_ms=self.wall_ms()))
            self.tick_wait.wait(TICK_S)
            self.actor_ref.tell(Pump())
        elif isinstance(message, _StreamFailed):
            raise message.error
        else:
            super().handle(message)

    def cleanup(self) -> None:
        self.stop_stream.set()
        self.tick_wait.set()
        if self.reader is not None and self.reader is not threading.current_thread():
            self.reader.join(timeout=10)
