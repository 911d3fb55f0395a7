"""exchange.rules: tick tables by date, rounding properties, minimums, order field rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import rules
from exchange.rules import (
    MIN_ORDER_TOTAL_KRW,
    VOLUME_DECIMALS,
    check_order,
    fee_rate,
    is_valid_price,
    min_order_total,
    round_price,
    round_volume,
    tick_size,
)

AT_2021 = datetime(2021, 6, 1, tzinfo=UTC)
AT_2024 = datetime(2024, 6, 1, tzinfo=UTC)
AT_2025 = datetime(2025, 9, 1, tzinfo=UTC)

prices = st.decimals(min_value=D("0.00000001"), max_value=D("10000000000"), places=8,
                     allow_nan=False, allow_infinity=False)
instants = st.sampled_from([AT_2021, AT_2024, datetime(2024, 11, 1, tzinfo=UTC),
                            datetime(2025, 4, 1, tzinfo=UTC), AT_2025])
markets = st.sampled_from(["KRW-BTC", "KRW-ADA", "KRW-USDT", "BTC-ETH", "USDT-BTC"])
sides = st.sampled_from(["bid", "ask"])


# ---- tables -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("price", "tick"), [
    ("3000000", "1000"), ("2000000", "1000"), ("1999999", "1000"), ("1000000", "1000"),
    ("999999", "500"), ("500000", "500"), ("499999", "100"), ("100000", "100"), ("99999", "50"),
    ("50000", "50"), ("49999", "10"), ("10000", "10"), ("9999", "5"), ("5000", "5"), ("4999", "1"),
    ("1000", "1"), ("999", "1"), ("100", "1"), ("99.99", "0.01"), ("10", "0.01"), ("9.999", "0.001"),
    ("1", "0.001"), ("0.5", "0.0001"), ("0.05", "0.00001"), ("0.005", "0.000001"),
    ("0.0005", "0.0000001"), ("0.00005", "0.00000001"),
])
def test_krw_table_since_2025_07_31(price: str, tick: str) -> None:
    assert tick_size(D(price), at=AT_2025) == D(tick)


@pytest.mark.parametrize(("price", "tick"), [
    ("2000000", "1000"), ("1999000", "500"), ("1000000", "500"), ("999999", "100"), ("500000", "100"),
    ("499999", "50"), ("100000", "50"), ("99999", "10"), ("10000", "10"), ("9999", "1"), ("1000", "1"),
    ("999", "0.1"), ("100", "0.1"), ("99", "0.01"), ("5", "0.001"), ("0.5", "0.0001"),
    ("0.00005", "0.00000001"),
])
def test_krw_table_2024(price: str, tick: str) -> None:
    assert tick_size(D(price), at=AT_2024) == D(tick)


@pytest.mark.parametrize(("price", "tick"), [
    ("2000000", "1000"), ("1000000", "500"), ("500000", "100"), ("100000", "50"), ("10000", "10"),
    ("9999", "5"), ("1000", "5"), ("999", "1"), ("100", "1"), ("99", "0.1"), ("10", "0.1"),
    ("9", "0.01"), ("1", "0.01"), ("0.5", "0.001"), ("0.05", "0.0001"),
])
def test_krw_table_before_2024(price: str, tick: str) -> None:
    assert tick_size(D(price), at=AT_2021) == D(tick)


def test_table_switches_at_the_documented_instants() -> None:
    # 2024-01-29 00:00 KST is 2024-01-28 15:00 UTC.
    assert tick_size(D(5000), at=datetime(2024, 1, 28, 14, 59, tzinfo=UTC)) == 5
    assert tick_size(D(5000), at=datetime(2024, 1, 28, 15, 0, tzinfo=UTC)) == 1
    # 2025-07-31 00:00 KST.
    assert tick_size(D(1500000), at=datetime(2025, 7, 30, 14, 59, tzinfo=UTC)) == 500
    assert tick_size(D(1500000), at=datetime(2025, 7, 30, 15, 0, tzinfo=UTC)) == 1000
    # A naive instant is read as UTC.
    assert tick_size(D(1500000), at=datetime(2025, 7, 30, 15, 0)) == 1000


def test_sixteen_coins_and_stablecoins_between_the_changes() -> None:
    oct_2024 = datetime(2024, 11, 1, tzinfo=UTC)
    assert tick_size(D(500), market="KRW-ADA", at=oct_2024) == 1
    assert tick_size(D(500), market="KRW-XRP", at=oct_2024) == D("0.1")
    assert tick_size(D(500), market="KRW-ADA", at=datetime(2024, 9, 1, tzinfo=UTC)) == D("0.1")
    apr_2025 = datetime(2025, 4, 1, tzinfo=UTC)
    assert tick_size(D(1400), market="KRW-USDT", at=apr_2025) == D("0.5")
    assert tick_size(D(1400), market="KRW-USDC", at=apr_2025) == D("0.5")
    assert tick_size(D(1400), market="KRW-XRP", at=apr_2025) == 1
    assert tick_size(D(1400), market="KRW-USDT", at=datetime(2025, 3, 1, tzinfo=UTC)) == 1
    # The documented 2025 table has no exception (UNCONFIRMED whether one survives).
    assert tick_size(D(1400), market="KRW-USDT", at=AT_2025) == 1


def test_btc_and_usdt_markets() -> None:
    assert tick_size(D("0.0312"), market="BTC-ETH") == D("0.00000001")
    assert tick_size(D("65000"), market="USDT-BTC", at=AT_2025) == D("0.01")
    assert tick_size(D("5"), market="USDT-XRP", at=AT_2025) == D("0.001")
    assert tick_size(D("0.5"), market="USDT-DOGE", at=AT_2025) == D("0.0001")
    assert tick_size(D("65000"), market="USDT-BTC", at=AT_2024) == D("0.001")  # flat before 2024-08-19
    assert min_order_total("BTC-ETH", at=AT_2025) == D("0.00005")
    assert min_order_total("BTC-ETH", at=AT_2024) == D("0.0005")
    assert min_order_total("USDT-BTC", at=AT_2025) == D("0.5")
    assert min_order_total("KRW-BTC") == MIN_ORDER_TOTAL_KRW == 5000


def test_fees_and_constants() -> None:
    assert fee_rate("KRW-BTC") == D("0.0005")
    assert fee_rate("BTC-ETH") == D("0.0025")
    assert VOLUME_DECIMALS == 8


def test_bad_markets_and_prices_are_refused() -> None:
    for market in ("krw-btc", "KRWBTC", "EUR-BTC", "-BTC"):
        with pytest.raises(ValueError, match="market"):
            tick_size(D(1), market=market)
    with pytest.raises(ValueError, match="positive"):
        tick_size(D(0))
    with pytest.raises(TypeError):
        tick_size(100.0)  # type: ignore[arg-type]
    assert not is_valid_price(D(0))
    assert not is_valid_price(D("NaN"))
    with pytest.raises(ValueError, match="smallest tick"):
        round_price(D("0.000000001"), side="bid")


# ---- rounding ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("price", "side", "at", "expected"), [
    ("999999", "ask", AT_2025, "1000000"),   # crosses up into the 1,000 band, lands on its edge
    ("999999", "bid", AT_2025, "999500"),
    ("1000000", "bid", AT_2025, "1000000"),  # exactly on an edge: unchanged
    ("1000000", "ask", AT_2025, "1000000"),
    ("1000001", "bid", AT_2025, "1000000"),
    ("1000001", "ask", AT_2025, "1001000"),
    ("1000001", "ask", AT_2024, "1000500"),
    ("9999.5", "ask", AT_2024, "10000"),
    ("9999.5", "bid", AT_2024, "9999"),
    ("9999.5", "ask", AT_2021, "10000"),
    ("9999.5", "bid", AT_2021, "9995"),
    ("99.999", "ask", AT_2025, "100"),
    ("99.999", "bid", AT_2025, "99.99"),
])
def test_round_price_examples(price: str, side: rules.Side, at: datetime, expected: str) -> None:
    assert round_price(D(price), side=side, at=at) == D(expected)


@settings(max_examples=400, deadline=None)
@given(price=prices, side=sides, market=markets, at=instants)
def test_rounded_prices_are_valid_directional_and_idempotent(price: D, side: rules.Side, market: str,
                                                               at: datetime) -> None:
    try:
        rounded = round_price(price, side=side, market=market, at=at)
    except ValueError:
        assert side == "bid"
        assert price < tick_size(price, market=market, at=at)
        return
    assert is_valid_price(rounded, market=market, at=at)
    if side == "bid":
        assert rounded <= price
    else:
        assert rounded >= price
    assert round_price(rounded, side=side, market=market, at=at) == rounded
    assert round_price(rounded, side="bid" if side == "ask" else "ask", market=market, at=at) == rounded
    if is_valid_price(price, market=market, at=at):
        assert rounded == price


@settings(max_examples=300, deadline=None)
@given(price=prices, market=markets, at=instants)
def test_rounding_finds_the_nearest_valid_price(price: D, market: str, at: datetime) -> None:
    """No valid price lies strictly between the bid-rounded and ask-rounded prices."""
    up = round_price(price, side="ask", market=market, at=at)
    try:
        down = round_price(price, side="bid", market=market, at=at)
    except ValueError:
        return
    if up == down:
        assert is_valid_price(price, market=market, at=at)
        return
    nxt = round_price(down + tick_size(down, market=market, at=at), side="ask", market=market, at=at)
    assert nxt == up


@settings(max_examples=200, deadline=None)
@given(price=prices)
def test_every_new_table_price_in_the_big_bands_was_valid_before(price: D) -> None:
    """Above 10,000 KRW the 2025 table only coarsened the grid, so its prices were valid in 2024."""
    if price < 10000:
        return
    new = round_price(price, side="bid", at=AT_2025)
    assert is_valid_price(new, at=AT_2024)


@settings(max_examples=200, deadline=None)
@given(volume=st.decimals(min_value=0, max_value=D("1e9"), places=12, allow_nan=False))
def test_round_volume_truncates_to_eight_places(volume: D) -> None:
    rounded = round_volume(volume)
    assert rounded <= volume
    assert volume - rounded < D("0.00000001")
    assert rounded.as_tuple().exponent >= -VOLUME_DECIMALS  # type: ignore[operator]
    assert round_volume(rounded) == rounded


# ---- check_order ------------------------------------------------------------------------------

def _check(**kw: object) -> list[str]:
    base: dict[str, object] = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit",
                               "price": D("100000000"), "volume": D("0.001"), "at": AT_2025}
    base.update(kw)
    return check_order(**base)  # type: ignore[arg-type]


def test_a_valid_limit_order_has_no_problems() -> None:
    assert _check() == []
    assert _check(side="ask") == []
    assert _check(time_in_force="post_only") == []
    assert _check(time_in_force="ioc") == []


def test_limit_order_problems_are_named() -> None:
    (problem,) = _check(price=D("100000500"))
    assert "not a multiple of the 1000 KRW tick" in problem
    assert "100000000" in problem and "100001000" in problem
    (problem,) = _check(price=D("100000000"), volume=D("0.00001"))
    assert "under the 5000 KRW minimum" in problem
    (problem,) = _check(volume=D("0.123456789"))
    assert "more than 8 decimal places" in problem
    (problem,) = _check(volume=D("20"))
    assert "over the" in problem
    assert any("needs volume" in p for p in _check(volume=None))
    assert any("needs price" in p for p in _check(price=None))
    assert any("positive" in p for p in _check(price=D(-1)))


def test_market_order_field_rules() -> None:
    assert _check(ord_type="price", price=D(10000), volume=None) == []
    assert _check(ord_type="market", side="ask", price=None, volume=D("0.01")) == []
    problems = _check(ord_type="price", price=D(10000), volume=D("0.01"))
    assert any("must not send volume" in p for p in problems)
    problems = _check(ord_type="market", side="ask", price=D(100), volume=D("0.01"))
    assert any("must not send price" in p for p in problems)
    assert any("for bids only" in p for p in _check(ord_type="price", side="ask", price=D(10000), volume=None))
    assert any("for asks only" in p for p in _check(ord_type="market", side="bid", price=None, volume=D(1)))
    assert any("under the 5000" in p for p in _check(ord_type="price", price=D(4999), volume=None))
    # A market buy's total is an amount, not a price on the tick grid.
    assert _check(ord_type="price", price=D(12345), volume=None) == []


def test_best_orders_need_ioc_or_fok() -> None:
    assert _check(ord_type="best", price=D(10000), volume=None, time_in_force="ioc") == []
    assert _check(ord_type="best", side="ask", price=None, volume=D("0.01"), time_in_force="fok") == []
    assert any("ioc' or 'fok" in p for p in _check(ord_type="best", price=D(10000), volume=None))
    assert any("post_only" in p for p in _check(ord_type="best", price=D(10000), volume=None,
                                                  time_in_force="post_only"))
    assert any("only for limit or best" in p for p in _check(ord_type="price", price=D(10000), volume=None,
                                                              time_in_force="ioc"))


def test_unknown_fields_values_are_reported() -> None:
    assert any("side" in p for p in _check(side="buy"))
    assert any("ord_type" in p for p in _check(ord_type="stop"))
    assert any("time_in_force" in p for p in _check(time_in_force="gtc"))
    assert any("market" in p for p in _check(market="BTC"))


def test_check_order_uses_the_rules_of_the_time() -> None:
    # 1,500,500 KRW: on the 500 grid of 2024, off the 1,000 grid of 2025.
    assert _check(price=D(1500500), volume=D("0.01"), at=AT_2024) == []
    assert _check(price=D(1500500), volume=D("0.01"), at=AT_2025) != []
    # 2021: 5 KRW steps between 1,000 and 10,000.
    assert _check(price=D(5001), volume=D(1), at=AT_2021) != []
    assert _check(price=D(5001), volume=D(1), at=AT_2024) == []
