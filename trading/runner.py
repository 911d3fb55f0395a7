"""One market's strategy instance driven by 1-second bars. Pure: bars in, signals out.

:class:`StrategyRunner` rolls the market's closed 1-second bars up to the strategy's timeframe
(``trading.timeframe.BarRollup``), hands each closed timeframe bar to ``on_bar`` and turns the
intents it returns into ``SignalRaised`` events stamped with the market, the bar, its close,
the timeframe and the 1-second bar that closed it (``trigger_ts``). Intents returned for an
incomplete bar are dropped and counted, never signalled.

:func:`warmup_windows` says how many timeframe windows a restart must replay so that the
strategy's ``warmup_bars`` closed bars and the unfinished current window are all rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from model.market import Bar
from model.trading import SignalKind
from model.trading import SignalRaised
from trading.strategy import Decision, EnterLong, Exit, PartialExit, Strategy, timeframe_of
from trading.timeframe import BarRollup, Rolled

log = logging.getLogger(__name__)


def warmup_windows(warmup_bars: int) -> int:
    """Windows to replay on restart: ``warmup_bars`` closed ones plus the current one."""
    return warmup_bars + 1


class StrategyRunner:
    """Feeds one market's 1-second bars through the rollup into one strategy instance."""

    __slots__ = ("bars", "market", "period_s", "rollup", "signals", "strategy", "suppressed")

    def __init__(self, strategy: Strategy, *, market: str, observed_from: int | None = None) -> None:
        self.strategy = strategy
        self.market = market
        self.period_s = timeframe_of(strategy)
        self.rollup = BarRollup(market=market, period_s=self.period_s, observed_from=observed_from)
        self.bars = 0  # timeframe bars given to the strategy
        self.signals = 0
        self.suppressed = 0  # intents dropped because their bar was incomplete

    def on_bar(self, bar: Bar) -> list[SignalRaised]:
        """The next closed 1-second bar of the market; the signals it caused, in order."""
        out: list[SignalRaised] = []
        for rolled in self.rollup.add(bar):
            out.extend(self._evaluate(rolled))
        self.signals += len(out)
        return out

    def warm_up(self, bars: Iterable[Bar]) -> int:
        """Replay stored 1-second bars with every intent discarded; the timeframe bars rebuilt."""
        before = self.bars
        for bar in bars:
            for rolled in self.rollup.add(bar):
                self._evaluate(rolled)
        return self.bars - before

    def _evaluate(self, rolled: Rolled) -> list[SignalRaised]:
        bar = rolled.bar
        self.bars += 1
        signals = [self._signal(item, rolled) for item in _items(self.strategy.on_bar(bar))]
        if signals and bar.incomplete:
            self.suppressed += len(signals)
            log.debug("%s: %d intents on incomplete bar %d dropped", self.market, len(signals), bar.ts)
            return []
        return signals

    def _signal(self, item: object, rolled: Rolled) -> SignalRaised:
        bar = rolled.bar
        def raised(kind: SignalKind, reason: str, **what: Any) -> SignalRaised:
            return SignalRaised(market=self.market, kind=kind, bar_ts=bar.ts, price=bar.close, reason=reason,
                                timeframe_s=self.period_s, trigger_ts=rolled.trigger_ts, **what)

        if isinstance(item, EnterLong):
            return raised(SignalKind.ENTER_LONG, item.reason, amount_krw=item.krw, exit_plan=item.exits)
        if isinstance(item, Exit):
            return raised(SignalKind.EXIT, item.reason)
        if isinstance(item, PartialExit):
            return raised(SignalKind.PARTIAL_EXIT, item.reason, fraction=item.fraction, once=item.once)
        if isinstance(item, SignalRaised):  # the walking skeleton's API
            if item.market != self.market or item.bar_ts != bar.ts:
                raise ValueError(f"strategy signalled {item.market}@{item.bar_ts} on bar {self.market}@{bar.ts}")
            return replace(item, timeframe_s=self.period_s, trigger_ts=rolled.trigger_ts)
        raise TypeError(f"strategy returned {item!r}; expected EnterLong, Exit, PartialExit, a list of them or None")


def _items(decision: Decision) -> list[object]:
    if decision is None:
        return []
    if isinstance(decision, EnterLong | Exit | PartialExit | SignalRaised):
        return [decision]
    return list(decision)
