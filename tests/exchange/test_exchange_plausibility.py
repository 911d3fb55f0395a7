"""exchange.rules' plausibility checks, and REST answers that fail them (review finding 11)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import rules
from exchange.models import Account, TradeTick

TICK = {"market": "KRW-BTC", "timestamp": 1724538482500, "trade_price": Decimal("85534000.0"),
        "trade_volume": Decimal("0.00011691"), "ask_bid": "ASK", "sequential_id": 17245384825000002}


@pytest.mark.parametrize("market", ["KRW-BTC", "BTC-FCT2", "USDT-1INCH"])
def test_market_ids(market: str) -> None:
    assert rules.is_market_id(market) and rules.market_id_problem(market) is None
    assert rules.quote_currency(market) == market.partition("-")[0]


@pytest.mark.parametrize("market", ["KRW-", "-BTC", "KRW", "krw-btc", "KRW-btc", "KRW-B-C", "KRW-₿", "KRW-ＢＴＣ",
                                    "KRW BTC", " KRW-BTC", "KRW-BTC\n", "", None, 7])
def test_not_market_ids(market: object) -> None:
    assert not rules.is_market_id(market)
    assert "QUOTE-BASE" in (rules.market_id_problem(market) or "")
    if isinstance(market, str):
        with pytest.raises(ValueError, match="not an Upbit market id"):
            rules.quote_currency(market)


@pytest.mark.parametrize(("value", "problem"), [
    ("1E+400000", "too large"), ("1E+13", "too large"), ("1E-400000", "too small"), ("NaN", "not a finite"),
    ("Infinity", "not a finite"), ("-1", "must be positive"), ("0", "must be positive"),
    ("1.000000000000000000000000000000000001", "significant digits"),
])
def test_implausible_prices(value: str, problem: str) -> None:
    assert problem in (rules.price_problem(Decimal(value)) or "")


def test_plausible_prices_and_volumes() -> None:
    for value in ("85533000", "0.00000001", "1E+12", "1E-12", "3629000.0"):
        assert rules.price_problem(Decimal(value)) is None, value
    for value in ("0.00011691", "1E+15", "1E-12"):
        assert rules.volume_problem(Decimal(value)) is None, value
    assert "too large" in (rules.volume_problem(Decimal("1.1E+15")) or "")
    assert "must be positive" in (rules.volume_problem(Decimal(0)) or "")


@pytest.mark.parametrize(("ts", "problem"), [
    (1724538482, "looks like seconds, expected milliseconds (e.g. 1724538482000)"),
    (1724538482500123, "looks like microseconds"),
    (0, "not a plausible trade time"), (-5, "not a plausible trade time"),
    (rules.MAX_TS_MS, "not a plausible trade time"), (10**400, "not a plausible trade time"),
])
def test_implausible_trade_times(ts: int, problem: str) -> None:
    found = rules.epoch_ms_problem(ts)
    assert found is not None and problem in found and len(found) < 300


def test_historical_and_recent_times_are_fine() -> None:
    assert rules.epoch_ms_problem(rules.MIN_TS_MS) is None
    assert rules.epoch_ms_problem(1618678262000) is None  # the 2021 captures
    assert rules.epoch_ms_problem(rules.MAX_TS_MS - 1) is None


@pytest.mark.parametrize(("field", "value"), [
    ("trade_price", Decimal("1E+400000")), ("trade_volume", Decimal("1E+400000")), ("trade_price", Decimal("1E-30")),
    ("timestamp", 1724538482), ("market", "KRW-"), ("ask_bid", "SELL"), ("sequential_id", -1),
    ("trade_price", "NaN"), ("trade_price", 10**40),
])
def test_a_rest_trade_tick_that_is_no_trade_is_malformed(field: str, value: object) -> None:
    with pytest.raises(ValueError, match="not a plausible trade|not a finite number|sane magnitude"):
        TradeTick.from_json({**TICK, field: value})  # rest.py turns the ValueError into MalformedResponse


def test_every_rest_decimal_has_a_sane_magnitude() -> None:
    good = {"currency": "KRW", "balance": "1234567.5", "locked": "0", "unit_currency": "KRW"}
    assert Account.from_json(good).locked == 0
    for absurd in ("1E+400000", "1E-400000", "1" * 60):
        with pytest.raises(ValueError, match="sane magnitude"):
            Account.from_json({**good, "balance": absurd})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.decimals(allow_nan=True, allow_infinity=True), st.integers().map(Decimal),
                 st.from_regex(r"\A[+-]?[0-9]{1,8}(\.[0-9]{1,8})?[eE][+-]?[0-9]{1,7}\Z").map(Decimal)))
def test_whatever_the_number_a_check_answers_and_nothing_raises(value: Decimal) -> None:
    for check, other in ((rules.price_problem, rules.MAX_VOLUME), (rules.volume_problem, rules.MAX_PRICE)):
        problem = check(value)
        if problem is None:  # accepted: quantizing to 8 decimals and a whole-KRW total work in a default context
            assert value.is_finite() and Decimal("1e-12") <= value <= Decimal("1e15")
            value.quantize(Decimal("1e-8"))
            (value * other).quantize(Decimal(1))
        else:
            assert "allowed:" in problem or "significant digits" in problem
