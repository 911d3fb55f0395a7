"""Bar timeframes, and rolling 1-second bars up into them. Pure: no clock, no I/O.

A timeframe is a whole number of seconds that divides a UTC day (1 s, 5 s, 1 m, 5 m, 15 m, 1 h,
4 h, 1 d, …), written ``"1s"``, ``"5m"``, ``"1h"``, ``"1d"`` or as an integer of seconds. Its bars
are aligned to the epoch: the bar of ``ts`` starts at ``ts - ts % period``.

:class:`BarRollup` turns one market's closed 1-second bars (in time order) into bars of a longer
timeframe. It never looks at trades: open = first 1-second open, close = last close, high/low =
max/min, volume and counts summed. A timeframe bar **closes**

- with the 1-second bar of its last second (nothing more can come for it), or otherwise
- when the first 1-second bar of a later window arrives (that bar is the *trigger*; it belongs to
  the next window).

Either way the bar is complete at ``ts + period``: a decision made on it exists from that
instant, and the next trade after it is the open of the first 1-second bar at or after it.

A rolled bar is **incomplete** (``Bar.incomplete``) when any of its 1-second bars was, or when
the rollup did not observe its window from the start: the first window a fresh rollup sees is
incomplete unless its first bar is the window's first second, or unless the caller says from
when the stream is known to be complete (``observed_from``, used by warm-ups that replay whole
windows from storage). Seconds with no bar are seconds with no trade, not gaps.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from model.market import Bar

DAY_S = 86_400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY_S}
_SPEC = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_timeframe(value: str | int) -> int:
    """Seconds of a timeframe given as ``"5m"``-style text or an integer of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"timeframe must be like '1s', '5m', '1h' or seconds, got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _SPEC.match(value.lower())):
        seconds = int(match[1]) * _UNITS[match[2] or "s"]
    else:
        raise ValueError(f"timeframe must be like '1s', '5m', '1h' or seconds, got {value!r}")
    if seconds < 1 or DAY_S % seconds:
        raise ValueError(f"timeframe must be a positive number of seconds dividing a day, got {value!r}")
    return seconds


def format_timeframe(seconds: int) -> str:
    """``60`` → ``"1m"``; the largest unit that divides exactly."""
    for unit, size in (("d", DAY_S), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def window_start(ts: int, period_s: int) -> int:
    """Open of the ``period_s`` window containing epoch second ``ts``."""
    return ts - ts % period_s


class Rolled(NamedTuple):
    """A timeframe bar that just closed, and the 1-second bar that closed it (one per 1-second bar
    on a 1-second timeframe: a tuple, the cheapest immutable record)."""

    bar: Bar
    trigger_ts: int  # the 1-second bar whose arrival closed it


class BarRollup:
    """One market's 1-second bars in, its ``period_s`` bars out (see the module docstring)."""

    __slots__ = ("_bars", "_observed_from", "_start", "market", "period_s")

    def __init__(self, *, market: str, period_s: int, observed_from: int | None = None) -> None:
        if period_s < 1 or DAY_S % period_s:
            raise ValueError(f"period must divide a day, got {period_s}")
        self.market = market
        self.period_s = period_s
        self._observed_from = observed_from  # the stream is complete from this second on
        self._start: int | None = None  # open of the window being built
        self._bars: list[Bar] = []

    def add(self, bar: Bar) -> list[Rolled]:
        """Add the market's next closed 1-second bar; return the bars it closed (0, 1 or 2)."""
        if bar.market != self.market:
            raise ValueError(f"rollup for {self.market} got a bar of {bar.market}")
        if self._bars and bar.ts <= self._bars[-1].ts:
            raise ValueError(f"bars must arrive in time order: {bar.ts} after {self._bars[-1].ts}")
        if self.period_s == 1 and bar.period_s == 1:  # a 1-second bar is its own 1-second window
            self._observed_from = bar.ts + 1
            return [Rolled(bar, bar.ts)]
        closed: list[Rolled] = []
        start = window_start(bar.ts, self.period_s)
        if self._start is not None and start != self._start:
            closed.append(Rolled(bar=self._close(), trigger_ts=bar.ts))
        if self._start is None:
            self._start = start
        self._bars.append(bar)
        if bar.ts == start + self.period_s - 1:
            closed.append(Rolled(bar=self._close(), trigger_ts=bar.ts))
        return closed

    @property
    def open_window(self) -> int | None:
        """Open of the window being built (``None`` between windows)."""
        return self._start

    def _close(self) -> Bar:
        bars, start = self._bars, self._start
        assert start is not None and bars
        observed = self._observed_from is not None and self._observed_from <= start
        incomplete = any(b.incomplete for b in bars) or not (observed or bars[0].ts == start)
        rolled = Bar(
            market=self.market, ts=start, open=bars[0].open,
            high=max(b.high for b in bars), low=min(b.low for b in bars), close=bars[-1].close,
            volume=sum((b.volume for b in bars), Decimal(0)), trade_count=sum(b.trade_count for b in bars),
            source=bars[0].source, late_trades=sum(b.late_trades for b in bars), incomplete=incomplete,
            period_s=self.period_s,
        )
        self._observed_from = start + self.period_s  # seen without interruption from here on
        self._start, self._bars = None, []
        return rolled
