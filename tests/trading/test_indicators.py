"""``trading.indicators``: each incremental indicator equals a direct computation over the same bars."""

from __future__ import annotations

import statistics
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.indicators import RollingMax, RollingMean, RollingMin, RollingStd, Rsi, rsi_from

_values = st.lists(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(200_000_000), places=4,
                               allow_nan=False, allow_infinity=False), min_size=1, max_size=150)
_windows = st.integers(min_value=2, max_value=30)


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= Decimal("1e-18") * max(Decimal(1), abs(b))


@settings(max_examples=200, deadline=None)
@given(values=_values, window=_windows)
def test_rolling_mean_max_min(values: list[Decimal], window: int) -> None:
    mean, hi, lo = RollingMean(window), RollingMax(window), RollingMin(window)
    for i, x in enumerate(values):
        got = (mean.update(x), hi.update(x), lo.update(x))
        if i + 1 < window:
            assert got == (None, None, None)
            continue
        last = values[i + 1 - window : i + 1]
        assert got[0] == sum(last, Decimal(0)) / window
        assert got[1:] == (max(last), min(last))


@settings(max_examples=200, deadline=None)
@given(values=_values, window=_windows)
def test_rolling_std_is_the_population_std(values: list[Decimal], window: int) -> None:
    std = RollingStd(window)
    for i, x in enumerate(values):
        got = std.update(x)
        if i + 1 < window:
            assert got is None
            continue
        last = values[i + 1 - window : i + 1]
        assert std.mean == sum(last, Decimal(0)) / window
        assert _close(got, statistics.pstdev(last))  # type: ignore[arg-type]


def _direct_rsi(closes: list[Decimal], window: int) -> Decimal:
    changes = [b - a for a, b in zip(closes, closes[1:], strict=False)][-window:]
    gain = sum((c for c in changes if c > 0), Decimal(0)) / window
    loss = sum((-c for c in changes if c < 0), Decimal(0)) / window
    if loss == 0:
        return Decimal(100) if gain > 0 else Decimal(50)
    return 100 - 100 / (1 + gain / loss)


@settings(max_examples=200, deadline=None)
@given(values=_values, window=st.integers(min_value=1, max_value=30))
def test_rsi_is_cutlers_rsi_over_the_window(values: list[Decimal], window: int) -> None:
    rsi = Rsi(window)
    for i, x in enumerate(values):
        got = rsi.update(x)
        if i < window:
            assert got is None
            continue
        assert _close(got, _direct_rsi(values[: i + 1], window))  # type: ignore[arg-type]
        assert 0 <= got <= 100  # type: ignore[operator]


def test_rsi_edges() -> None:
    assert rsi_from(Decimal(0), Decimal(0)) == 50
    assert rsi_from(Decimal(1), Decimal(0)) == 100
    assert rsi_from(Decimal(0), Decimal(1)) == 0
    assert rsi_from(Decimal(1), Decimal(1)) == 50


@pytest.mark.parametrize("cls", [RollingMean, RollingMax, RollingMin, Rsi])
def test_windows_must_be_positive_integers(cls: type) -> None:
    with pytest.raises(ValueError, match="window"):
        cls(0)
    with pytest.raises(ValueError, match="window"):
        RollingStd(1)
