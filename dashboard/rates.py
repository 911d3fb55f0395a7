"""Per-second rates from monotonically increasing counters that reset when their owner restarts.

A node reports each actor's counters about once a second with the time of the report
(``runtime_actors.updated_at``). ``RateTracker`` keeps the recent (report time, value) samples of
a counter and answers with the average rate over a short window. A new owner (a restarted actor:
the ``lifetime`` key changes) or a value that went down starts the series again instead of
producing a negative rate. Pure and thread-safe: no clock of its own, no I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from datetime import datetime

WINDOW_S = 10.0
MIN_SPAN_S = 0.5


class RateTracker:
    """Rates of named counters over the last ``window_s`` seconds of their reports."""

    def __init__(self, *, window_s: float = WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError(f"window must be > 0 s, got {window_s}")
        self._window = window_s
        self._lock = threading.Lock()
        self._series: dict[str, tuple[Hashable, deque[tuple[float, float]]]] = {}

    def observe(self, name: str, *, lifetime: Hashable, at: datetime, value: float) -> float | None:
        """Record ``value`` reported at ``at``; the rate per second, or None until two reports span time."""
        t = at.timestamp()
        with self._lock:
            known = self._series.get(name)
            if known is None or known[0] != lifetime or (known[1] and value < known[1][-1][1]):
                known = (lifetime, deque())
                self._series[name] = known
            samples = known[1]
            if not samples or t > samples[-1][0]:
                samples.append((t, value))
            while len(samples) > 2 and samples[-1][0] - samples[1][0] >= self._window:
                samples.popleft()
            first_t, first_v = samples[0]
            last_t, last_v = samples[-1]
            if last_t - first_t < MIN_SPAN_S:
                return None
            return (last_v - first_v) / (last_t - first_t)
