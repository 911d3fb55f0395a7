"""model.instruments: venue-qualified ids parse, print and refuse what is not one."""

from __future__ import annotations

import pytest

from model.instruments import InstrumentId, Venue


@pytest.mark.parametrize(("text", "venue", "symbol"), [
    ("KRW-BTC", Venue.UPBIT, "KRW-BTC"),
    ("upbit:KRW-ETH", Venue.UPBIT, "KRW-ETH"),
    ("binance:BTCUSDT", Venue.BINANCE, "BTCUSDT"),
    ("binance-usdm:BTCUSDT", Venue.BINANCE_USDM, "BTCUSDT"),
])
def test_parse_and_print(text: str, venue: Venue, symbol: str) -> None:
    parsed = InstrumentId.parse(text)
    assert (parsed.venue, parsed.symbol) == (venue, symbol)
    assert InstrumentId.parse(str(parsed)) == parsed
    assert str(parsed) == f"{venue}:{symbol}"


def test_spot_and_futures_are_different_instruments() -> None:
    assert InstrumentId.parse("binance:BTCUSDT") != InstrumentId.parse("binance-usdm:BTCUSDT")


@pytest.mark.parametrize("text", ["KRW-", "krw-btc", "upbit:BTCUSDT", "binance:KRW-BTC", "kraken:XBTUSD", "", ":"])
def test_what_is_not_an_instrument_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        InstrumentId.parse(text)
