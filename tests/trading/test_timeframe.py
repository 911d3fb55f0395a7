"""``trading.timeframe``: timeframe parsing and the 1-second → timeframe bar roll-up."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.market import Bar, TradeSource
from trading.timeframe import BarRollup, format_timeframe, parse_timeframe, window_start


def _bar(ts: int, o: int, h: int, lo: int, c: int, v: str = "1", *, incomplete: bool = False) -> Bar:
    return Bar(market="KRW-BTC", ts=ts, open=Decimal(o), high=Decimal(h), low=Decimal(lo), close=Decimal(c),
               volume=Decimal(v), trade_count=2, source=TradeSource.CANDLES, incomplete=incomplete)


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1), ("1m", 60), ("5m", 300), ("15M", 900), ("1h", 3600),
                                               ("4h", 14_400), ("1d", 86_400), (60, 60), ("30", 30)])
def test_timeframes_parse(text: str | int, seconds: int) -> None:
    assert parse_timeframe(text) == seconds


@pytest.mark.parametrize("bad", ["", "7m", "0s", "1w", "m", -60, 0, True, "2d", 1.5])
def test_bad_timeframes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        parse_timeframe(bad)  # type: ignore[arg-type]


def test_format_uses_the_largest_exact_unit() -> None:
    assert [format_timeframe(s) for s in (1, 90, 300, 7200, 86_400)] == ["1s", "90s", "5m", "2h", "1d"]


def test_minute_bar_closes_with_its_last_second_or_the_next_window() -> None:
    r = BarRollup(market="KRW-BTC", period_s=60, observed_from=0)
    assert r.add(_bar(60, 10, 12, 9, 11)) == []
    assert r.add(_bar(90, 11, 15, 11, 14, "2")) == []
    [closed] = r.add(_bar(119, 14, 14, 8, 9))  # the window's last second: closes at once
    assert closed.trigger_ts == 119
    assert closed.bar == Bar(market="KRW-BTC", ts=60, open=Decimal(10), high=Decimal(15), low=Decimal(8),
                             close=Decimal(9), volume=Decimal(4), trade_count=6, source=TradeSource.CANDLES,
                             period_s=60)
    assert r.add(_bar(125, 9, 9, 9, 9)) == []
    [closed] = r.add(_bar(250, 9, 9, 9, 9))  # a later window: the trigger belongs to the next bar
    assert (closed.bar.ts, closed.bar.close, closed.trigger_ts) == (120, Decimal(9), 250)
    assert r.open_window == 240


def test_one_second_timeframe_passes_bars_through_at_once() -> None:
    r = BarRollup(market="KRW-BTC", period_s=1)
    bars = [_bar(5, 1, 2, 1, 2), _bar(9, 2, 3, 2, 3)]
    assert [c.bar for b in bars for c in r.add(b)] == bars


def test_first_window_is_incomplete_unless_observed_from_its_start() -> None:
    fresh = BarRollup(market="KRW-BTC", period_s=60)
    fresh.add(_bar(70, 1, 1, 1, 1))
    [first] = fresh.add(_bar(130, 1, 1, 1, 1))
    [second] = fresh.add(_bar(180, 1, 1, 1, 1))
    assert (first.bar.incomplete, second.bar.incomplete) == (True, False)

    at_start = BarRollup(market="KRW-BTC", period_s=60)
    at_start.add(_bar(60, 1, 1, 1, 1))
    assert not at_start.add(_bar(120, 1, 1, 1, 1))[0].bar.incomplete

    warmed = BarRollup(market="KRW-BTC", period_s=60, observed_from=60)
    warmed.add(_bar(70, 1, 1, 1, 1))
    assert not warmed.add(_bar(130, 1, 1, 1, 1))[0].bar.incomplete


def test_an_incomplete_second_makes_its_window_incomplete() -> None:
    r = BarRollup(market="KRW-BTC", period_s=60, observed_from=0)
    r.add(_bar(0, 1, 1, 1, 1))
    r.add(_bar(30, 1, 1, 1, 1, incomplete=True))
    assert r.add(_bar(60, 1, 1, 1, 1))[0].bar.incomplete


def test_out_of_order_or_foreign_bars_are_refused() -> None:
    r = BarRollup(market="KRW-BTC", period_s=60)
    r.add(_bar(10, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="time order"):
        r.add(_bar(10, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="KRW-ETH"):
        r.add(Bar(market="KRW-ETH", ts=20, open=Decimal(1), high=Decimal(1), low=Decimal(1), close=Decimal(1),
                  volume=Decimal(1), trade_count=1, source=TradeSource.CAPTURE))


_prices = st.integers(min_value=1, max_value=10_000)


@st.composite
def _second_bars(draw: st.DrawFn) -> list[Bar]:
    seconds = sorted(draw(st.sets(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=120)))
    bars = []
    for ts in seconds:
        o, c, a, b = (draw(_prices) for _ in range(4))
        bars.append(_bar(ts, o, max(o, c, a, b), min(o, c, a, b), c, str(draw(st.integers(1, 99)))))
    return bars


@settings(max_examples=150, deadline=None)
@given(bars=_second_bars(), period=st.sampled_from([1, 5, 60, 300, 900]))
def test_rollup_equals_a_group_by_of_the_1s_bars(bars: list[Bar], period: int) -> None:
    """Every window closes exactly once, with the OHLCV of a direct group-by over its seconds."""
    r = BarRollup(market="KRW-BTC", period_s=period, observed_from=0)
    rolled = [(c.bar, c.trigger_ts) for b in bars for c in r.add(b)]
    groups: dict[int, list[Bar]] = defaultdict(list)
    for b in bars:
        groups[window_start(b.ts, period)].append(b)
    last_window = window_start(bars[-1].ts, period)
    expected_closed = [w for w in sorted(groups) if w != last_window or bars[-1].ts == w + period - 1]
    assert [bar.ts for bar, _t in rolled] == expected_closed
    for bar, trigger in rolled:
        members = groups[bar.ts]
        assert (bar.open, bar.close) == (members[0].open, members[-1].close)
        assert bar.high == max(m.high for m in members) and bar.low == min(m.low for m in members)
        assert bar.volume == sum((m.volume for m in members), Decimal(0))
        assert bar.trade_count == sum(m.trade_count for m in members)
        assert bar.period_s == period and not bar.incomplete
        # complete at bar.ts + period; delivered with its last second or the next window's first bar
        assert trigger >= bar.ts + period - 1
        assert trigger == members[-1].ts or window_start(trigger, period) > bar.ts
