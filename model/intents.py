"""Intents and their order attempts: what execution is asked to do, and each try at doing it.

An *intent* is a paper trade as execution sees it. An *attempt* is one order (or its record) made
for an intent; :class:`Open` is an attempt whose outcome is not final yet (``unknown`` or
``submitted``). Their statuses and reasons are in :mod:`model.reasons`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """A paper trade as execution sees it."""

    paper_trade_id: int
    market: str
    side: str
    price: Decimal
    volume: Decimal
    amount_krw: Decimal
    created_at: datetime | None = None  # when the paper trade was committed (wall clock)
    bar_ts: datetime | None = None  # the bar it was filled in (market time)

@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One order attempt row to write."""

    paper_trade_id: int
    attempt: int
    identifier: str
    mode: str
    status: str
    market: str
    side: str
    request: dict[str, str]
    blocked_reasons: tuple[str, ...] = ()
    error: str | None = None

@dataclass(frozen=True, slots=True, kw_only=True)
class Open:
    """A non-final attempt (``unknown`` or ``submitted``) as execution resumes it."""

    id: int
    paper_trade_id: int
    attempt: int
    identifier: str
    mode: str
    status: str
    market: str
    side: str
    request: dict[str, str]
    uuid: str | None
    lookups: tuple[datetime, ...]  # when the exchange answered "not found" for the identifier
    created_at: datetime
    review_since: datetime | None = None  # in the needs-review queue since (lookups could not settle it)
