"""What a strategy decides: signal kinds and the exit plan an entry carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

_FROZEN = {"frozen": True, "slots": True, "kw_only": True}

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
