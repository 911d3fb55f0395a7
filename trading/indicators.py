"""Incremental indicators over a fixed window of bars, in ``Decimal``. Pure: values in, values out.

Each indicator takes one value per closed bar (``update``) and costs O(1) amortised per bar. All
of them have a **finite memory**: their value depends only on the last ``window`` inputs (RSI:
``window + 1`` closes). That is what makes a strategy's warm-up exact — replaying the last
``warmup_bars`` stored bars rebuilds the very state an uninterrupted run has (an exponential or
Wilder-smoothed average would only converge towards it). ``value`` is ``None`` until the window
is full.

- :class:`RollingMean` — simple moving average (running sum).
- :class:`RollingStd` — population standard deviation (running sum and sum of squares, computed
  in a 60-digit context so the subtraction loses nothing) and the mean; Bollinger bands.
- :class:`RollingMax` / :class:`RollingMin` — monotonic deques.
- :class:`Rsi` — Cutler's RSI: simple averages of gains and losses over the last ``window``
  close-to-close changes; 100 when there were no losses (50 when no change at all).
"""

from __future__ import annotations

from collections import deque
from decimal import Context, Decimal, localcontext

_WIDE = Context(prec=60)
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def _check_window(window: int, minimum: int = 1) -> int:
    if not isinstance(window, int) or isinstance(window, bool) or window < minimum:
        raise ValueError(f"window must be an integer >= {minimum}, got {window!r}")
    return window


class RollingMean:
    """Mean of the last ``window`` values."""

    __slots__ = ("_sum", "_values", "window")

    def __init__(self, window: int) -> None:
        self.window = _check_window(window)
        self._values: deque[Decimal] = deque()
        self._sum = _ZERO

    def update(self, x: Decimal) -> Decimal | None:
        with localcontext(_WIDE):
            self._values.append(x)
            self._sum += x
            if len(self._values) > self.window:
                self._sum -= self._values.popleft()
        return self.value

    @property
    def ready(self) -> bool:
        return len(self._values) == self.window

    @property
    def value(self) -> Decimal | None:
        return self._sum / self.window if self.ready else None


class RollingStd:
    """Mean and population standard deviation of the last ``window`` values."""

    __slots__ = ("_sum", "_sumsq", "_values", "window")

    def __init__(self, window: int) -> None:
        self.window = _check_window(window, 2)
        self._values: deque[Decimal] = deque()
        self._sum = _ZERO
        self._sumsq = _ZERO

    def update(self, x: Decimal) -> Decimal | None:
        with localcontext(_WIDE):
            self._values.append(x)
            self._sum += x
            self._sumsq += x * x
            if len(self._values) > self.window:
                old = self._values.popleft()
                self._sum -= old
                self._sumsq -= old * old
        return self.value

    @property
    def ready(self) -> bool:
        return len(self._values) == self.window

    @property
    def mean(self) -> Decimal | None:
        return self._sum / self.window if self.ready else None

    @property
    def variance(self) -> Decimal | None:
        if not self.ready:
            return None
        n = self.window
        with localcontext(_WIDE):
            return max(_ZERO, (n * self._sumsq - self._sum * self._sum) / (n * n))

    @property
    def value(self) -> Decimal | None:
        var = self.variance
        return None if var is None else var.sqrt()


class _RollingExtreme:
    __slots__ = ("_count", "_dq", "window")

    def __init__(self, window: int) -> None:
        self.window = _check_window(window)
        self._dq: deque[tuple[int, Decimal]] = deque()  # (index, value), values monotonic
        self._count = 0

    def _beats(self, new: Decimal, old: Decimal) -> bool:
        raise NotImplementedError

    def update(self, x: Decimal) -> Decimal | None:
        i = self._count
        self._count += 1
        while self._dq and self._beats(x, self._dq[-1][1]):
            self._dq.pop()
        self._dq.append((i, x))
        while self._dq[0][0] <= i - self.window:
            self._dq.popleft()
        return self.value

    @property
    def ready(self) -> bool:
        return self._count >= self.window

    @property
    def value(self) -> Decimal | None:
        return self._dq[0][1] if self.ready else None


class RollingMax(_RollingExtreme):
    """Maximum of the last ``window`` values."""

    __slots__ = ()

    def _beats(self, new: Decimal, old: Decimal) -> bool:
        return new >= old


class RollingMin(_RollingExtreme):
    """Minimum of the last ``window`` values."""

    __slots__ = ()

    def _beats(self, new: Decimal, old: Decimal) -> bool:
        return new <= old


class Rsi:
    """Cutler's RSI over the last ``window`` close-to-close changes (0–100)."""

    __slots__ = ("_gains", "_losses", "_prev", "window")

    def __init__(self, window: int) -> None:
        self.window = _check_window(window)
        self._gains = RollingMean(window)
        self._losses = RollingMean(window)
        self._prev: Decimal | None = None

    def update(self, close: Decimal) -> Decimal | None:
        if self._prev is not None:
            change = close - self._prev
            self._gains.update(max(change, _ZERO))
            self._losses.update(max(-change, _ZERO))
        self._prev = close
        return self.value

    @property
    def ready(self) -> bool:
        return self._gains.ready

    @property
    def value(self) -> Decimal | None:
        gain, loss = self._gains.value, self._losses.value
        if gain is None or loss is None:
            return None
        return rsi_from(gain, loss)


def rsi_from(avg_gain: Decimal, avg_loss: Decimal) -> Decimal:
    """RSI from average gain and loss: ``100 - 100 / (1 + gain / loss)``."""
    if avg_loss == 0:
        return _HUNDRED if avg_gain > 0 else Decimal(50)
    with localcontext(_WIDE):
        return _HUNDRED - _HUNDRED / (1 + avg_gain / avg_loss)
