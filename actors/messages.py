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
class GapDetected:
    """Event raised when a live feed could not recover a market's trades over a span of time:
    every bar with ``from_ms`` ≤ ts·1000 < ``until_ms`` is incomplete (see ``market.gaps``)."""

    market: str
    from_ms: int
    until_ms: int
    reason: str


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
    PARTIAL_EXIT = "partial_exit"


@dataclass(**_FROZEN)
class ExitPlan:
    """Exit rules attached to an entry and enforced by the paper book on every 1-second close.

    Levels are in basis points of the position's average entry price (``None`` = rule off):
    stop-loss, take-profit, a trailing stop below the highest price since entry (active once that
    maximum is ``trailing_activation_bps`` above entry), a time limit in seconds since the fill,
    and one partial take-profit that sells ``partial_fraction`` of the position (after which the
    stop moves up to the entry price when ``breakeven_after_partial``).
    """

    take_profit_bps: Decimal | None = None
    stop_loss_bps: Decimal | None = None
    time_limit_s: int | None = None
    trailing_stop_bps: Decimal | None = None
    trailing_activation_bps: Decimal | None = None
    partial_take_profit_bps: Decimal | None = None
    partial_fraction: Decimal = Decimal("0.5")
    breakeven_after_partial: bool = False

    def __post_init__(self) -> None:
        for name in ("take_profit_bps", "stop_loss_bps", "trailing_stop_bps", "trailing_activation_bps",
                     "partial_take_profit_bps"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, Decimal) and value.is_finite() and value > 0):
                raise ValueError(f"{name} must be a positive Decimal or None, got {value!r}")
        if self.stop_loss_bps is not None and self.stop_loss_bps >= 10_000:
            raise ValueError(f"stop_loss_bps must be below 10000 (100 %), got {self.stop_loss_bps}")
        if self.trailing_stop_bps is not None and self.trailing_stop_bps >= 10_000:
            raise ValueError(f"trailing_stop_bps must be below 10000 (100 %), got {self.trailing_stop_bps}")
        if self.time_limit_s is not None and (not isinstance(self.time_limit_s, int) or self.time_limit_s < 1):
            raise ValueError(f"time_limit_s must be a positive integer or None, got {self.time_limit_s!r}")
        if not (isinstance(self.partial_fraction, Decimal) and 0 < self.partial_fraction < 1):
            raise ValueError(f"partial_fraction must be a Decimal strictly between 0 and 1, got {self.partial_fraction!r}")


@dataclass(**_FROZEN)
class SignalRaised:
    """Event raised when a strategy wants to enter, exit or partly exit, with its reason.

    The decision exists from the end of the signalling bar (``bar_ts + timeframe_s``); the paper
    book fills it at the open of the market's first 1-second bar at or after that instant.
    ``trigger_ts`` is the 1-second bar whose arrival closed the signalling bar (it travels in
    the same ``BarsEvaluated``); ``None`` means ``bar_ts`` (a 1-second strategy).
    """

    market: str
    kind: SignalKind
    bar_ts: int  # open of the bar that caused it (epoch seconds, in the strategy's timeframe)
    price: Decimal  # the bar close the decision was made on
    reason: str
    amount_krw: Decimal | None = None  # enter_long: KRW to spend (None: the paper book's order size)
    fraction: Decimal | None = None  # partial_exit: share of the position to sell, 0 < f < 1
    once: bool = True  # partial_exit: ignored when the position already took a partial exit
    exit_plan: ExitPlan | None = None  # enter_long: rules the paper book enforces on the position
    timeframe_s: int = 1
    trigger_ts: int | None = None

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("a signal needs a reason")
        if self.amount_krw is not None and not (self.amount_krw.is_finite() and self.amount_krw > 0):
            raise ValueError(f"amount_krw must be positive, got {self.amount_krw}")
        if self.kind is SignalKind.PARTIAL_EXIT and (self.fraction is None or not 0 < self.fraction < 1):
            raise ValueError(f"a partial exit needs 0 < fraction < 1, got {self.fraction}")

    @property
    def decided_ts(self) -> int:
        """The instant the decision exists: the end of the signalling bar (epoch seconds)."""
        return self.bar_ts + self.timeframe_s

    @property
    def delivered_with(self) -> int:
        """The 1-second bar this signal travels with."""
        return self.bar_ts if self.trigger_ts is None else self.trigger_ts


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
