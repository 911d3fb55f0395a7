"""Market data: trades, 1-second bars, and the sides and sources that describe them.

Money and quantities are ``Decimal``; times are UTC, as integer epoch milliseconds (trades) or
epoch seconds (bars). Frozen, slotted, keyword-only dataclasses that check their own invariants.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

_FROZEN = {"frozen": True, "slots": True, "kw_only": True}

class Side(str, Enum):
    """Taker side of a trade, as Upbit's ``ask_bid`` field names it."""

    BID = "BID"  # buyer-initiated
    ASK = "ASK"  # seller-initiated

class TradeSource(str, Enum):
    """Where a trade came from; shown wherever the trade or a bar built from it appears."""

    LIVE = "live"  # the live Upbit WebSocket
    CAPTURE = "capture"  # real recorded Upbit WebSocket frames, replayed as-is
    CANDLES = "candles-derived"  # synthesised from real 1-minute candles (see market/candles.py)
    FILE = "file"  # a trade file of the user's own (see market/trades_file.py)

@dataclass(**_FROZEN)
class Trade:
    """One executed trade on a market."""

    market: str  # e.g. "KRW-BTC"
    ts_ms: int  # trade time, epoch milliseconds UTC
    price: Decimal
    volume: Decimal
    side: Side
    seq: int  # Upbit sequential_id: unique per trade *within a market*, NOT a delivery order
    source: TradeSource
    offset: int = -1  # position in a replayed recording (0-based); -1 for live trades

    def __post_init__(self) -> None:
        if self.price <= 0:
            raise ValueError(f"trade price must be positive, got {self.price}")
        if self.volume < 0:
            raise ValueError(f"trade volume must not be negative, got {self.volume}")

@dataclass(**_FROZEN)
class Bar:
    """A closed 1-second OHLCV bar: every trade with ``ts <= trade time < ts + 1 s``.

    Open and close are those of the bar as it first closed; a trade that arrives later only widens
    high/low and adds volume and counts (an amendment: a ``Bar`` with ``late_trades > 0``).
    """

    market: str
    ts: int  # bar open, epoch seconds UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trade_count: int
    source: TradeSource
    late_trades: int = 0  # trades that arrived after the bar had closed and were folded in
    incomplete: bool = False  # not every trade of the bar's span was seen: never produces a signal
    period_s: int = 1  # the bar's span in seconds (rolled-up bars: see trading.timeframe)

    def __post_init__(self) -> None:
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise ValueError(f"inconsistent OHLC for {self.market}@{self.ts}: {self}")
        if self.period_s < 1:
            raise ValueError(f"bar period must be >= 1 s, got {self.period_s}")

# Trusted constructors for the two records built once per trade and once per bar. The generated
# ``__init__`` of a frozen dataclass binds keywords and stores each field through ``object.__setattr__``;
# these store through the slots directly, about 2.5x cheaper. They skip ``__post_init__``: only for values
# that hold its invariants by construction (a validated recording row, a bar aggregated from valid trades).
# The result is the same object ``Trade(...)``/``Bar(...)`` builds from the same values.

_new = object.__new__
_T_MARKET, _T_TS_MS, _T_PRICE, _T_VOLUME, _T_SIDE, _T_SEQ, _T_SOURCE, _T_OFFSET = (
    getattr(Trade, name).__set__ for name in ("market", "ts_ms", "price", "volume", "side", "seq", "source", "offset"))
_B_MARKET, _B_TS, _B_OPEN, _B_HIGH, _B_LOW, _B_CLOSE, _B_VOLUME, _B_COUNT, _B_SOURCE, _B_LATE, _B_INCOMPLETE, \
    _B_PERIOD = (getattr(Bar, name).__set__ for name in ("market", "ts", "open", "high", "low", "close", "volume",
                                                         "trade_count", "source", "late_trades", "incomplete",
                                                         "period_s"))


def valid_trade(market: str, ts_ms: int, price: Decimal, volume: Decimal, side: Side, seq: int, source: TradeSource,
                offset: int) -> Trade:
    """``Trade(...)`` of values known valid (price > 0, volume >= 0), without the checks."""
    t = _new(Trade)
    _T_MARKET(t, market)
    _T_TS_MS(t, ts_ms)
    _T_PRICE(t, price)
    _T_VOLUME(t, volume)
    _T_SIDE(t, side)
    _T_SEQ(t, seq)
    _T_SOURCE(t, source)
    _T_OFFSET(t, offset)
    return t


def valid_bar(market: str, ts: int, open_: Decimal, high: Decimal, low: Decimal, close: Decimal, volume: Decimal,
              trade_count: int, source: TradeSource, late_trades: int = 0) -> Bar:
    """A complete 1-second ``Bar(...)`` of values known consistent (low <= open, close <= high), without the checks."""
    b = _new(Bar)
    _B_MARKET(b, market)
    _B_TS(b, ts)
    _B_OPEN(b, open_)
    _B_HIGH(b, high)
    _B_LOW(b, low)
    _B_CLOSE(b, close)
    _B_VOLUME(b, volume)
    _B_COUNT(b, trade_count)
    _B_SOURCE(b, source)
    _B_LATE(b, late_trades)
    _B_INCOMPLETE(b, False)
    _B_PERIOD(b, 1)
    return b
