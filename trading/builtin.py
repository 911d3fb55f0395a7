"""Built-in strategies.

``SmaMomentum`` — the walking skeleton's documented built-in. Over the last ``window`` bar
closes it keeps a simple moving average (incrementally, O(1) per bar):
- enter long when the close crosses above ``SMA × (1 + entry_bps / 10 000)`` (it was at or below
  the band on the previous bar);
- exit when the close falls below ``SMA × (1 − exit_bps / 10 000)``.
It signals nothing until ``window`` bars have been seen. Parameters: ``window`` (bars, ≥ 2,
default 20), ``entry_bps`` (≥ 0, default 5), ``exit_bps`` (≥ 0, default 5). On the sandbox's
candle-derived data (four 1-second bars a minute) the default window spans about five minutes.
Whether a signal acts is the paper book's business (it ignores an entry while long).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from actors.messages import Bar, SignalKind, SignalRaised

_BPS = Decimal(10_000)


class SmaMomentum:
    """Momentum entry on an SMA band cross, exit below a lower band."""

    def __init__(self, *, market: str, window: int = 20, entry_bps: float | int | str = 5,
                 exit_bps: float | int | str = 5) -> None:
        if not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        self.market = market
        self.window = window
        self.entry = Decimal(1) + Decimal(str(entry_bps)) / _BPS
        self.exit = Decimal(1) - Decimal(str(exit_bps)) / _BPS
        if self.entry < 1 or self.exit > 1:
            raise ValueError("entry_bps and exit_bps must be >= 0")
        self._closes: deque[Decimal] = deque()
        self._sum = Decimal(0)
        self._was_above = True  # no entry on the very first full window

    @property
    def warmup_bars(self) -> int:
        return self.window

    def on_bar(self, bar: Bar) -> SignalRaised | None:
        self._closes.append(bar.close)
        self._sum += bar.close
        if len(self._closes) > self.window:
            self._sum -= self._closes.popleft()
        if len(self._closes) < self.window:
            return None
        sma = self._sum / self.window
        above = bar.close > sma * self.entry
        crossed = above and not self._was_above
        self._was_above = above
        if crossed:
            return SignalRaised(market=bar.market, kind=SignalKind.ENTER_LONG, bar_ts=bar.ts, price=bar.close,
                                reason=f"close {bar.close} crossed above SMA{self.window} {sma:.0f} band")
        if bar.close < sma * self.exit:
            return SignalRaised(market=bar.market, kind=SignalKind.EXIT, bar_ts=bar.ts, price=bar.close,
                                reason=f"close {bar.close} below SMA{self.window} {sma:.0f} band")
        return None
