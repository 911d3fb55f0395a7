"""Messages passed between actors: frozen, slotted, keyword-only dataclasses.

Events are named in the past tense (``TradesReceived``, ``BarsClosed``), commands in the
imperative (``Pump``, ``Wake``). Money and quantities are ``Decimal``; timestamps are UTC,
as integer epoch milliseconds (trades) or epoch seconds (1-second bars).

Facts that must survive a crash (paper trades, alerts, control commands) do not travel as
messages between processes: they are rows in PostgreSQL (see ``persistence/``). Messages here
only ever cross threads inside one node process.
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

    def __post_init__(self) -> None:
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise ValueError(f"inconsistent OHLC for {self.market}@{self.ts}: {self}")


# --- market node hot path -------------------------------------------------------------


@dataclass(**_FROZEN)
class TradesReceived:
    """Event raised when the feed delivered a batch of trades (in arrival order)."""

    trades: tuple[Trade, ...]
    replay_time_ms: int | None = None  # replay clock after this batch; None for live


@dataclass(**_FROZEN)
class ClockTicked:
    """Event raised when (replay or wall) time moved on with no trade: closes due bars."""

    now_ms: int


@dataclass(**_FROZEN)
class ReplayFinished:
    """Event raised when the recording is exhausted; downstream flushes and reports drained."""

    last_offset: int


@dataclass(**_FROZEN)
class BarsClosed:
    """Event raised when bars were closed and persisted, in time order per market.

    Amendments (``late_trades > 0``) may refer to seconds before bars already sent.
    """

    bars: tuple[Bar, ...]


class SignalKind(str, Enum):
    """What a strategy wants."""

    ENTER_LONG = "enter_long"
    EXIT = "exit"


@dataclass(**_FROZEN)
class SignalRaised:
    """Event raised when a strategy wants to enter or exit, with its reason."""

    market: str
    kind: SignalKind
    bar_ts: int  # the bar that caused it (epoch seconds)
    price: Decimal  # the bar close the decision was made on
    reason: str


@dataclass(**_FROZEN)
class BarsEvaluated:
    """Event raised by the strategy after a batch of bars: the signals, in bar order.

    Carries the bars too, so the paper book marks positions to market and records how far it has
    processed even when no signal was raised (that mark is what a restart resumes from).
    """

    bars: tuple[Bar, ...]
    signals: tuple[SignalRaised, ...]


@dataclass(**_FROZEN)
class Drained:
    """Event passed down the pipeline after ``ReplayFinished`` once each stage has flushed."""

    last_offset: int


# --- commands -------------------------------------------------------------------------


@dataclass(**_FROZEN)
class Pump:
    """Command to the replay feed: deliver the trades that are due now."""


@dataclass(**_FROZEN)
class Wake:
    """Command to a table-reading actor: look for new rows now (sent on NOTIFY or a timer)."""

    channel: str = ""


@dataclass(**_FROZEN)
class Crash:
    """Command to any supervised actor: raise ``InjectedCrash`` (drills and tests)."""

    note: str = "injected"


class InjectedCrash(RuntimeError):
    """Raised by an actor on purpose when told ``Crash``."""
