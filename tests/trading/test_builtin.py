"""Built-in strategies: their rules, their indicators against direct computations over the same
bars, exact warm-up after a restart, and runs on the real shipped KRW-BTC data."""

from __future__ import annotations

import statistics
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.market import Bar, TradeSource
from model.trading import ExitPlan, SignalKind
from tests.trading.replay import Run, candle_bars, run_pipeline
from trading.builtin import MeanReversion, SmaMomentum, VolatilityBreakout
from trading.runner import StrategyRunner
from trading.strategy import EnterLong, Exit, PartialExit, StrategyError, load_factory
from trading.timeframe import BarRollup

D = Decimal
WEEK = ("2024-09-01T00:00:00", "2024-09-08T00:00:00")  # 8,112 one-second bars of real candles (with holes)
BUILTINS = ["trading.builtin:VolatilityBreakout", "trading.builtin:MeanReversion", "trading.builtin:SmaMomentum"]


def _bar(ts: int, close: int | str, *, open_: int | str | None = None, high: int | str | None = None,
         low: int | str | None = None) -> Bar:
    c = D(close)
    o = D(open_) if open_ is not None else c
    return Bar(market="KRW-BTC", ts=ts, open=o, high=D(high) if high is not None else max(o, c),
               low=D(low) if low is not None else min(o, c), close=c, volume=D(1), trade_count=1,
               source=TradeSource.CANDLES, period_s=60)


# --- SmaMomentum (the walking skeleton's built-in) -------------------------------------------

def test_sma_momentum_enters_on_cross_and_exits_below_band() -> None:
    s = SmaMomentum(market="KRW-BTC", window=3, entry_bps=0, exit_bps=0)
    closes = [100, 100, 100, 100, 110, 120, 90]
    out = [s.on_bar(_bar(i, c)) for i, c in enumerate(closes)]
    assert [type(o).__name__ if o else None for o in out] == [None, None, None, None, "EnterLong", None, "Exit"]
    assert s.timeframe == "1s" and s.markets is None


def test_sma_matches_direct_computation() -> None:
    s = SmaMomentum(market="KRW-BTC", window=4, entry_bps=0, exit_bps=0)
    closes = [5, 7, 3, 9, 11, 2, 8, 13]
    for i, c in enumerate(closes):
        s.on_bar(_bar(i, c))
        if i >= 3:
            assert s._sum / s.window == D(sum(closes[i - 3 : i + 1])) / 4


def test_loader_validates_spec_and_params() -> None:
    factory = load_factory("trading.builtin:SmaMomentum", {"window": 5})
    assert factory("KRW-ETH").warmup_bars == 5 and factory.timeframe_s == 1
    with pytest.raises(StrategyError, match="module:Class"):
        load_factory("trading.builtin.SmaMomentum", {})
    with pytest.raises(StrategyError, match="no class"):
        load_factory("trading.builtin:Nope", {})
    with pytest.raises(StrategyError, match="STRATEGY_PARAMS"):
        load_factory("trading.builtin:SmaMomentum", {"windw": 5})
    with pytest.raises(StrategyError, match="STRATEGY_PARAMS"):
        load_factory("trading.builtin:SmaMomentum", {"window": 1})


# --- VolatilityBreakout ----------------------------------------------------------------------

def test_breakout_defaults_and_parameters() -> None:
    loaded = load_factory("trading.builtin:VolatilityBreakout", {})
    assert (loaded.timeframe_s, loaded.warmup_bars) == (60, 60)
    s = loaded("KRW-BTC")
    assert s.plan == ExitPlan(take_profit_bps=D(150), stop_loss_bps=D(80), time_limit_s=3600,
                              trailing_stop_bps=D(60), trailing_activation_bps=D(40))
    custom = VolatilityBreakout(market="KRW-BTC", k="0.5", take_profit_bps=0, partial_take_profit_bps=50,
                                breakeven_after_partial=True, krw=20_000)
    assert custom.plan.take_profit_bps is None and custom.plan.partial_take_profit_bps == D(50)
    assert custom.krw == D(20_000)
    with pytest.raises(StrategyError, match="needs a stop-loss"):
        load_factory("trading.builtin:VolatilityBreakout", {"stop_loss_bps": 0, "trailing_stop_bps": 0,
                                                            "time_limit_s": 0})
    with pytest.raises(StrategyError, match="k must be"):
        load_factory("trading.builtin:VolatilityBreakout", {"k": 0})


def test_breakout_enters_when_the_bar_runs_k_ranges_above_its_open_in_an_uptrend() -> None:
    s = VolatilityBreakout(market="KRW-BTC", range_window=3, k=2, trend_window=3)
    for i in range(3):  # ranges of 10, closes 100, 102, 104
        assert s.on_bar(_bar(i * 60, 100 + 2 * i, open_=95 + 2 * i, high=105 + 2 * i)) is None
    assert s.on_bar(_bar(180, 119, open_=100, high=119, low=99)) is None  # 100 + 2 × 10 = 120 not crossed
    entry = s.on_bar(_bar(240, 140, open_=110, high=141, low=109))  # mean range (10+10+20)/3, 110 + 26.7 < 140
    assert isinstance(entry, EnterLong) and entry.exits == s.plan and "breakout" in entry.reason
    assert s.on_bar(_bar(300, 80, open_=40, high=80, low=40)) is None  # below the trend


# --- MeanReversion ---------------------------------------------------------------------------

def test_mean_reversion_buys_oversold_sells_half_at_the_mean_and_the_rest_at_the_upper_band() -> None:
    s = MeanReversion(market="KRW-BTC", bb_window=5, bb_k=1, rsi_window=3, rsi_entry=30, rsi_exit=90)
    out = [s.on_bar(_bar(i * 60, c)) for i, c in enumerate([100, 101, 100, 101, 100, 90, 97, 100, 104])]
    kinds = [type(o).__name__ if o else None for o in out]
    assert kinds == [None, None, None, None, None, "EnterLong", None, "PartialExit", "Exit"]
    assert isinstance(out[5], EnterLong) and out[5].exits == ExitPlan(stop_loss_bps=D(150), time_limit_s=14_400)
    assert isinstance(out[7], PartialExit) and out[7].fraction == D("0.5") and out[7].once
    assert isinstance(out[8], Exit)
    whole = MeanReversion(market="KRW-BTC", bb_window=5, bb_k=1, rsi_window=3, partial_fraction=0)
    assert isinstance([whole.on_bar(_bar(i * 60, c)) for i, c in enumerate([100, 101, 100, 101, 101])][-1], Exit)


# --- indicators inside the strategies, against a direct computation over the same real bars ---

def _minute_bars(bars: list[Bar]) -> list[Bar]:
    rollup = BarRollup(market="KRW-BTC", period_s=60)
    return [r.bar for b in bars for r in rollup.add(b)]


def _reference_breakout(bars: list[Bar], rw: int, k: Decimal, tw: int) -> list[int]:
    entries = []
    for i, bar in enumerate(bars):
        if i < rw or i + 1 < tw or bar.incomplete:
            continue
        mean_range = sum((b.high - b.low for b in bars[i - rw : i]), D(0)) / rw
        trend = sum((b.close for b in bars[i + 1 - tw : i + 1]), D(0)) / tw
        if mean_range > 0 and bar.close > trend and bar.close > bar.open + k * mean_range:
            entries.append(bar.ts)
    return entries


def _reference_reversion(bars: list[Bar], n: int, k: Decimal, m: int) -> list[tuple[int, SignalKind]]:
    out = []
    closes = [b.close for b in bars]
    for i, bar in enumerate(bars):
        if i + 1 < n or i < m or bar.incomplete:
            continue
        window = closes[i + 1 - n : i + 1]
        mean, sigma = sum(window, D(0)) / n, statistics.pstdev(window)  # pstdev: exact fractions, then sqrt
        changes = [b - a for a, b in zip(closes[i - m : i], closes[i - m + 1 : i + 1], strict=True)]
        gain, loss = sum((c for c in changes if c > 0), D(0)) / m, sum((-c for c in changes if c < 0), D(0)) / m
        rsi = D(100 if gain else 50) if loss == 0 else 100 - 100 / (1 + gain / loss)
        close = bar.close
        if close < mean - k * sigma and rsi < 30:
            out.append((bar.ts, SignalKind.ENTER_LONG))
        elif close >= mean + k * sigma or rsi > 70:
            out.append((bar.ts, SignalKind.EXIT))
        elif close >= mean:
            out.append((bar.ts, SignalKind.PARTIAL_EXIT))
    return out


def test_breakout_signals_equal_a_direct_computation_on_real_minute_bars() -> None:
    bars = candle_bars(*WEEK)
    runner = StrategyRunner(VolatilityBreakout(market="KRW-BTC"), market="KRW-BTC")
    got = [s.bar_ts for b in bars for s in runner.on_bar(b)]
    assert got == _reference_breakout(_minute_bars(bars), 20, D("1.5"), 60)
    assert len(got) > 10


def test_mean_reversion_signals_equal_a_direct_computation_on_real_minute_bars() -> None:
    bars = candle_bars(*WEEK)
    runner = StrategyRunner(MeanReversion(market="KRW-BTC"), market="KRW-BTC")
    got = [(s.bar_ts, s.kind) for b in bars for s in runner.on_bar(b)]
    expected = _reference_reversion(_minute_bars(bars), 20, D(2), 14)
    assert got == expected
    assert {k for _t, k in got} == {SignalKind.ENTER_LONG, SignalKind.EXIT, SignalKind.PARTIAL_EXIT}


# --- the real shipped data, through the paper book ---------------------------------------------

@pytest.mark.parametrize("spec", BUILTINS[:2])
def test_builtins_trade_the_real_week_by_their_rules(spec: str) -> None:
    bars = candle_bars(*WEEK)
    run = run_pipeline((spec, {}), bars, slippage_bps=D(5), cooldown_s=300)
    buys = [f for f in run.fills if f.side == "buy"]
    sells = [f for f in run.fills if f.side == "sell"]
    assert len(buys) >= 10 and len(sells) >= len(buys)
    for f in run.fills:
        assert f.fill_ts >= f.bar_ts + (60 if f.origin == "strategy" else 1)  # the next trade after the decision
        assert f.price >= f.market_price if f.side == "buy" else f.price <= f.market_price  # slippage against us
    reasons = {f.reason.split(":")[0] for f in sells}
    if spec.endswith("VolatilityBreakout"):
        assert {"time limit", "stop-loss", "take-profit", "trailing stop"} <= reasons
        assert all(f.origin == "exit_plan" for f in sells)
    else:
        assert {"back at the mean", "reverted", "stop-loss"} <= reasons
        assert any(f.intent == "partial_exit" for f in sells)
    # every exit-plan exit was decided at a close that really crossed its level
    entry = None
    for f in run.fills:
        if f.side == "buy":
            entry = f.price
        elif f.reason.startswith("stop-loss"):
            assert entry is not None and f.signal_price <= entry
        elif f.reason.startswith("take-profit"):
            assert entry is not None and f.signal_price >= entry * D("1.015")
    assert run.book is not None
    pos = run.book.position("KRW-BTC")
    assert pos.realized_pnl == sum((f.realized_pnl for f in run.fills), D(0))


_REFERENCE: dict[str, object] = {}


def _params(spec: str) -> dict[str, object]:
    return {"window": 5, "entry_bps": 0, "exit_bps": 0} if spec.endswith("SmaMomentum") else {}


def _reference(spec: str) -> Run:
    if spec not in _REFERENCE:
        _REFERENCE[spec] = run_pipeline((spec, _params(spec)), candle_bars(*WEEK), slippage_bps=D(5), cooldown_s=120)
    return _REFERENCE[spec]  # type: ignore[return-value]


@pytest.mark.parametrize("spec", BUILTINS)
def test_a_restart_before_every_fill_changes_nothing(spec: str) -> None:
    """Restarts between every decision and its fill: queued orders and open windows survive."""
    bars = candle_bars(*WEEK)
    reference = _reference(spec)
    index = {b.ts: i for i, b in enumerate(bars)}
    cuts = sorted({index[f.fill_ts] for f in reference.fills})
    again = run_pipeline((spec, _params(spec)), bars, restarts=cuts, slippage_bps=D(5), cooldown_s=120)
    assert len(cuts) > 20 and again.fills == reference.fills


@pytest.mark.parametrize("spec", BUILTINS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=8_111), min_size=1, max_size=3), batch=st.integers(1, 900))
def test_a_restart_anywhere_trades_exactly_like_an_uninterrupted_run(spec: str, cuts: list[int], batch: int) -> None:
    """Book restored from its positions, strategy warmed up from the stored bars: the same fills."""
    reference = _reference(spec)
    again = run_pipeline((spec, _params(spec)), candle_bars(*WEEK), batch=batch, restarts=cuts, slippage_bps=D(5),
                         cooldown_s=120)
    assert again.fills == reference.fills
    assert again.book is not None and reference.book is not None
    assert again.book.positions == reference.book.positions
