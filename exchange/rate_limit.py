"""Upbit request-rate bookkeeping (sans-I/O: the clock is injected, nothing sleeps here).

Upbit counts requests per *group* and per second, and says how many are left in the
``Remaining-Req: group=default; min=1800; sec=29`` header of every answer (``min`` is deprecated
and ignored). Over the limit it answers 429; continuing after a 429 earns a temporary block, HTTP
418 (docs/upbit-api.md §3.3). So the client:

1. reserves a token from the group's bucket before every request and waits the returned delay,
   so it normally stops *before* the exchange would answer 429;
2. feeds every answer's ``Remaining-Req`` back (:meth:`RateLimiter.observe`): the exchange's count
   wins over ours (other processes may share the key), and ``sec=0`` holds the group for a second;
3. on a 429 holds the group with a jittered exponential backoff that grows with consecutive 429s
   (the docs prescribe no schedule, only that continuing is punished: our choice, 1 s doubling to
   30 s), and on a 418 blocks *every* group (the block is per IP/account) for the announced
   duration, or :data:`DEFAULT_BLOCK_S` when the answer names none (UNCONFIRMED: the 418 body).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "DEFAULT_BLOCK_S",
    "RateLimiter",
    "RemainingReq",
    "documented_limits",
    "parse_remaining_req",
]

DEFAULT_BLOCK_S = 60.0
"""How long to stop after a 418 that does not say how long the block lasts (our choice)."""

_KST = timezone(timedelta(hours=9))
_ORDER_LIMIT_RAISED = datetime(2026, 8, 21, tzinfo=_KST)  # 8/s → 12/s [D-orderrate]; hour UNCONFIRMED


def documented_limits(at: datetime | None = None) -> dict[str, float]:
    """Requests per second per group, as documented (docs/upbit-api.md §3.2)."""
    when = datetime.now(UTC) if at is None else (at if at.tzinfo is not None else at.replace(tzinfo=UTC))
    return {
        "market": 10.0, "candle": 10.0, "trade": 10.0, "ticker": 10.0, "orderbook": 10.0,
        "default": 30.0,
        "order": 12.0 if when >= _ORDER_LIMIT_RAISED else 8.0,
        "order-test": 8.0,
        "order-cancel-all": 0.5,  # DELETE /v1/orders/open: 1 per 2 s
    }


@dataclass(frozen=True, slots=True)
class RemainingReq:
    """One parsed ``Remaining-Req`` header."""

    group: str
    sec: int
    min: int | None = None  # deprecated by Upbit; kept only because it is sent


_FIELD = re.compile(r"\s*([A-Za-z_]+)\s*=\s*([^;]*?)\s*(?:;|$)")


def _count(text: str) -> bool:
    """Plain ASCII digits of a sane length (``"²".isdigit()`` is True, yet ``int("²")`` fails)."""
    return text.isascii() and text.isdigit() and len(text) <= 9


def parse_remaining_req(value: str | None) -> RemainingReq | None:
    """Parse ``group=default; min=1800; sec=29``; ``None`` if absent or unparsable.

    Field order and spacing are not relied on. ``min`` may be missing (it is deprecated).
    """
    if not value:
        return None
    fields = {m.group(1).lower(): m.group(2) for m in _FIELD.finditer(value)}
    group, sec = fields.get("group"), fields.get("sec")
    if not group or sec is None or not _count(sec):
        return None
    minute = fields.get("min")
    return RemainingReq(group=group, sec=int(sec), min=int(minute) if minute and _count(minute) else None)


@dataclass(slots=True)
class _Bucket:
    rate: float          # tokens per second
    capacity: float
    tokens: float
    updated: float
    hold_until: float = 0.0
    strikes: int = 0     # consecutive 429s

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now


class RateLimiter:
    """Per-group token buckets, corrected by the exchange's ``Remaining-Req`` counts.

    Thread-safe. ``clock`` is a monotonic seconds clock (``time.monotonic`` by default; a fake in
    tests); ``rng`` returns a float in [0, 1) for backoff jitter.
    """

    def __init__(self, limits: Mapping[str, float] | None = None, *, clock: Callable[[], float] = time.monotonic,
                 default_limit: float = 10.0, backoff_base_s: float = 1.0, backoff_cap_s: float = 30.0,
                 default_block_s: float = DEFAULT_BLOCK_S, rng: Callable[[], float] = random.random) -> None:
        self._limits = dict(documented_limits() if limits is None else limits)
        self._clock = clock
        self._default_limit = default_limit
        self._base = backoff_base_s
        self._cap = backoff_cap_s
        self._default_block = default_block_s
        self._rng = rng
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._remaining: dict[str, tuple[int, float]] = {}  # group -> (sec, when observed)
        self._blocked_until = 0.0

    def _bucket(self, group: str, now: float) -> _Bucket:
        bucket = self._buckets.get(group)
        if bucket is None:
            rate = self._limits.get(group, self._default_limit)
            capacity = max(1.0, rate)
            bucket = self._buckets[group] = _Bucket(rate=rate, capacity=capacity, tokens=capacity, updated=now)
        bucket.refill(now)
        return bucket

    def limit(self, group: str) -> float:
        """The per-second limit used for ``group``."""
        return self._limits.get(group, self._default_limit)

    def blocked_for(self) -> float:
        """Seconds left of a 418 block (0 when not blocked)."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def reserve(self, group: str) -> float:
        """Take one request slot of ``group``; return how long to wait before sending it.

        The slot is taken even when the answer is a delay (callers queue fairly). A 418 block is
        not included: check :meth:`blocked_for` first and refuse to send while it is positive.
        """
        with self._lock:
            now = self._clock()
            bucket = self._bucket(group, now)
            bucket.tokens -= 1.0
            wait = 0.0 if bucket.tokens >= 0 else -bucket.tokens / bucket.rate
            return max(wait, bucket.hold_until - now, 0.0)

    def observe(self, remaining: RemainingReq | None, *, status: int | None = None) -> None:
        """Take in one answer's ``Remaining-Req`` (and status, to reset the 429 streak on success)."""
        if remaining is None:
            return
        with self._lock:
            now = self._clock()
            self._remaining[remaining.group] = (remaining.sec, now)
            bucket = self._bucket(remaining.group, now)
            bucket.tokens = min(bucket.tokens, float(remaining.sec))
            if remaining.sec <= 0:
                bucket.hold_until = max(bucket.hold_until, now + 1.0)
            if status is not None and status < 400:
                bucket.strikes = 0

    def on_429(self, group: str, retry_after: float | None = None) -> float:
        """Record a 429 for ``group``; hold it and return the hold in seconds."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(group, now)
            bucket.strikes += 1
            backoff = min(self._cap, self._base * 2 ** (bucket.strikes - 1))
            delay = retry_after if retry_after is not None else backoff * (0.5 + 0.5 * self._rng())
            delay = max(delay, 1.0)  # at least the rest of the counting second
            bucket.tokens = min(bucket.tokens, 0.0)
            bucket.hold_until = max(bucket.hold_until, now + delay)
            return delay

    def on_418(self, retry_after: float | None = None) -> float:
        """Record a 418 block: every group stops for the announced (or default) duration."""
        with self._lock:
            duration = retry_after if retry_after is not None and retry_after > 0 else self._default_block
            self._blocked_until = max(self._blocked_until, self._clock() + duration)
            return duration

    def last_remaining(self, group: str) -> int | None:
        """The ``sec`` of the latest ``Remaining-Req`` seen for ``group`` within the last second.

        ``None`` when none was seen yet, or when it is a second old or older: Upbit's budgets are
        per second, so an older answer says nothing about the budget now."""
        with self._lock:
            seen = self._remaining.get(group)
            if seen is None or self._clock() - seen[1] >= 1.0:
                return None
            return seen[0]
