"""Fidelity: ccxt's ``upbit`` — an independent, widely used client — runs unchanged against the simulator.

Only its base URLs are pointed at the simulator. ccxt signs with HS256, hashes ``rawencode`` of
the parameters, sends GET/DELETE parameters percent-encoded in the URL and POST parameters as
JSON; it parses the exchange's answers with its own ``parse_order``/``parse_balance``.
"""

from __future__ import annotations

from collections.abc import Iterator

import decimal

import ccxt
import pytest

from tests.upbit_sim.conftest import ACCESS, SECRET
from upbit_sim import SimServer


@pytest.fixture(autouse=True)
def _decimal_context_given_back() -> Iterator[None]:
    """ccxt's number formatting sets the calling thread's decimal context (its rounding): give it back,
    or every later test in this thread formats money with ccxt's rounding."""
    with decimal.localcontext():
        yield


@pytest.fixture
def exchange(sim: SimServer) -> Iterator[ccxt.upbit]:
    ex = ccxt.upbit({
        "apiKey": ACCESS,
        "secret": SECRET,
        "urls": {"api": {"public": sim.rest_url, "private": sim.rest_url}},
        "enableRateLimit": True,
        "timeout": 5000,
    })
    yield ex
    ex.session.close()


def test_balance(exchange: ccxt.upbit) -> None:
    balance = exchange.fetch_balance()
    assert balance["KRW"] == {"free": 10_000_000.0, "used": 0.0, "total": 10_000_000.0}
    assert balance["BTC"]["free"] == 1.0


def test_limit_order_fetch_open_fetch_cancel(exchange: ccxt.upbit) -> None:
    placed = exchange.create_order("BTC/KRW", "limit", "buy", 0.01, 99_000_000, {"clientOrderId": "ccxt-1"})
    assert placed["status"] == "open" and placed["clientOrderId"] == "ccxt-1"
    assert placed["amount"] == 0.01 and placed["price"] == 99_000_000
    (open_order,) = exchange.fetch_open_orders("BTC/KRW")
    assert open_order["id"] == placed["id"] and open_order["remaining"] == 0.01
    fetched = exchange.fetch_order(placed["id"])
    assert fetched["status"] == "open" and fetched["symbol"] == "BTC/KRW" and fetched["side"] == "buy"
    assert exchange.fetch_balance()["KRW"]["used"] == 990_495.0
    cancelled = exchange.cancel_order(placed["id"])
    assert cancelled["id"] == placed["id"] and cancelled["status"] == "open"  # as accepted: state wait
    assert exchange.fetch_order(placed["id"])["status"] == "canceled"
    assert exchange.fetch_open_orders("BTC/KRW") == []
    assert exchange.fetch_balance()["KRW"]["used"] == 0.0


def test_market_buy_and_sell_fill_at_the_next_trade(sim: SimServer, exchange: ccxt.upbit) -> None:
    buy = exchange.create_order("BTC/KRW", "market", "buy", 0.001, 100_000_000)  # cost = amount x price
    assert buy["type"] == "market" and buy["cost"] == 100_000
    sim.print_trade("KRW-BTC", "100000000", "1")
    bought = exchange.fetch_order(buy["id"])
    assert bought["status"] == "closed" and bought["filled"] == 0.001 and bought["cost"] == 100_000
    assert bought["fee"]["currency"] == "KRW" and float(bought["fee"]["cost"]) == 50.0
    assert bought["average"] == 100_000_000
    sell = exchange.create_order("BTC/KRW", "market", "sell", 0.001)
    sim.print_trade("KRW-BTC", "101000000", "1")
    sold = exchange.fetch_order(sell["id"])
    assert sold["status"] == "closed" and sold["filled"] == 0.001 and sold["cost"] == 101_000
    balance = exchange.fetch_balance()
    assert balance["BTC"]["total"] == 1.0
    assert balance["KRW"]["total"] == 10_000_000 - 100_050 + 101_000 - 50.5


def test_limit_fill_is_seen_through_fetch_order(sim: SimServer, exchange: ccxt.upbit) -> None:
    placed = exchange.create_order("BTC/KRW", "limit", "sell", 0.02, 101_000_000)
    sim.print_trade("KRW-BTC", "101500000", "1")
    filled = exchange.fetch_order(placed["id"])
    assert filled["status"] == "closed" and filled["filled"] == 0.02 and filled["cost"] == 2_020_000
    assert len(filled["trades"]) == 1 and filled["trades"][0]["price"] == 101_000_000


def test_refusals_map_to_ccxt_exceptions(exchange: ccxt.upbit) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order("BTC/KRW", "limit", "buy", 1, 99_000_000)
    with pytest.raises(ccxt.ExchangeError, match="invalid_price_bid"):
        exchange.create_order("BTC/KRW", "limit", "buy", 0.01, 99_000_500)
    with pytest.raises(ccxt.OrderNotFound):
        exchange.fetch_order("00000000-0000-4000-8000-000000000000")


def test_test_orders_and_public_endpoints(sim: SimServer, exchange: ccxt.upbit) -> None:
    answer = exchange.create_order("BTC/KRW", "limit", "buy", 0.01, 99_000_000, {"test": True})
    assert answer["status"] == "open"
    assert exchange.fetch_open_orders("BTC/KRW") == []
    assert exchange.fetch_ticker("BTC/KRW")["last"] == 100_000_000
    book = exchange.fetch_order_book("BTC/KRW")
    assert book["asks"][0][0] > book["bids"][0][0]
    assert exchange.fetch_trades("BTC/KRW", limit=1)[0]["price"] == 100_000_000
    assert exchange.fetch_ohlcv("BTC/KRW", "1m", limit=1)[0][4] == 100_000_000
