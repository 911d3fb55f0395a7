from __future__ import annotations

from decimal import Decimal

import pytest

from actors.messages import Bar, SignalKind, TradeSource
from trading.builtin import SmaMomentum
from trading.strategy import StrategyError, load_factory


def _bar(ts: int, close: int) -> Bar:
    c = Decimal(close)
    return Bar(market="KRW-BTC", ts=ts, open=c, high=c, low=c, close=c, volume=Decimal(1), trade_count=1,
               source=TradeSource.CANDLES)


def test_sma_momentum_enters_on_cross_and_exits_below_band() -> None:
    s = SmaMomentum(market="KRW-BTC", window=3, entry_bps=0, exit_bps=0)
    closes = [100, 100, 100, 100, 110, 120, 90]
    out = [s.on_bar(_bar(i, c)) for i, c in enumerate(closes)]
    kinds = [o.kind if o else None for o in out]
    assert kinds == [None, None, None, None, SignalKind.ENTER_LONG, None, SignalKind.EXIT]


def test_sma_matches_direct_computation() -> None:
    s = SmaMomentum(market="KRW-BTC", window=4, entry_bps=0, exit_bps=0)
    closes = [5, 7, 3, 9, 11, 2, 8, 13]
    for i, c in enumerate(closes):
        s.on_bar(_bar(i, c))
        if i >= 3:
            assert s._sum / s.window == Decimal(sum(closes[i - 3 : i + 1])) / 4


def test_loader_validates_spec_and_params() -> None:
    factory = load_factory("trading.builtin:SmaMomentum", {"window": 5})
    assert factory("KRW-ETH").warmup_bars == 5
    with pytest.raises(StrategyError, match="module:Class"):
        load_factory("trading.builtin.SmaMomentum", {})
    with pytest.raises(StrategyError, match="no class"):
        load_factory("trading.builtin:Nope", {})
    with pytest.raises(StrategyError, match="STRATEGY_PARAMS"):
        load_factory("trading.builtin:SmaMomentum", {"windw": 5})
    with pytest.raises(StrategyError, match="STRATEGY_PARAMS"):
        load_factory("trading.builtin:SmaMomentum", {"window": 1})
