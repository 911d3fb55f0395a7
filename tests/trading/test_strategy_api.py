"""``trading.strategy`` (the plugin interface and loader) and ``trading.runner`` (driving one instance)."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import trading.strategy as strategy_module
from model.market import Bar, TradeSource
from model.trading import ExitPlan, SignalKind
from model.trading import SignalRaised
from trading.runner import StrategyRunner
from trading.strategy import EnterLong, Exit, PartialExit, StrategyError, load_factory


def _bar(ts: int, close: int, *, market: str = "KRW-BTC", high: int | None = None, incomplete: bool = False) -> Bar:
    c = Decimal(close)
    return Bar(market=market, ts=ts, open=c, high=Decimal(high) if high else c, low=c, close=c, volume=Decimal(1),
               trade_count=1, source=TradeSource.CANDLES, incomplete=incomplete)


@pytest.fixture
def doc_example() -> Iterator[str]:
    """The module docstring's example, as an importable module."""
    doc = strategy_module.__doc__ or ""
    code = doc.split("A complete example::", 1)[1].split("Run it with", 1)[0]
    module = types.ModuleType("doc_example_strategy")
    exec(compile(textwrap.dedent(code), "doc_example_strategy", "exec"), module.__dict__)  # noqa: S102 - our own docstring
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


def test_the_documented_example_loads_and_trades(doc_example: str) -> None:
    loaded = load_factory(f"{doc_example}:Breakout", {"window": 3})
    assert (loaded.timeframe_s, loaded.markets, loaded.warmup_bars) == (300, None, 3)
    assert "5m bars" in loaded.describe()
    runner = StrategyRunner(loaded("KRW-ETH"), market="KRW-ETH", observed_from=0)
    closes = [100, 101, 102, 101, 110, 111]  # one 1-second bar at the start of each 5-minute window
    [signal] = [s for i, c in enumerate(closes) for s in runner.on_bar(_bar(i * 300, c, market="KRW-ETH"))]
    # the 1200 bar broke the high of the three before it (102); it closed when the 1500 bar came
    assert (signal.kind, signal.bar_ts, signal.price, signal.timeframe_s, signal.trigger_ts, signal.decided_ts) == (
        SignalKind.ENTER_LONG, 1200, Decimal(110), 300, 1500, 1500)
    assert signal.exit_plan == ExitPlan(stop_loss_bps=Decimal(100), trailing_stop_bps=Decimal(150),
                                        time_limit_s=21_600)


def test_loader_checks_timeframe_markets_and_warmup() -> None:
    loaded = load_factory("trading.builtin:MeanReversion", {"timeframe": "5m", "markets": ["KRW-BTC", "KRW-ETH"]})
    assert loaded.timeframe_s == 300 and loaded.markets == frozenset({"KRW-BTC", "KRW-ETH"})
    assert loaded.trades("KRW-ETH") and not loaded.trades("KRW-XRP")
    with pytest.raises(StrategyError, match="timeframe"):
        load_factory("trading.builtin:MeanReversion", {"timeframe": "7m"})
    with pytest.raises(StrategyError, match="markets"):
        load_factory("trading.builtin:MeanReversion", {"markets": "KRW-BTC"})
    with pytest.raises(StrategyError, match="rsi_entry"):
        load_factory("trading.builtin:MeanReversion", {"rsi_entry": 80, "rsi_exit": 70})


class _Scripted:
    """A strategy that returns what the test scripted for each bar."""

    script: dict[int, Any] = {}  # noqa: RUF012 - set per test

    def __init__(self, *, market: str, timeframe: str = "1s", warmup_bars: int = 0) -> None:
        self.market, self.timeframe, self.warmup_bars = market, timeframe, warmup_bars

    def on_bar(self, bar: Bar) -> Any:
        return self.script.get(bar.ts)


def test_runner_turns_intents_into_stamped_signals() -> None:
    plan = ExitPlan(stop_loss_bps=Decimal(50))
    _Scripted.script = {
        1: EnterLong(reason="in", krw=Decimal(20_000), exits=plan),
        2: [PartialExit(fraction=Decimal("0.25"), reason="half", once=False), Exit(reason="out")],
        3: None,
    }
    runner = StrategyRunner(_Scripted(market="KRW-BTC"), market="KRW-BTC")
    out = [s for ts in (1, 2, 3) for s in runner.on_bar(_bar(ts, 100 + ts))]
    assert [(s.kind, s.bar_ts, s.price, s.trigger_ts, s.decided_ts) for s in out] == [
        (SignalKind.ENTER_LONG, 1, Decimal(101), 1, 2),
        (SignalKind.PARTIAL_EXIT, 2, Decimal(102), 2, 3),
        (SignalKind.EXIT, 2, Decimal(102), 2, 3),
    ]
    assert out[0].amount_krw == Decimal(20_000) and out[0].exit_plan == plan
    assert out[1].fraction == Decimal("0.25") and out[1].once is False
    assert runner.signals == 3


def test_intents_on_incomplete_bars_are_dropped_but_the_bar_is_seen() -> None:
    _Scripted.script = {ts: EnterLong(reason="in") for ts in range(0, 400, 30)}
    runner = StrategyRunner(_Scripted(market="KRW-BTC", timeframe="1m"), market="KRW-BTC")
    out = [s for ts in range(30, 400, 30) for s in runner.on_bar(_bar(ts, 100))]
    assert runner.suppressed == 1  # the first minute was not seen from its start
    assert [s.bar_ts for s in out] == [60, 120, 180, 240, 300]
    flagged = StrategyRunner(_Scripted(market="KRW-BTC"), market="KRW-BTC")
    assert flagged.on_bar(_bar(1, 100, incomplete=True)) == [] and flagged.suppressed == 0
    _Scripted.script = {1: EnterLong(reason="in")}
    flagged = StrategyRunner(_Scripted(market="KRW-BTC"), market="KRW-BTC")
    assert flagged.on_bar(_bar(1, 100, incomplete=True)) == [] and flagged.suppressed == 1


def test_walking_skeleton_signals_are_still_accepted_and_garbage_is_not() -> None:
    legacy = SignalRaised(market="KRW-BTC", kind=SignalKind.EXIT, bar_ts=7, price=Decimal(5), reason="old api")
    _Scripted.script = {7: legacy, 8: "sell!"}
    runner = StrategyRunner(_Scripted(market="KRW-BTC"), market="KRW-BTC")
    [signal] = runner.on_bar(_bar(7, 5))
    assert signal.reason == "old api" and signal.trigger_ts == 7
    with pytest.raises(TypeError, match="EnterLong"):
        runner.on_bar(_bar(8, 5))


def test_warm_up_discards_intents() -> None:
    _Scripted.script = {ts: Exit(reason="x") for ts in range(10)}
    runner = StrategyRunner(_Scripted(market="KRW-BTC"), market="KRW-BTC")
    assert runner.warm_up(_bar(ts, 1) for ts in range(5)) == 5
    assert runner.signals == 0
    assert len(runner.on_bar(_bar(5, 1))) == 1


@pytest.mark.parametrize(("intent", "match"), [
    (lambda: EnterLong(reason=""), "reason"),
    (lambda: EnterLong(reason="r", krw=Decimal(0)), "krw"),
    (lambda: PartialExit(fraction=Decimal(1), reason="r"), "fraction"),
    (lambda: PartialExit(fraction=Decimal(0), reason="r"), "fraction"),
    (lambda: ExitPlan(stop_loss_bps=Decimal(-1)), "stop_loss_bps"),
    (lambda: ExitPlan(time_limit_s=0), "time_limit_s"),
])
def test_intents_check_their_invariants(intent: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        intent()
