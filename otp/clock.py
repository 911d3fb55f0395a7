"""The engine's clock: what a supervisor reads time through (structural: any object with these two methods).

The engine imports nothing of the product, so it declares its own interface; the product's clocks
(``model.clock``: the system clock and a fake one for tests) satisfy it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of monotonic seconds (restart windows, timeouts) and UTC wall time (event stamps)."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock: ``time.monotonic()`` and ``datetime.now(UTC)``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)
