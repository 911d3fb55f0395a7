"""Time, injected: whatever reads the time reads it through a ``Clock`` passed in.

``monotonic()`` drives timeouts, windows and backoffs; ``now()`` stamps events and rows. Tests use
``FakeClock`` so windows are exact and no test waits for real time to pass. (The supervision engine
``otp`` declares the same two-method interface for itself, so it needs nothing from here.)
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of monotonic seconds and UTC wall-clock time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current time as a UTC-aware datetime."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)


_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self, monotonic: float = 0.0, now: datetime = _EPOCH) -> None:
        """Start at ``monotonic`` seconds and wall time ``now`` (must be UTC-aware)."""
        if now.tzinfo is None:
            msg = "FakeClock needs a timezone-aware start time"
            raise ValueError(msg)
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._now = now

    def monotonic(self) -> float:
        """The current fake monotonic reading."""
        with self._lock:
            return self._monotonic

    def now(self) -> datetime:
        """The current fake wall time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            msg = f"a clock cannot go backwards ({seconds} s)"
            raise ValueError(msg)
        with self._lock:
            self._monotonic += seconds
            self._now += timedelta(seconds=seconds)

    def set_monotonic(self, value: float) -> None:
        """Jump the monotonic reading to ``value`` (not earlier than the current one)."""
        with self._lock:
            if value < self._monotonic:
                msg = f"a monotonic clock cannot go backwards ({value} < {self._monotonic})"
                raise ValueError(msg)
            self._now += timedelta(seconds=value - self._monotonic)
            self._monotonic = value
