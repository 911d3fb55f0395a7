"""upbit_sim.quotation, .tape and .markets: the public endpoints, served from the printed trades."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from model.market import Side, Trade, TradeSource
from exchange import rules
from tests.upbit_sim.conftest import MakeSim
from tests.upbit_sim.sim_client import SignedClient, error_name
from upbit_sim import SimServer
from upbit_sim.markets import load_market_capture

T0 = 1_767_571_200_000  # 2026-01-05 00:00:00 UTC


@pytest.fixture
def sim(make_sim: MakeSim) -> SimServer:
    """A simulator on which nothing has traded yet (overrides the shared fixture)."""
    return make_sim()


@pytest.fixture
def client(sim: SimServer) -> Iterator[SignedClient]:
    c = SignedClient(sim.rest_url)
    yield c
    c.close()


def _trade(price: str, ts_ms: int, volume: str = "1", seq: int = -1, market: str = "KRW-BTC") -> Trade:
    return Trade(market=market, ts_ms=ts_ms, price=D(price), volume=D(volume), side=Side.BID, seq=seq,
                 source=TradeSource.LIVE)


def test_market_all_is_the_recorded_list(client: SignedClient) -> None:
    recorded = load_market_capture()
    assert len(recorded) == 294 and recorded[0].market == "KRW-BTC"
    plain = client.public("/v1/market/all").json()
    assert [m["market"] for m in plain] == [m.market for m in recorded]
    assert plain[0] == {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}
    detailed = client.public("/v1/market/all", {"isDetails": "true"}).json()
    assert detailed[0]["market_event"]["warning"] is False
    assert set(detailed[0]["market_event"]["caution"]) >= {"PRICE_FLUCTUATIONS", "TRADING_VOLUME_SOARING"}


def test_ticker_from_printed_trades(sim: SimServer, client: SignedClient) -> None:
    sim.feed(_trade("100000000", T0 - 60_000))  # the previous UTC day's close
    sim.feed(_trade("101000000", T0 + 1000, "0.5"))
    sim.feed(_trade("99000000", T0 + 2000, "0.25"))
    (ticker,) = client.public("/v1/ticker", {"markets": "KRW-BTC"}).json()
    assert ticker["trade_price"] == 99000000 and isinstance(ticker["trade_price"], float)
    assert (ticker["opening_price"], ticker["high_price"], ticker["low_price"]) == (101000000, 101000000, 99000000)
    assert ticker["prev_closing_price"] == 100000000 and ticker["change"] == "FALL"
    assert ticker["signed_change_price"] == -1000000 and ticker["change_rate"] == 0.01
    assert ticker["acc_trade_volume"] == 0.75 and ticker["acc_trade_price"] == 75250000
    assert ticker["trade_date"] == "20260105" and ticker["trade_time"] == "000002"
    assert ticker["trade_date_kst"] == "20260105" and ticker["trade_time_kst"] == "090002"
    assert ticker["timestamp"] == T0 + 2000


def test_unknown_or_silent_codes_and_missing_parameters(client: SignedClient) -> None:
    unknown = client.public("/v1/ticker", {"markets": "KRW-NOPE"})
    assert (unknown.status_code, error_name(unknown)) == (404, 404)
    silent = client.public("/v1/ticker", {"markets": "KRW-ETH"})  # listed, but nothing printed yet
    assert silent.status_code == 404
    missing = client.public("/v1/ticker")
    assert (missing.status_code, error_name(missing)) == (400, 400)


def test_ticker_all_filters_by_quote(sim: SimServer, client: SignedClient) -> None:
    sim.print_trade("KRW-BTC", "100000000")
    sim.print_trade("BTC-ETH", "0.05")
    assert [t["market"] for t in client.public("/v1/ticker/all").json()] == ["KRW-BTC"]
    both = client.public("/v1/ticker/all", {"quote_currencies": "KRW,BTC"}).json()
    assert {t["market"] for t in both} == {"KRW-BTC", "BTC-ETH"}


def test_trades_ticks_newest_first_with_count_and_cursor(sim: SimServer, client: SignedClient) -> None:
    for i in range(5):
        sim.feed(_trade(str(100000000 + i * 1000), T0 + i * 1000, seq=1000 + i))
    ticks = client.public("/v1/trades/ticks", {"market": "KRW-BTC", "count": 3}).json()
    assert [t["sequential_id"] for t in ticks] == [1004, 1003, 1002]
    assert ticks[0]["trade_date_utc"] == "2026-01-05" and ticks[0]["trade_time_utc"] == "00:00:04"
    assert ticks[0]["ask_bid"] == "BID" and ticks[0]["trade_price"] == 100004000
    older = client.public("/v1/trades/ticks", {"market": "KRW-BTC", "count": 2, "cursor": 1002}).json()
    assert [t["sequential_id"] for t in older] == [1001, 1000]
    assert client.public("/v1/trades/ticks", {"market": "KRW-BTC", "count": 501}).status_code == 400


def test_minute_candles_aggregate_newest_first(sim: SimServer, client: SignedClient) -> None:
    prices = ["100000000", "102000000", "99000000", "101000000", "103000000", "98000000"]
    for minute, price in enumerate(prices):  # one trade a minute from 00:00
        sim.feed(_trade(price, T0 + minute * 60_000 + 5_000, "0.1"))
    ones = client.public("/v1/candles/minutes/1", {"market": "KRW-BTC", "count": 2}).json()
    assert [c["candle_date_time_utc"] for c in ones] == ["2026-01-05T00:05:00", "2026-01-05T00:04:00"]
    assert ones[0]["candle_date_time_kst"] == "2026-01-05T09:05:00" and ones[0]["unit"] == 1
    fives = client.public("/v1/candles/minutes/5", {"market": "KRW-BTC", "count": 2,
                                                    "to": "2026-01-05 00:10:00"}).json()
    assert [c["candle_date_time_utc"] for c in fives] == ["2026-01-05T00:05:00", "2026-01-05T00:00:00"]
    first = fives[1]
    assert (first["opening_price"], first["high_price"], first["low_price"], first["trade_price"]) == (
        100000000, 103000000, 99000000, 103000000)
    assert first["candle_acc_trade_volume"] == 0.5
    before = client.public("/v1/candles/minutes/1", {"market": "KRW-BTC", "count": 200,
                                                     "to": "2026-01-05T09:02:00+09:00"}).json()
    assert [c["candle_date_time_utc"] for c in before][:2] == ["2026-01-05T00:01:00", "2026-01-05T00:00:00"]
    assert client.public("/v1/candles/minutes/7", {"market": "KRW-BTC"}).status_code == 404
    assert client.public("/v1/candles/minutes/1", {"market": "KRW-BTC", "count": 201}).status_code == 400


def test_orderbook_is_on_the_tick_grid(sim: SimServer, client: SignedClient) -> None:
    sim.print_trade("KRW-BTC", "100000000")
    (book,) = client.public("/v1/orderbook", {"markets": "KRW-BTC"}).json()
    units = book["orderbook_units"]
    assert len(units) == 30 and units[0]["ask_price"] == 100001000 and units[0]["bid_price"] == 100000000
    for unit in units:
        for key in ("ask_price", "bid_price"):
            assert rules.is_valid_price(D(repr(unit[key])).normalize(), market="KRW-BTC")
    assert book["total_ask_size"] == sum(u["ask_size"] for u in units)
    (small,) = client.public("/v1/orderbook", {"markets": "KRW-BTC", "count": 5}).json()
    assert len(small["orderbook_units"]) == 5
    (instrument,) = client.public("/v1/orderbook/instruments", {"markets": "KRW-BTC"}).json()
    assert instrument == {"market": "KRW-BTC", "quote_currency": "KRW", "tick_size": "1000", "supported_levels": [0]}


def test_orderbook_crosses_tick_bands_correctly(sim: SimServer, client: SignedClient) -> None:
    sim.print_trade("KRW-XRP", "1002")  # 1,000-5,000 band: tick 1; below 1,000 the tick is 1 too (2025 table)
    sim.print_trade("KRW-ETH", "10020")  # crosses from the 10 KRW band into the 5 KRW band
    (book,) = client.public("/v1/orderbook", {"markets": "KRW-ETH", "count": 10}).json()
    bids = [u["bid_price"] for u in book["orderbook_units"]]
    assert bids[:5] == [10020, 10010, 10000, 9995, 9990]
