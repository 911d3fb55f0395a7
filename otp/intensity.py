"""Restart intensity: the supervisor's rate limiter (S19), a pure value-in/value-out class."""

from __future__ import annotations

from collections import deque


class RestartWindow:
    """At most ``intensity`` restarts within any ``period`` seconds.

    One window is shared by all children of a supervisor. ``record(now)`` is called once per
    restart *attempt* (including retries of a failed restart). It adds ``now``, forgets
    entries older than ``now - period`` (an entry exactly at the boundary is kept, as in OTP's
    ``add_restart``) and returns False when more than ``intensity`` entries remain: the
    supervisor must then give up. So ``intensity=0`` gives up on the first restart, and
    ``intensity=2`` on the third restart inside one period.
    """

    __slots__ = ("_intensity", "_period", "_restarts")

    def __init__(self, intensity: int, period: float) -> None:
        """Create an empty window (arguments are validated by ``SupervisorFlags``)."""
        self._intensity = intensity
        self._period = period
        self._restarts: deque[float] = deque()

    @property
    def restarts(self) -> tuple[float, ...]:
        """Timestamps currently in the window, oldest first."""
        return tuple(self._restarts)

    def record(self, now: float) -> bool:
        """Record a restart attempt at monotonic time ``now``; True while within limits."""
        self._restarts.append(now)
        horizon = now - self._period
        while self._restarts and self._restarts[0] < horizon:
            self._restarts.popleft()
        return len(self._restarts) <= self._intensity
