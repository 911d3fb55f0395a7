"""The strategy plugin interface and its loader.

A strategy is a plain class chosen by configuration: ``STRATEGY=module:Class`` and
``STRATEGY_PARAMS``, a JSON object of keyword parameters. Both are checked when the market node
starts (:func:`load_factory` builds one probe instance), so a typo fails the start, not the
first bar. One instance serves one market and is built as ``Class(market=..., **params)``.

What a strategy declares (plain attributes or properties):

- ``timeframe`` — its bar size, ``"1s"``, ``"1m"``, ``"5m"``, ``"1h"``… (default ``"1s"``). Longer
  bars are rolled up from the stored 1-second bars (``trading.timeframe``), never re-read from
  trades;
- ``markets`` — the markets it trades, or ``None`` for every market the feed carries (default);
- ``warmup_bars`` — how many of its bars rebuild its state (required).

What it does: ``on_bar(bar)`` receives each **closed** bar of its timeframe, in time order, and
returns ``None``, one intent or a list of intents, each with a reason:

- ``EnterLong(reason=..., krw=None, exits=None)`` — buy ``krw`` KRW (``None``: the paper book's
  order size), optionally with an ``ExitPlan`` (stop-loss, take-profit, time limit, trailing stop,
  partial take-profit) that the paper book then enforces on every 1-second close;
- ``Exit(reason=...)`` — sell the whole position;
- ``PartialExit(fraction=..., reason=..., once=True)`` — sell that share of the position
  (``once``: only if the position has not taken a partial exit yet).

It does no I/O and keeps no clock: everything it knows comes from bars. It does not see the
position — the paper book owns it and ignores intents that do not apply (an entry while long or
in the re-buy cooldown, an exit while flat), so exits that depend on the entry price or the
highest price since entry are declared up front in the ``ExitPlan``. Trades are not delivered
to strategies (bars only: the trade stream stays inside the bar stage). Intents returned for a
bar marked ``incomplete`` are dropped. Timing: a bar is handed over as soon as it is known to be
closed (its last second's 1-second bar, or the first 1-second bar of a later window), and the
paper book fills its intents at the next trade after the bar's end — the open of the market's
first 1-second bar at or after ``bar.ts + timeframe``.

State across restarts: the market node rebuilds each instance by replaying the stored bars of
the last ``warmup_bars`` bars (plus the current, unfinished one) through ``on_bar`` with intents
discarded, up to the last bar the paper book processed. So keep state that depends only on
the last ``warmup_bars`` bars (``trading.indicators`` are built that way); then a restarted
strategy decides exactly as an uninterrupted one would. A complete example::

    from decimal import Decimal

    from model.market import Bar
    from model.trading import ExitPlan
    from trading.indicators import RollingMax
    from trading.strategy import EnterLong


    class Breakout:  # buys a close above the highest high of the previous `window` bars
        def __init__(self, *, market: str, window: int = 20, timeframe: str = "5m",
                     markets: list[str] | None = None) -> None:
            self.market = market
            self.timeframe = timeframe  # 5-minute bars, rolled up from 1-second bars
            self.markets = markets  # None: every market
            self.warmup_bars = window  # its state is the last `window` highs
            self._highs = RollingMax(window)

        def on_bar(self, bar: Bar) -> EnterLong | None:
            previous_high = self._highs.value  # None until `window` bars were seen
            self._highs.update(bar.high)
            if previous_high is not None and bar.close > previous_high:
                return EnterLong(reason=f"close {bar.close} broke the high {previous_high}",
                                 exits=ExitPlan(stop_loss_bps=Decimal(100), trailing_stop_bps=Decimal(150),
                                                time_limit_s=6 * 3600))
            return None

Run it with ``STRATEGY=mypackage.breakout:Breakout`` and ``STRATEGY_PARAMS={"window": 30}``.
(For compatibility, ``on_bar`` may also return the walking skeleton's ``SignalRaised``.)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from model.market import Bar
from model.trading import ExitPlan
from model.trading import SignalRaised
from trading.timeframe import format_timeframe, parse_timeframe

__all__ = ["Decision", "EnterLong", "Exit", "ExitPlan", "Intent", "LoadedStrategy", "PartialExit", "Strategy",
           "StrategyError", "StrategyFactory", "fmt_price", "load_factory", "markets_of", "timeframe_of"]


class StrategyError(ValueError):
    """The configured strategy cannot be loaded or rejects its parameters."""


def _reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("an intent needs a reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class EnterLong:
    """Intent to buy ``krw`` KRW of the market (``None``: the paper book's order size)."""

    reason: str
    krw: Decimal | None = None
    exits: ExitPlan | None = None

    def __post_init__(self) -> None:
        _reason(self.reason)
        if self.krw is not None and not (isinstance(self.krw, Decimal) and self.krw.is_finite() and self.krw > 0):
            raise ValueError(f"krw must be a positive Decimal or None, got {self.krw!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Exit:
    """Intent to sell the whole position."""

    reason: str

    def __post_init__(self) -> None:
        _reason(self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartialExit:
    """Intent to sell ``fraction`` (0 < f < 1) of the position; ``once``: not after a partial exit."""

    fraction: Decimal
    reason: str
    once: bool = True

    def __post_init__(self) -> None:
        _reason(self.reason)
        if not (isinstance(self.fraction, Decimal) and 0 < self.fraction < 1):
            raise ValueError(f"fraction must be a Decimal strictly between 0 and 1, got {self.fraction!r}")


Intent = EnterLong | Exit | PartialExit
Decision = Intent | Iterable[Intent] | SignalRaised | None


@runtime_checkable
class Strategy(Protocol):
    """What every strategy provides (``timeframe`` and ``markets`` are optional, see above)."""

    @property
    def warmup_bars(self) -> int:
        """How many past bars of its timeframe rebuild its state."""
        ...

    def on_bar(self, bar: Bar) -> Decision:
        """Consume one closed bar; maybe return intents."""
        ...


StrategyFactory = Callable[[str], Strategy]


def fmt_price(value: Decimal) -> str:
    """A price for reasons and alerts: whole KRW when large, six significant digits when small."""
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.6g}" if value else "0"


def timeframe_of(strategy: object) -> int:
    """The strategy's timeframe in seconds (``"1s"`` when it declares none)."""
    return parse_timeframe(getattr(strategy, "timeframe", 1))


def markets_of(strategy: object) -> frozenset[str] | None:
    """The markets the strategy declares, or ``None`` for all."""
    markets = getattr(strategy, "markets", None)
    if markets is None:
        return None
    if isinstance(markets, str) or not all(isinstance(m, str) and m for m in markets):
        raise ValueError(f"markets must be a list of market ids or None, got {markets!r}")
    return frozenset(markets)


@dataclass(frozen=True, slots=True)
class LoadedStrategy:
    """A validated ``module:Class`` with its parameters; call it with a market for an instance."""

    spec: str
    cls: type
    params: Mapping[str, Any]
    timeframe_s: int
    markets: frozenset[str] | None
    warmup_bars: int

    def __call__(self, market: str) -> Strategy:
        return self.cls(market=market, **self.params)

    def trades(self, market: str) -> bool:
        """Whether the strategy runs on ``market``."""
        return self.markets is None or market in self.markets

    def describe(self) -> str:
        scope = "all markets" if self.markets is None else ",".join(sorted(self.markets))
        return f"{self.spec} on {format_timeframe(self.timeframe_s)} bars, {scope}, warm-up {self.warmup_bars} bars"


def load_factory(spec: str, params: Mapping[str, Any]) -> LoadedStrategy:
    """Resolve ``module:Class`` and check ``params``, timeframe and markets now, at start."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise StrategyError(f"STRATEGY must look like module:Class, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyError(f"STRATEGY {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None or not inspect.isclass(cls):
        raise StrategyError(f"STRATEGY {spec!r}: module {module_name!r} has no class {class_name!r}")
    try:
        probe = cls(market="KRW-BTC", **params)
    except TypeError as exc:
        raise StrategyError(f"STRATEGY_PARAMS {dict(params)!r} rejected by {spec}: {exc}") from exc
    except ValueError as exc:
        raise StrategyError(f"STRATEGY_PARAMS rejected by {spec}: {exc}") from exc
    if not isinstance(probe, Strategy):
        raise StrategyError(f"STRATEGY {spec!r} does not implement warmup_bars and on_bar(bar)")
    try:
        timeframe_s = timeframe_of(probe)
        markets = markets_of(probe)
    except ValueError as exc:
        raise StrategyError(f"STRATEGY {spec!r}: {exc}") from exc
    warmup = probe.warmup_bars
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise StrategyError(f"STRATEGY {spec!r}: warmup_bars must be an integer >= 0, got {warmup!r}")
    return LoadedStrategy(spec=spec, cls=cls, params=dict(params), timeframe_s=timeframe_s, markets=markets,
                          warmup_bars=warmup)
