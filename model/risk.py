"""The risk state an entry is judged against, our live orders as the ledger knows them, and the UTC day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_ZERO = Decimal(0)

def aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment

@dataclass(frozen=True, slots=True, kw_only=True)
class RiskState:
    """What the limits are checked against, as the caller last knew it."""

    open_markets: frozenset[str]  # markets held live or with a non-final buy in flight
    last_sell_at: Mapping[str, datetime]  # per market, aware UTC
    realized_today_krw: Decimal  # realised PnL in the current UTC day (negative = loss)

@dataclass(frozen=True, slots=True, kw_only=True)
class LiveOrder:
    """One of our live orders as the ledger knows it: what it executed, and when it last filled."""

    market: str
    side: str  # "bid" | "ask"
    executed_volume: Decimal
    executed_funds: Decimal  # KRW paid (bid) or received (ask), before the fee
    paid_fee: Decimal  # KRW
    filled_at: datetime | None  # the time of its last fill; None = nothing filled

def utc_day_start(moment: datetime) -> datetime:
    """Midnight UTC of the UTC day ``moment`` falls in (aware; "today" for the daily loss)."""
    utc = aware(moment, "moment").astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def live_realized(orders: Iterable[LiveOrder], *, day_start: datetime) -> Decimal:
    """Realised PnL, in KRW, of the sells that filled in the UTC day starting at ``day_start``.

    ``orders`` in the order they were placed. Average cost per market: a buy adds its funds and
    its fee to the cost of what is held; a sell realises ``funds − fee − volume × average cost``
    and takes its volume (at average cost) out of what is held. A sell of more than the ledger
    held (it cannot happen through this bot) is costed at the average of what was held.
    """
    aware(day_start, "day_start")
    day_end = day_start + timedelta(days=1)
    held: dict[str, tuple[Decimal, Decimal]] = {}  # market -> (volume, cost)
    realised = _ZERO
    for order in orders:
        if order.executed_volume <= 0:
            continue
        volume, cost = held.get(order.market, (_ZERO, _ZERO))
        if order.side == "bid":
            held[order.market] = (volume + order.executed_volume, cost + order.executed_funds + order.paid_fee)
            continue
        average = cost / volume if volume > 0 else _ZERO
        taken = min(order.executed_volume, volume)
        held[order.market] = (volume - taken, cost - average * taken)
        if order.filled_at is not None and day_start <= order.filled_at < day_end:
            realised += order.executed_funds - order.paid_fee - average * order.executed_volume
    return realised
