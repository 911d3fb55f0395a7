"""The closed sets of values some settings take (``TRADE_MODE``, ``FEED_SOURCE``, ...), and the live phrase.

Each is a :class:`~enum.StrEnum`, so a member is its own setting text (``TradeMode.SHADOW ==
"shadow"``) and a declaration can name its default by member. Parsing is case-insensitive
(:func:`config.parsing.choice`, :func:`log_level`).
"""

from __future__ import annotations

from enum import StrEnum

from config.parsing import InvalidValueError

LIVE_CONFIRM_PHRASE = "I ACCEPT REAL ORDERS WITH REAL MONEY"
"""What ``LIVE_CONFIRM`` must say, exactly, for live orders to be possible."""


class FeedSource(StrEnum):
    """Where market data comes from."""

    REPLAY = "replay"  # a recording replayed through the loopback server: the sandbox
    UPBIT = "upbit"  # the live public Upbit WebSocket


class ReplaySource(StrEnum):
    """Which recording the replay feed plays."""

    CANDLES = "candles"  # a year of real KRW-BTC 1-minute candles expanded into trades
    CAPTURE = "capture"  # 30 s of real Upbit WebSocket frames
    CAPTURE_LONG = "capture-long"  # 2 min of real Upbit WebSocket frames


class TradeMode(StrEnum):
    """How signals turn into orders (the requested mode; guards may downgrade it)."""

    SHADOW = "shadow"  # record the order that would be sent; nothing is sent to the exchange
    TEST = "test"  # Upbit's orders/test: validated by the exchange, nothing is created
    LIVE = "live"  # real orders, only when every live guard agrees


class PaperProfile(StrEnum):
    """The paper policy profile: ``test`` (tiny, busy settings for smoke tests) never goes live."""

    DEFAULT = "default"
    TEST = "test"


class LogLevel(StrEnum):
    """Allowed ``LOG_LEVEL`` values (names understood by :mod:`logging`)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def log_level(raw: str) -> LogLevel:
    """A log level name, case-insensitive."""
    try:
        return LogLevel(raw.upper())
    except ValueError as exc:
        msg = f"not a log level; allowed: {' | '.join(LogLevel)}"
        raise InvalidValueError(msg) from exc
