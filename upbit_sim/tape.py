"""The market state the quotation endpoints and the WebSocket serve, built from the replayed trades.

For every market, :class:`Tape` keeps what Upbit derives from its trade stream: the recent
trades (``/v1/trades/ticks``), the ticker (day open/high/low, previous close, change, 24 h and day
accumulations, 52-week extremes), 1-minute candles (``/v1/candles/minutes/{unit}`` aggregates
them) and a **synthetic** order book (the recordings hold no books the simulator can replay):
30 levels around the last trade, one tick apart, best ask = the first tick above the last
price, sizes a fixed ladder scaled by the recent trade volume.

Days are UTC days (Upbit's daily candle and "previous close" start at 00:00 UTC = 09:00 KST).
The previous close is the last price of the previous UTC day seen, or the day's opening price
when the replay started inside the day. Thread-safe.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from model.market import Trade
from exchange import rules

__all__ = ["BOOK_LEVELS", "Book", "Candle", "Print", "Tape", "Ticker"]

BOOK_LEVELS: Final = 30
_TRADES_KEPT: Final = 1000
_CANDLES_KEPT: Final = 48_000  # 1-minute candles: 200 candles of the 240-minute unit
_DAY_MS: Final = 86_400_000
_WEEKS_52_MS: Final = 364 * _DAY_MS
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Print:
    """A replayed trade as Upbit reports it, with the fields derived from the market state."""

    trade: Trade
    prev_closing_price: Decimal
    change: str  # RISE | EVEN | FALL against the previous close
    change_price: Decimal  # absolute
    best_ask_price: Decimal
    best_ask_size: Decimal
    best_bid_price: Decimal
    best_bid_size: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticker:
    """The ticker of one market after its latest trade."""

    market: str
    trade: Trade
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    prev_closing_price: Decimal
    acc_trade_price: Decimal
    acc_trade_volume: Decimal
    acc_trade_price_24h: Decimal
    acc_trade_volume_24h: Decimal
    acc_ask_volume: Decimal
    acc_bid_volume: Decimal
    highest_52_week_price: Decimal
    highest_52_week_ts_ms: int
    lowest_52_week_price: Decimal
    lowest_52_week_ts_ms: int

    @property
    def change_price(self) -> Decimal:
        return abs(self.trade.price - self.prev_closing_price)

    @property
    def signed_change_price(self) -> Decimal:
        return self.trade.price - self.prev_closing_price

    @property
    def signed_change_rate(self) -> Decimal:
        return self.signed_change_price / self.prev_closing_price

    @property
    def change(self) -> str:
        return _change(self.signed_change_price)


@dataclass(slots=True, kw_only=True)
class Candle:
    """A 1-minute (or aggregated) candle; ``start_ms`` is its opening minute (UTC)."""

    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    last_ts_ms: int
    acc_price: Decimal
    acc_volume: Decimal


@dataclass(frozen=True, slots=True)
class Book:
    """A synthetic order-book snapshot: ``(ask_price, ask_size, bid_price, bid_size)`` per level."""

    market: str
    ts_ms: int
    units: tuple[tuple[Decimal, Decimal, Decimal, Decimal], ...]

    @property
    def total_ask_size(self) -> Decimal:
        return sum((u[1] for u in self.units), _ZERO)

    @property
    def total_bid_size(self) -> Decimal:
        return sum((u[3] for u in self.units), _ZERO)


@dataclass(slots=True)
class _MarketState:
    ticker: Ticker | None = None
    day: int = -1
    trades: deque[Trade] = field(default_factory=lambda: deque(maxlen=_TRADES_KEPT))
    window_24h: deque[tuple[int, Decimal, Decimal]] = field(default_factory=deque)
    candles: deque[Candle] = field(default_factory=lambda: deque(maxlen=_CANDLES_KEPT))
    acc_24h_price: Decimal = _ZERO
    acc_24h_volume: Decimal = _ZERO


class Tape:
    """Per-market state fed by :meth:`record` (the replay) and read by the servers."""

    def __init__(self, *, rules_at: datetime | None = None) -> None:
        """``rules_at``: the instant whose tick table shapes the synthetic book (None: now)."""
        self._rules_at = rules_at
        self._lock = threading.Lock()
        self._markets: dict[str, _MarketState] = {}

    def record(self, trade: Trade) -> Print:
        """Add one trade to its market's state and return it as printed."""
        with self._lock:
            state = self._markets.setdefault(trade.market, _MarketState())
            prev_close = self._roll_ticker(state, trade)
            state.trades.appendleft(trade)
            self._add_to_candle(state, trade)
            best = self._build_book(state, trade, levels=1).units[0]
            signed = trade.price - prev_close
            return Print(
                trade=trade, prev_closing_price=prev_close, change=_change(signed), change_price=abs(signed),
                best_ask_price=best[0], best_ask_size=best[1], best_bid_price=best[2], best_bid_size=best[3],
            )

    def markets(self) -> list[str]:
        """Markets that have printed at least one trade."""
        with self._lock:
            return [m for m, s in self._markets.items() if s.ticker is not None]

    def last_price(self, market: str) -> Decimal | None:
        """The latest trade price of ``market``, or ``None`` before its first trade."""
        with self._lock:
            state = self._markets.get(market)
            return state.ticker.trade.price if state is not None and state.ticker is not None else None

    def ticker(self, market: str) -> Ticker | None:
        with self._lock:
            state = self._markets.get(market)
            return state.ticker if state is not None else None

    def trades(self, market: str, *, count: int, cursor: int | None = None) -> list[Trade]:
        """Newest-first recent trades; ``cursor``: only trades with ``seq`` below it."""
        with self._lock:
            state = self._markets.get(market)
            found = list(state.trades) if state is not None else []
        if cursor is not None:
            found = [t for t in found if t.seq < cursor]
        return found[:count]

    def candles(self, market: str, *, unit: int, count: int, to_ms: int | None) -> list[Candle]:
        """Newest-first ``unit``-minute candles opening before ``to_ms`` (exclusive)."""
        with self._lock:
            state = self._markets.get(market)
            minutes = list(state.candles) if state is not None else []
        unit_ms = unit * 60_000
        merged: dict[int, Candle] = {}
        for minute in minutes:  # oldest first
            start = minute.start_ms - minute.start_ms % unit_ms
            if to_ms is not None and start >= to_ms:
                continue
            candle = merged.get(start)
            if candle is None:
                merged[start] = replace(minute, start_ms=start)
            else:
                candle.high = max(candle.high, minute.high)
                candle.low = min(candle.low, minute.low)
                candle.close = minute.close
                candle.last_ts_ms = minute.last_ts_ms
                candle.acc_price += minute.acc_price
                candle.acc_volume += minute.acc_volume
        return sorted(merged.values(), key=lambda c: c.start_ms, reverse=True)[:count]

    def book(self, market: str, levels: int = BOOK_LEVELS) -> Book | None:
        """The synthetic book around the latest trade (``None`` before the first trade)."""
        with self._lock:
            state = self._markets.get(market)
            if state is None or not state.trades:
                return None
            return self._build_book(state, state.trades[0], levels=levels)

    # --- state updates (under the lock) -------------------------------------------------

    def _roll_ticker(self, state: _MarketState, trade: Trade) -> Decimal:
        day = trade.ts_ms // _DAY_MS
        old = state.ticker
        funds = trade.price * trade.volume
        state.window_24h.append((trade.ts_ms, funds, trade.volume))
        state.acc_24h_price += funds
        state.acc_24h_volume += trade.volume
        while state.window_24h and state.window_24h[0][0] <= trade.ts_ms - _DAY_MS:
            _ts, old_funds, old_volume = state.window_24h.popleft()
            state.acc_24h_price -= old_funds
            state.acc_24h_volume -= old_volume
        acc_24h_price, acc_24h_volume = state.acc_24h_price, state.acc_24h_volume
        is_bid = trade.side.value == "BID"
        if old is None or day > state.day:
            prev_close = old.trade.price if old is not None else trade.price
            high52, high52_ts, low52, low52_ts = self._extremes(old, trade)
            state.ticker = Ticker(
                market=trade.market, trade=trade, opening_price=trade.price, high_price=trade.price,
                low_price=trade.price, prev_closing_price=prev_close, acc_trade_price=funds,
                acc_trade_volume=trade.volume, acc_trade_price_24h=acc_24h_price,
                acc_trade_volume_24h=acc_24h_volume,
                acc_ask_volume=_ZERO if is_bid else trade.volume, acc_bid_volume=trade.volume if is_bid else _ZERO,
                highest_52_week_price=high52, highest_52_week_ts_ms=high52_ts,
                lowest_52_week_price=low52, lowest_52_week_ts_ms=low52_ts,
            )
            state.day = max(day, state.day)
            return prev_close
        high52, high52_ts, low52, low52_ts = self._extremes(old, trade)
        state.ticker = replace(
            old, trade=trade, high_price=max(old.high_price, trade.price), low_price=min(old.low_price, trade.price),
            acc_trade_price=old.acc_trade_price + funds, acc_trade_volume=old.acc_trade_volume + trade.volume,
            acc_trade_price_24h=acc_24h_price, acc_trade_volume_24h=acc_24h_volume,
            acc_ask_volume=old.acc_ask_volume + (_ZERO if is_bid else trade.volume),
            acc_bid_volume=old.acc_bid_volume + (trade.volume if is_bid else _ZERO),
            highest_52_week_price=high52, highest_52_week_ts_ms=high52_ts,
            lowest_52_week_price=low52, lowest_52_week_ts_ms=low52_ts,
        )
        return old.prev_closing_price

    @staticmethod
    def _extremes(old: Ticker | None, trade: Trade) -> tuple[Decimal, int, Decimal, int]:
        if old is None or trade.ts_ms - old.highest_52_week_ts_ms > _WEEKS_52_MS or trade.price >= old.highest_52_week_price:
            high, high_ts = trade.price, trade.ts_ms
        else:
            high, high_ts = old.highest_52_week_price, old.highest_52_week_ts_ms
        if old is None or trade.ts_ms - old.lowest_52_week_ts_ms > _WEEKS_52_MS or trade.price <= old.lowest_52_week_price:
            low, low_ts = trade.price, trade.ts_ms
        else:
            low, low_ts = old.lowest_52_week_price, old.lowest_52_week_ts_ms
        return high, high_ts, low, low_ts

    @staticmethod
    def _add_to_candle(state: _MarketState, trade: Trade) -> None:
        start = trade.ts_ms - trade.ts_ms % 60_000
        funds = trade.price * trade.volume
        candle = next((c for c in reversed(state.candles) if c.start_ms <= start), None)
        if candle is not None and candle.start_ms != start:
            candle = None
        if candle is None:
            candle = Candle(start_ms=start, open=trade.price, high=trade.price, low=trade.price, close=trade.price,
                            last_ts_ms=trade.ts_ms, acc_price=funds, acc_volume=trade.volume)
            state.candles.append(candle)
            if len(state.candles) > 1 and state.candles[-2].start_ms > start:  # a late trade's minute
                state.candles = deque(sorted(state.candles, key=lambda c: c.start_ms), maxlen=_CANDLES_KEPT)
            return
        candle.high = max(candle.high, trade.price)
        candle.low = min(candle.low, trade.price)
        if trade.ts_ms >= candle.last_ts_ms:
            candle.close = trade.price
            candle.last_ts_ms = trade.ts_ms
        candle.acc_price += funds
        candle.acc_volume += trade.volume

    def _build_book(self, state: _MarketState, trade: Trade, *, levels: int) -> Book:
        market, at = trade.market, self._rules_at

        def tick(price: Decimal) -> Decimal:
            return rules.tick_size(price, market=market, at=at)

        recent = sorted(t.volume for t in itertools.islice(state.trades, 50))
        base = max(recent[len(recent) // 2], Decimal("0.0001")) if recent else Decimal(1)
        bid = trade.price - trade.price % tick(trade.price)  # best bid: the last price on the grid
        ask = bid + tick(bid)
        units = []
        for level in range(levels):
            size = (base * (1 + Decimal(level) / 10)).quantize(Decimal("0.00000001"))
            units.append((ask, size, bid, size if bid > 0 else _ZERO))
            ask += tick(ask)
            if bid > 0:  # the next valid price below: the lower band's (finer) tick at a boundary
                lower = bid - tick(bid)
                bid = bid - tick(lower) if lower > 0 else _ZERO
        return Book(market=market, ts_ms=trade.ts_ms, units=tuple(units))


def _change(signed: Decimal) -> str:
    return "RISE" if signed > 0 else "FALL" if signed < 0 else "EVEN"
