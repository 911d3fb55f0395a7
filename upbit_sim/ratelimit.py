"""Upbit's request budgets: per-group windows, ``Remaining-Req``, 429 and then 418 (sans-I/O).

Groups and limits (``docs/upbit-api.md`` §3.2):

==================  ============================  ==============  =========
group               requests                      limit           counted per
==================  ============================  ==============  =========
``market``          GET /v1/market/all            10 per second   client IP
``candle``          GET /v1/candles/…             10 per second   client IP
``trade``           GET /v1/trades/ticks          10 per second   client IP
``ticker``          GET /v1/ticker…               10 per second   client IP
``orderbook``       GET /v1/orderbook…            10 per second   client IP
``default``         every other private endpoint  30 per second   access key
``order``           POST /v1/orders               8 per second    access key
``order-test``      POST /v1/orders/test          8 per second    access key
``order-cancel-all``  DELETE /v1/orders/open      1 per 2 seconds access key
``websocket-connect`` WebSocket upgrades          5 per second    client IP
==================  ============================  ==============  =========

(The ``order`` group goes to 12/s on 2026-08-21; pass ``limits={"order": 12}`` to model that.)

Windows are fixed: "``sec`` = requests left in the current second". Every answer carries
``Remaining-Req: group=<g>; min=<fixed>; sec=<left>``; ``min`` is deprecated upstream and is a
constant here. A request over the budget gets **429**. A client that keeps going — ``block_after``
429s within a minute — is blocked: every request of that IP/key gets **418** for
``block_seconds``, doubled for each repeat offence. The thresholds of the block are UNCONFIRMED
(the docs say only "temporary block, longer for repeat offences"); they are configurable.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from upbit_sim.errors import ApiError

__all__ = ["GROUPS", "Admission", "GroupLimit", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class GroupLimit:
    """The budget of one rate-limit group."""

    limit: int
    window_s: float = 1.0
    min_header: int = 1800  # the deprecated, fixed ``min=`` value shown in Remaining-Req


GROUPS: Final[Mapping[str, GroupLimit]] = {
    "market": GroupLimit(10, min_header=600),
    "candle": GroupLimit(10, min_header=600),
    "trade": GroupLimit(10, min_header=600),
    "ticker": GroupLimit(10, min_header=600),
    "orderbook": GroupLimit(10, min_header=600),
    "default": GroupLimit(30),
    "order": GroupLimit(8, min_header=480),
    "order-test": GroupLimit(8, min_header=480),
    "order-cancel-all": GroupLimit(1, window_s=2.0, min_header=30),
    "websocket-connect": GroupLimit(5, min_header=300),
}

_STRIKE_PERIOD_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let through: its group and what is left of the current window."""

    group: str
    remaining: int
    min_header: int

    def header(self) -> str:
        """The ``Remaining-Req`` header value."""
        return f"group={self.group}; min={self.min_header}; sec={self.remaining}"


def remaining_header(group: str, remaining: int = 0) -> str:
    """A ``Remaining-Req`` value for an answer that was not admitted (``sec=0`` by default)."""
    spec = GROUPS.get(group, GROUPS["default"])
    return Admission(group, remaining, spec.min_header).header()


class RateLimiter:
    """Count requests per (group, identity) in fixed windows; decide 200, 429 or 418 (thread-safe)."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        *,
        limits: Mapping[str, int] | None = None,
        block_after: int = 5,
        block_seconds: float = 30.0,
        enabled: bool = True,
    ) -> None:
        """Args:
        monotonic: the clock (seconds, never backwards); windows are its whole seconds.
        limits: per-group overrides of the request limit (e.g. ``{"order": 12}``).
        block_after: how many 429s within a minute turn into a block (418).
        block_seconds: the first block's length; each further block doubles it.
        enabled: ``False`` lets every request through (the header is still sent).
        """
        unknown = set(limits or {}) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown rate-limit groups {sorted(unknown)}; known: {sorted(GROUPS)}")
        if block_after < 1 or not (math.isfinite(block_seconds) and block_seconds > 0):
            raise ValueError("block_after must be >= 1 and block_seconds a positive number")
        self._monotonic = monotonic
        self._groups = {
            name: GroupLimit((limits or {}).get(name, spec.limit), spec.window_s, spec.min_header)
            for name, spec in GROUPS.items()
        }
        self._block_after = block_after
        self._block_seconds = block_seconds
        self._enabled = enabled
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}  # (group, who) -> (window, count)
        self._strikes: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._offences: dict[str, int] = {}

    def admit(self, group: str, who: str) -> Admission:
        """Count one request of ``who`` (an IP or access key) in ``group``.

        Raises:
            ApiError: 418 while ``who`` is blocked, 429 when the group's window is used up.

        """
        spec = self._groups[group]
        now = self._monotonic()
        with self._lock:
            blocked_until = self._blocked_until.get(who)
            if blocked_until is not None and now < blocked_until:
                raise ApiError.blocked(round(blocked_until - now, 3))
            window = math.floor(now / spec.window_s)
            current, count = self._windows.get((group, who), (window, 0))
            if current != window:
                count = 0
            if self._enabled and count >= spec.limit:
                self._strike(who, now)
                raise ApiError.too_many_requests(group)
            count += 1
            self._windows[(group, who)] = (window, count)
            return Admission(group, max(spec.limit - count, 0), spec.min_header)

    def peek(self, group: str, who: str) -> Admission:
        """What is left of ``who``'s window in ``group``, without counting a request."""
        spec = self._groups[group]
        now = self._monotonic()
        with self._lock:
            window = math.floor(now / spec.window_s)
            current, count = self._windows.get((group, who), (window, 0))
            used = count if current == window else 0
            return Admission(group, max(spec.limit - used, 0), spec.min_header)

    def blocked(self, who: str) -> bool:
        """Whether ``who`` is blocked right now."""
        with self._lock:
            until = self._blocked_until.get(who)
            return until is not None and self._monotonic() < until

    def _strike(self, who: str, now: float) -> None:
        strikes = self._strikes.setdefault(who, deque())
        strikes.append(now)
        while strikes and strikes[0] <= now - _STRIKE_PERIOD_S:
            strikes.popleft()
        if len(strikes) >= self._block_after:
            offences = self._offences.get(who, 0)
            self._offences[who] = offences + 1
            self._blocked_until[who] = now + self._block_seconds * (2**offences)
            strikes.clear()
