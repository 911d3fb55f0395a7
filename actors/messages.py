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

from model.market import Bar, Trade
from model.trading import SignalRaised

_FROZEN = {"frozen": True, "slots": True, "kw_only": True}



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


