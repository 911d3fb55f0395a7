"""Built-in strategies (see ``trading.strategy`` for the plugin interface).

Numbers in ``STRATEGY_PARAMS`` may be JSON numbers or strings; they are read as ``Decimal``.
Levels are in basis points (1 bps = 0.01 %). Every indicator is a ``trading.indicators`` window,
so ``warmup_bars`` stored bars rebuild a restarted strategy exactly.

``SmaMomentum`` — the walking skeleton's built-in, on 1-second bars by default. Over the last
``window`` closes it keeps a simple moving average:

- enter long when the close crosses above ``SMA × (1 + entry_bps / 10 000)`` (it was at or below
  the band on the previous bar);
- exit when the close falls below ``SMA × (1 − exit_bps / 10 000)``.

Parameters: ``window`` (bars, ≥ 2, default 20), ``entry_bps`` (≥ 0, default 5), ``exit_bps``
(≥ 0, default 5), ``timeframe`` (default ``"1s"``), ``markets`` (default all). On the sandbox's
candle-derived data (four 1-second bars a minute) the default window spans about five minutes.

``VolatilityBreakout`` — momentum entry on a volatility breakout, triple-barrier exit, trailing
stop. On each closed bar (default 1 minute):

- enter long when ``close > open + k × mean range`` of the previous ``range_window`` bars
  (range = high − low; Larry Williams' breakout applied bar by bar) and, as the momentum filter,
  ``close > SMA(trend_window)`` of the closes (``trend_window`` 0: no filter);
- exits are the entry's ``ExitPlan``, enforced by the paper book on every 1-second close:
  take-profit ``take_profit_bps``, stop-loss ``stop_loss_bps``, time limit ``time_limit_s``
  (the three barriers), and a trailing stop ``trailing_stop_bps`` below the highest price since
  entry, armed once that maximum is ``trailing_activation_bps`` above the entry price.

Parameters (defaults): ``timeframe`` ``"1m"``, ``markets`` all, ``range_window`` 20, ``k`` 1.5,
``trend_window`` 60, ``krw`` the paper order size, ``take_profit_bps`` 150, ``stop_loss_bps`` 80,
``time_limit_s`` 3600, ``trailing_stop_bps`` 60, ``trailing_activation_bps`` 40,
``partial_take_profit_bps`` off, ``partial_fraction`` 0.5. Any exit level set to 0 is off.

``MeanReversion`` — RSI and Bollinger-band mean reversion. On each closed bar (default 1 minute),
with Bollinger bands ``SMA(bb_window) ± bb_k × σ`` and Cutler's RSI over ``rsi_window`` changes:

- enter long when the close is below the lower band and RSI < ``rsi_entry`` (oversold);
- at the middle band (close ≥ SMA) sell ``partial_fraction`` of the position, once (0: sell
  everything there instead);
- exit the rest when the close reaches the upper band or RSI > ``rsi_exit``;
- the entry carries a stop-loss ``stop_loss_bps`` and a time limit ``time_limit_s``.

Parameters (defaults): ``timeframe`` ``"1m"``, ``markets`` all, ``bb_window`` 20, ``bb_k`` 2,
``rsi_window`` 14, ``rsi_entry`` 30, ``rsi_exit`` 70, ``partial_fraction`` 0.5, ``krw`` the
paper order size, ``stop_loss_bps`` 150, ``time_limit_s`` 14400, ``take_profit_bps`` and
``trailing_stop_bps`` off.

Whether an intent acts is the paper book's business: it ignores an entry while long and an exit
while flat.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal, InvalidOperation

from model.market import Bar
from model.trading import ExitPlan
from trading.indicators import RollingMean, RollingStd, Rsi
from trading.strategy import EnterLong, Exit, PartialExit
from trading.strategy import fmt_price as _p
from trading.timeframe import parse_timeframe

_BPS = Decimal(10_000)
Number = float | int | str | Decimal


def _decimal(value: Number | None, name: str, *, minimum: Decimal = Decimal(0), strict: bool = False) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not number.is_finite() or number < minimum or (strict and number == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return number


def _level(value: Number | None, name: str) -> Decimal | None:
    """A bps level: ``None`` or 0 switch the rule off."""
    if value is None:
        return None
    number = _decimal(value, name)
    return number if number > 0 else None


def _window(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _scope(timeframe: str | int, markets: list[str] | None) -> tuple[str | int, list[str] | None]:
    parse_timeframe(timeframe)
    if markets is not None and (isinstance(markets, str) or not all(isinstance(m, str) for m in markets)):
        raise ValueError(f"markets must be a list of market ids or null, got {markets!r}")
    return timeframe, markets


def _krw(value: Number | None) -> Decimal | None:
    return None if value is None else _decimal(value, "krw", strict=True)


def _plan(*, take_profit_bps: Number | None = None, stop_loss_bps: Number | None = None,
          time_limit_s: int | None = None, trailing_stop_bps: Number | None = None,
          trailing_activation_bps: Number | None = None, partial_take_profit_bps: Number | None = None,
          partial_fraction: Number = "0.5", breakeven_after_partial: bool = False) -> ExitPlan:
    if time_limit_s is not None:
        _window(time_limit_s, "time_limit_s", 0)
    return ExitPlan(
        take_profit_bps=_level(take_profit_bps, "take_profit_bps"),
        stop_loss_bps=_level(stop_loss_bps, "stop_loss_bps"),
        time_limit_s=time_limit_s or None,
        trailing_stop_bps=_level(trailing_stop_bps, "trailing_stop_bps"),
        trailing_activation_bps=_level(trailing_activation_bps, "trailing_activation_bps"),
        partial_take_profit_bps=_level(partial_take_profit_bps, "partial_take_profit_bps"),
        partial_fraction=_decimal(partial_fraction, "partial_fraction", strict=True),
        breakeven_after_partial=bool(breakeven_after_partial),
    )


class SmaMomentum:
    """Momentum entry on an SMA band cross, exit below a lower band."""

    def __init__(self, *, market: str, window: int = 20, entry_bps: Number = 5, exit_bps: Number = 5,
                 timeframe: str | int = "1s", markets: list[str] | None = None) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        self.market = market
        self.timeframe, self.markets = _scope(timeframe, markets)
        self.window = window
        self.entry = Decimal(1) + _decimal(entry_bps, "entry_bps") / _BPS
        self.exit = Decimal(1) - _decimal(exit_bps, "exit_bps") / _BPS
        self._closes: deque[Decimal] = deque()
        self._sum = Decimal(0)
        self._was_above = True  # no entry on the very first full window

    @property
    def warmup_bars(self) -> int:
        return self.window

    def on_bar(self, bar: Bar) -> EnterLong | Exit | None:
        close, closes, window = bar.close, self._closes, self.window
        closes.append(close)
        self._sum += close
        if len(closes) > window:
            self._sum -= closes.popleft()
        elif len(closes) < window:
            return None
        sma = self._sum / window
        above = close > sma * self.entry
        crossed = above and not self._was_above
        self._was_above = above
        if crossed:
            return EnterLong(reason=f"close {_p(close)} crossed above SMA{window} {_p(sma)} band")
        if close < sma * self.exit:
            return Exit(reason=f"close {_p(close)} below SMA{window} {_p(sma)} band")
        return None


class VolatilityBreakout:
    """Volatility-breakout momentum entry; triple-barrier and trailing-stop exit plan."""

    def __init__(self, *, market: str, timeframe: str | int = "1m", markets: list[str] | None = None,
                 range_window: int = 20, k: Number = "1.5", trend_window: int = 60, krw: Number | None = None,
                 take_profit_bps: Number | None = 150, stop_loss_bps: Number | None = 80,
                 time_limit_s: int | None = 3600, trailing_stop_bps: Number | None = 60,
                 trailing_activation_bps: Number | None = 40, partial_take_profit_bps: Number | None = None,
                 partial_fraction: Number = "0.5", breakeven_after_partial: bool = False) -> None:
        self.market = market
        self.timeframe, self.markets = _scope(timeframe, markets)
        self.range_window = _window(range_window, "range_window", 1)
        self.trend_window = _window(trend_window, "trend_window", 0)
        self.k = _decimal(k, "k", strict=True)
        self.krw = _krw(krw)
        self.plan = _plan(take_profit_bps=take_profit_bps, stop_loss_bps=stop_loss_bps, time_limit_s=time_limit_s,
                          trailing_stop_bps=trailing_stop_bps, trailing_activation_bps=trailing_activation_bps,
                          partial_take_profit_bps=partial_take_profit_bps, partial_fraction=partial_fraction,
                          breakeven_after_partial=breakeven_after_partial)
        if self.plan.stop_loss_bps is None and self.plan.trailing_stop_bps is None and self.plan.time_limit_s is None:
            raise ValueError("VolatilityBreakout needs a stop-loss, a trailing stop or a time limit to exit")
        self._ranges = RollingMean(self.range_window)
        self._trend = RollingMean(self.trend_window) if self.trend_window else None

    @property
    def warmup_bars(self) -> int:
        return max(self.range_window, self.trend_window)

    def on_bar(self, bar: Bar) -> EnterLong | None:
        mean_range = self._ranges.value  # of the previous range_window bars
        self._ranges.update(bar.high - bar.low)
        trend = self._trend.update(bar.close) if self._trend is not None else None
        if mean_range is None or mean_range <= 0:
            return None
        if self._trend is not None and (trend is None or bar.close <= trend):
            return None
        level = bar.open + self.k * mean_range
        if bar.close <= level:
            return None
        trend_text = f", above SMA{self.trend_window} {_p(trend)}" if trend is not None else ""
        return EnterLong(reason=f"breakout: close {_p(bar.close)} > open {_p(bar.open)} + {self.k}×range "
                                f"{_p(mean_range)}{trend_text}", krw=self.krw, exits=self.plan)


class MeanReversion:
    """RSI + Bollinger mean reversion: buy oversold below the lower band, sell back at the mean."""

    def __init__(self, *, market: str, timeframe: str | int = "1m", markets: list[str] | None = None,
                 bb_window: int = 20, bb_k: Number = 2, rsi_window: int = 14, rsi_entry: Number = 30,
                 rsi_exit: Number = 70, partial_fraction: Number = "0.5", krw: Number | None = None,
                 stop_loss_bps: Number | None = 150, take_profit_bps: Number | None = None,
                 time_limit_s: int | None = 14_400, trailing_stop_bps: Number | None = None) -> None:
        self.market = market
        self.timeframe, self.markets = _scope(timeframe, markets)
        self.bb_window = _window(bb_window, "bb_window", 2)
        self.rsi_window = _window(rsi_window, "rsi_window", 1)
        self.bb_k = _decimal(bb_k, "bb_k", strict=True)
        self.rsi_entry = _decimal(rsi_entry, "rsi_entry", strict=True)
        self.rsi_exit = _decimal(rsi_exit, "rsi_exit")
        if not self.rsi_entry < self.rsi_exit <= 100:
            raise ValueError(f"need 0 < rsi_entry < rsi_exit <= 100, got {rsi_entry!r}, {rsi_exit!r}")
        fraction = _decimal(partial_fraction, "partial_fraction")
        if fraction >= 1:
            raise ValueError(f"partial_fraction must be below 1 (0: no partial exit), got {partial_fraction!r}")
        self.partial_fraction = fraction if fraction > 0 else None
        self.krw = _krw(krw)
        self.plan = _plan(stop_loss_bps=stop_loss_bps, take_profit_bps=take_profit_bps, time_limit_s=time_limit_s,
                          trailing_stop_bps=trailing_stop_bps)
        self._bands = RollingStd(self.bb_window)
        self._rsi = Rsi(self.rsi_window)

    @property
    def warmup_bars(self) -> int:
        return max(self.bb_window, self.rsi_window + 1)

    def on_bar(self, bar: Bar) -> EnterLong | Exit | PartialExit | None:
        sigma = self._bands.update(bar.close)
        mean = self._bands.mean
        rsi = self._rsi.update(bar.close)
        if sigma is None or mean is None or rsi is None:
            return None
        close = bar.close
        lower, upper = mean - self.bb_k * sigma, mean + self.bb_k * sigma
        if close < lower and rsi < self.rsi_entry:
            return EnterLong(reason=f"oversold: close {_p(close)} < lower band {_p(lower)}, RSI {rsi:.1f}",
                             krw=self.krw, exits=self.plan)
        if close >= upper or rsi > self.rsi_exit:
            why = f"close {_p(close)} >= upper band {_p(upper)}" if close >= upper else f"RSI {rsi:.1f} > {self.rsi_exit}"
            return Exit(reason=f"reverted: {why}")
        if close >= mean:
            if self.partial_fraction is None:
                return Exit(reason=f"back at the mean: close {_p(close)} >= SMA{self.bb_window} {_p(mean)}")
            return PartialExit(fraction=self.partial_fraction,
                               reason=f"back at the mean: close {_p(close)} >= SMA{self.bb_window} {_p(mean)}")
        return None
