"""``SimServer``: one simulated Upbit — REST and WebSocket on loopback, fed by a replayed recording.

Wiring: the :class:`~upbit_sim.replay.Replayer` (or :meth:`SimServer.feed`) prints each trade
into the :class:`~upbit_sim.tape.Tape` (quotation state), then the
:class:`~upbit_sim.venue.Venue` (fills), then the :class:`~upbit_sim.ws.WsServer` (subscribers),
in that order and one trade at a time. The REST pipeline (:class:`~upbit_sim.rest.RestApp`)
reads the tape and drives the venue. :attr:`SimServer.faults` reaches both servers.
"""

from __future__ import annotations

import itertools
import threading
import time
from decimal import Decimal
from types import TracebackType

from model.market import Side, Trade, TradeSource
from market.recording import CANDLES_KRW_BTC_1M, Recording, RecordingKind
from exchange.rest import SIMULATOR_NAME
from upbit_sim.admin import AdminApi
from upbit_sim.auth import Authenticator
from upbit_sim.config import SimConfig
from upbit_sim.exchange_api import ExchangeApi
from upbit_sim.faults import Faults
from upbit_sim.ledger import Holding, Ledger
from upbit_sim.markets import MarketList
from upbit_sim.quotation import Quotation
from upbit_sim.ratelimit import RateLimiter
from upbit_sim.replay import Replayer
from upbit_sim.rest import RequestObserver, RestApp, RestServer
from upbit_sim.tape import Tape
from upbit_sim.venue import Venue
from upbit_sim.ws import WsServer

__all__ = ["SimServer"]

_SEED_TRADES = 4  # one real KRW-BTC candle, expanded (market/candles.py)


class SimServer:
    """A simulated Upbit on loopback (see the package docstring for the contract)."""

    def __init__(self, config: SimConfig | None = None, *, on_request: RequestObserver | None = None) -> None:
        """Build the simulator; nothing listens until :meth:`start`.

        ``on_request``: told ``(arrived_at, request)`` for every REST request as it reaches the
        pipeline, ``arrived_at`` being ``time.time()`` (wall time, whatever ``config.clock`` says,
        so it compares with other processes' clocks); see :mod:`upbit_sim.rest`.
        """
        self.config = config or SimConfig()
        self._on_request = on_request
        clock = self.config.clock
        self.faults = Faults(time.monotonic)  # ws_stall is real time, like the WebSocket's idle timeout
        self.markets = MarketList.default([*self.config.markets, *_recorded_markets(self.config.recording)])
        self.tape = Tape(rules_at=self.config.rules_at)
        self.venue = Venue(
            markets=self.markets, tape=self.tape, ledger=Ledger(self.config.balances), clock=clock,
            faults=self.faults, rules_at=self.config.rules_at,
        )
        self._auth = Authenticator(
            self.config.keys, expired=self.config.expired_keys, now=lambda: clock.now().timestamp()
        )
        self._limiter = RateLimiter(
            clock.monotonic, limits=self.config.limits, block_after=self.config.block_after,
            block_seconds=self.config.block_seconds, enabled=self.config.rate_limits,
        )
        self._replayer = Replayer(
            self.config.recording, self.feed, speed=self.config.speed, max_gap_s=self.config.max_gap_s,
            autoplay=self.config.autoplay,
        )
        self._feed_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._rest: RestServer | None = None
        self._ws: WsServer | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SimServer:
        """Bind both ports, start serving and (autoplay) replaying; return ``self``."""
        if self._rest is not None:
            raise RuntimeError("SimServer already started")
        app = RestApp(
            quotation=Quotation(markets=self.markets, tape=self.tape, rules_at=self.config.rules_at),
            exchange=ExchangeApi(self.venue), auth=self._auth, limiter=self._limiter, faults=self.faults,
            admin=AdminApi(lambda: self), on_request=self._on_request,
        )
        self._rest = RestServer(app, host=self.config.host, port=self.config.port)
        try:
            self._ws = WsServer(
                tape=self.tape, venue=self.venue, auth=self._auth, limiter=self._limiter, faults=self.faults,
                host=self.config.host, port=self.config.ws_port, idle_timeout_s=self.config.ws_idle_timeout_s,
                status_interval_s=self.config.ws_status_interval_s,
            )
        except OSError:
            self._rest.stop()
            raise
        self._rest.start()
        self._ws.start()
        if self.config.recording is None and self.config.seed:
            for trade in itertools.islice(Recording.candles(CANDLES_KRW_BTC_1M).trades(), _SEED_TRADES):
                self.feed(trade)
        self._replayer.start()
        return self

    def stop(self) -> None:
        """Stop the replay and both servers; every thread is joined. Safe to call twice."""
        self._replayer.stop()
        if self._ws is not None:
            self._ws.stop()
        if self._rest is not None:
            self._rest.stop()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:<port>`` (paths ``/v1/…``)."""
        if self._rest is None:
            raise RuntimeError("SimServer not started")
        return self._rest.url

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>/websocket/v1`` (``…/private`` for myOrder/myAsset)."""
        if self._ws is None:
            raise RuntimeError("SimServer not started")
        return self._ws.url

    # --- driving the market -------------------------------------------------------------

    def feed(self, trade: Trade) -> None:
        """Print one trade now: quotation state, fills, WebSocket subscribers, in that order.

        A trade with ``ts_ms == 0`` is stamped with the simulator clock; one with ``seq < 0``
        gets the next sequential id.
        """
        with self._feed_lock:
            if trade.ts_ms <= 0 or trade.seq < 0:
                trade = Trade(
                    market=trade.market, price=trade.price, volume=trade.volume, side=trade.side,
                    ts_ms=trade.ts_ms if trade.ts_ms > 0 else int(self.config.clock.now().timestamp() * 1000),
                    seq=trade.seq if trade.seq >= 0 else next(self._seq), source=trade.source, offset=trade.offset,
                )
            self.markets.add(trade.market)
            printed = self.tape.record(trade)
            self.venue.on_trade(trade)
            if self._ws is not None:
                self._ws.publish(printed)

    def print_trade(self, market: str, price: Decimal | str, volume: Decimal | str = "1", side: str = "BID") -> None:
        """Convenience for tests: :meth:`feed` a trade given as text or decimals."""
        self.feed(Trade(market=market, ts_ms=0, price=Decimal(price), volume=Decimal(volume), side=Side(side),
                        seq=-1, source=TradeSource.LIVE))

    def advance(self, n: int = 1) -> int:
        """Replay the next ``n`` recorded trades now (``autoplay=False``); return how many."""
        return self._replayer.advance(n)

    @property
    def replayed(self) -> int:
        """How many recorded trades have been replayed."""
        return self._replayer.replayed

    @property
    def replay_finished(self) -> threading.Event:
        """Set once the recording is exhausted (at once when there is none)."""
        return self._replayer.finished

    # --- accounts -----------------------------------------------------------------------

    def deposit(self, access_key: str, currency: str, amount: Decimal) -> None:
        """Top up a user's free balance."""
        if access_key not in self.config.keys:
            raise ValueError(f"unknown access key {access_key!r}")
        self.venue.deposit(access_key, currency, Decimal(amount))

    def withdraw(self, access_key: str, currency: str, amount: Decimal) -> Decimal:
        """Take up to ``amount`` out of a user's free balance, as a withdrawal would; what was taken."""
        if access_key not in self.config.keys:
            raise ValueError(f"unknown access key {access_key!r}")
        return self.venue.withdraw(access_key, currency, Decimal(amount))

    def holding(self, access_key: str, currency: str) -> Holding:
        """A copy of a user's holding of ``currency`` (balance, locked, avg_buy_price)."""
        return self.venue.holding(access_key, currency)

    def status(self) -> dict[str, object]:
        """What ``GET /_sim/status`` answers."""
        return {
            "status": "UP",
            "simulator": SIMULATOR_NAME,
            "rest_url": self.rest_url if self._rest is not None else None,
            "ws_url": self.ws_url if self._ws is not None else None,
            "replayed": self.replayed,
            "replay_finished": self.replay_finished.is_set(),
            "ws_connections": self._ws.connections() if self._ws is not None else 0,
            "faults": [{"fault": name, **params} for name, params in self.faults.injected],
        }


def _recorded_markets(recording: Recording | None) -> list[str]:
    """The markets a recording trades (a capture is scanned once: they are small)."""
    if recording is None:
        return []
    if recording.kind is RecordingKind.CANDLES:
        return [recording.candle_market]
    if recording.markets is not None:
        return sorted(recording.markets)
    return sorted({trade.market for trade in recording.trades()})
