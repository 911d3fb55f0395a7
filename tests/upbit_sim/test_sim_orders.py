"""upbit_sim.orders and upbit_sim.venue over HTTP: field rules, market rules, locks, identifiers, lookups."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from model.clock import FakeClock
from tests.upbit_sim.conftest import ACCESS, OTHER_ACCESS, OTHER_SECRET
from tests.upbit_sim.sim_client import SignedClient, error_name
from upbit_sim import SimServer

LIMIT_BID = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "90000000", "volume": "0.01"}


def _refusal(client: SignedClient, **body: Any) -> tuple[int, object]:
    response = client.post("/v1/orders", body)
    return response.status_code, error_name(response) if response.status_code >= 400 else None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"side": "bid", "ord_type": "limit", "price": "1", "volume": "1"}, "validation_error"),  # no market
        ({"market": "KRW-BTC", "ord_type": "limit", "price": "1", "volume": "1"}, "validation_error"),  # no side
        ({"market": "KRW-BTC", "side": "buy", "ord_type": "limit", "price": "1", "volume": "1"}, "validation_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "stop", "price": "1", "volume": "1"}, "validation_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "volume": "1"}, "validation_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "90000000"}, "validation_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "abc", "volume": "1"}, "validation_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "-1", "volume": "1"}, "validation_error"),
        # price: market buy by total, bids only, no volume
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "price", "price": "10000"}, "create_ask_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "10000", "volume": "1"},
         "create_bid_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "price"}, "validation_error"),
        # market: market sell by volume, asks only, no price
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "market", "volume": "0.01"}, "create_bid_error"),
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "market", "volume": "0.01", "price": "100"},
         "create_ask_error"),
        # best: needs ioc/fok; bid by total, ask by volume
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "best", "price": "10000"}, "create_bid_error"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "best", "price": "10000", "time_in_force": "post_only"},
         "create_bid_error"),
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "best", "price": "100", "volume": "0.01",
          "time_in_force": "ioc"}, "create_ask_error"),
        # time_in_force combinations
        ({**LIMIT_BID, "time_in_force": "gtc"}, "validation_error"),
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "market", "volume": "0.01", "time_in_force": "ioc"},
         "create_ask_error"),
        ({**LIMIT_BID, "time_in_force": "post_only", "smp_type": "cancel_maker"}, "create_bid_error"),
        ({**LIMIT_BID, "smp_type": "sometimes"}, "validation_error"),
        # market rules
        ({**LIMIT_BID, "price": "90000500"}, "invalid_price_bid"),  # KRW-BTC ticks are 1,000 KRW
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "limit", "price": "90000500", "volume": "0.01"},
         "invalid_price_ask"),
        ({**LIMIT_BID, "volume": "0.00005"}, "under_min_total_bid"),  # 4,500 KRW < 5,000
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "4999"}, "under_min_total_bid"),
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "market", "volume": "0.00004"}, "under_min_total_ask"),
        ({**LIMIT_BID, "volume": "0.000000001"}, "create_bid_error"),  # more than 8 decimals
        ({**LIMIT_BID, "volume": "20"}, "create_bid_error"),  # 1.8e9 KRW > the 1e9 maximum
        ({**LIMIT_BID, "market": "KRW-NOPE"}, "validation_error"),
        # funds: 10,000,000 KRW and 1 BTC
        ({**LIMIT_BID, "volume": "0.2"}, "insufficient_funds_bid"),
        ({"market": "KRW-BTC", "side": "ask", "ord_type": "market", "volume": "1.5"}, "insufficient_funds_ask"),
        ({"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "9999999"}, "insufficient_funds_bid"),
    ],
)
def test_order_rules(client: SignedClient, body: dict[str, str], expected: str) -> None:
    before = client.accounts()
    assert _refusal(client, **body) == (400, expected)
    assert client.accounts() == before  # nothing locked, nothing created
    assert client.get("/v1/orders/open").json() == []


def test_limit_bid_locks_total_plus_fee_and_answers_like_upbit(sim: SimServer, client: SignedClient) -> None:
    order = client.order(**LIMIT_BID, identifier="bid-1")
    assert order["state"] == "wait" and order["ord_type"] == "limit" and order["side"] == "bid"
    assert order["price"] == "90000000" and order["volume"] == "0.01" and order["remaining_volume"] == "0.01"
    assert order["reserved_fee"] == "450" and order["remaining_fee"] == "450" and order["paid_fee"] == "0"
    assert order["locked"] == "900450" and order["executed_volume"] == "0" and order["trades_count"] == 0
    assert order["identifier"] == "bid-1" and order["created_at"].endswith("+09:00")
    krw = client.accounts()["KRW"]
    assert (krw["balance"], krw["locked"]) == ("9099550", "900450")
    assert sim.holding(ACCESS, "KRW").locked == D("900450")


def test_ask_locks_volume_and_market_buy_locks_total_plus_fee(client: SignedClient) -> None:
    ask = client.order(market="KRW-BTC", side="ask", ord_type="limit", price="110000000", volume="0.3")
    assert ask["locked"] == "0.3" and ask["reserved_fee"] == "0"
    buy = client.order(market="KRW-BTC", side="bid", ord_type="price", price="100000")
    assert buy["price"] == "100000" and buy["volume"] is None and buy["remaining_volume"] is None
    assert buy["locked"] == "100050" and buy["reserved_fee"] == "50"
    accounts = client.accounts()
    assert (accounts["BTC"]["balance"], accounts["BTC"]["locked"]) == ("0.7", "0.3")
    assert accounts["KRW"]["locked"] == "100050"
    assert accounts["KRW"]["unit_currency"] == "KRW" and "avg_buy_price" in accounts["BTC"]


def test_identifier_is_unique_forever_even_after_an_error(client: SignedClient) -> None:
    first = client.order(**LIMIT_BID, identifier="id-1")
    assert _refusal(client, **LIMIT_BID, identifier="id-1") == (400, "duplicate_identifier")
    client.delete("/v1/order", {"uuid": first["uuid"]})
    assert _refusal(client, **LIMIT_BID, identifier="id-1") == (400, "duplicate_identifier")  # after cancel too
    assert _refusal(client, **{**LIMIT_BID, "price": "1"}, identifier="id-2") == (400, "under_min_total_bid")
    assert _refusal(client, **LIMIT_BID, identifier="id-2") == (400, "duplicate_identifier")  # burned by the error
    other = SignedClient(client.base_url, OTHER_ACCESS, OTHER_SECRET)
    assert _refusal(other, **LIMIT_BID, identifier="id-1") == (400, "insufficient_funds_bid")  # per user


def test_order_test_validates_but_creates_nothing(client: SignedClient) -> None:
    before = client.accounts()
    answer = client.post("/v1/orders/test", {**LIMIT_BID, "identifier": "t-1"})
    assert answer.status_code == 201 and answer.json()["state"] == "wait"
    assert client.accounts() == before
    assert client.get("/v1/orders/open").json() == []
    assert error_name(client.get("/v1/order", {"uuid": answer.json()["uuid"]})) == "order_not_found"
    assert error_name(client.get("/v1/order", {"identifier": "t-1"})) == "order_not_found"
    assert error_name(client.post("/v1/orders/test", {**LIMIT_BID, "price": "1"})) == "under_min_total_bid"
    assert error_name(client.post("/v1/orders/test", {**LIMIT_BID, "volume": "5"})) == "insufficient_funds_bid"
    assert client.order(**LIMIT_BID, identifier="t-1")["identifier"] == "t-1"  # the test burned nothing


def test_get_by_uuid_or_identifier_and_only_ones_own(client: SignedClient) -> None:
    order = client.order(**LIMIT_BID, identifier="mine")
    by_uuid = client.fetch(order["uuid"])
    by_identifier = client.get("/v1/order", {"identifier": "mine"}).json()
    assert by_uuid == by_identifier and by_uuid["trades"] == []
    assert client.get("/v1/order", {"uuid": order["uuid"], "identifier": "nope"}).json()["uuid"] == order["uuid"]
    assert error_name(client.get("/v1/order")) == "validation_error"
    other = SignedClient(client.base_url, OTHER_ACCESS, OTHER_SECRET)
    response = other.get("/v1/order", {"uuid": order["uuid"]})
    assert (response.status_code, error_name(response)) == (404, "order_not_found")


def test_cancel_answers_wait_then_the_order_is_cancelled_and_unlocked(client: SignedClient) -> None:
    order = client.order(**LIMIT_BID, identifier="c-1")
    accepted = client.delete("/v1/order", {"identifier": "c-1"})
    assert accepted.status_code == 200 and accepted.json()["state"] == "wait"
    assert accepted.json()["uuid"] == order["uuid"]
    assert client.fetch(order["uuid"])["state"] == "cancel"
    assert client.accounts()["KRW"]["locked"] == "0" and client.accounts()["KRW"]["balance"] == "10000000"
    again = client.delete("/v1/order", {"uuid": order["uuid"]})
    assert (again.status_code, error_name(again)) == (404, "order_not_found")


def test_open_and_closed_lists_with_state_filters(client: SignedClient, clock: FakeClock) -> None:
    a = client.order(**LIMIT_BID)
    clock.advance(1)
    b = client.order(**{**LIMIT_BID, "price": "80000000"})
    clock.advance(1)
    c = client.order(market="KRW-BTC", side="ask", ord_type="limit", price="120000000", volume="0.1")
    client.delete("/v1/order", {"uuid": b["uuid"]})
    open_orders = client.get("/v1/orders/open", {"market": "KRW-BTC"}).json()
    assert [o["uuid"] for o in open_orders] == [c["uuid"], a["uuid"]]  # newest first
    asc = client.get("/v1/orders/open", {"order_by": "asc"}).json()
    assert [o["uuid"] for o in asc] == [a["uuid"], c["uuid"]]
    assert "trades" not in open_orders[0]
    paged = client.get("/v1/orders/open", {"limit": 1, "page": 2}).json()
    assert [o["uuid"] for o in paged] == [a["uuid"]]
    assert client.get("/v1/orders/open", {"state": "watch"}).json() == []
    closed = client.get("/v1/orders/closed", [("states[]", "cancel")]).json()
    assert [o["uuid"] for o in closed] == [b["uuid"]]
    assert client.get("/v1/orders/closed", {"state": "done"}).json() == []
    assert error_name(client.get("/v1/orders/open", {"state": "done"})) == "validation_error"
    by_ids = client.get("/v1/orders/uuids", [("uuids[]", a["uuid"]), ("uuids[]", b["uuid"])]).json()
    assert {o["uuid"] for o in by_ids} == {a["uuid"], b["uuid"]}
    legacy = client.get("/v1/orders", [("states[]", "wait"), ("states[]", "cancel")]).json()
    assert len(legacy) == 3


def test_closed_orders_time_window(client: SignedClient, clock: FakeClock) -> None:
    first = client.order(**LIMIT_BID)
    client.delete("/v1/order", {"uuid": first["uuid"]})
    clock.advance(3600)
    second = client.order(**LIMIT_BID)
    client.delete("/v1/order", {"uuid": second["uuid"]})
    start = clock.now().isoformat()
    window = client.get("/v1/orders/closed", {"start_time": start}).json()
    assert [o["uuid"] for o in window] == [second["uuid"]]


def test_order_chance(client: SignedClient) -> None:
    chance = client.get("/v1/orders/chance", {"market": "KRW-BTC"}).json()
    assert chance["bid_fee"] == "0.0005" and chance["ask_fee"] == "0.0005"
    assert chance["market"]["id"] == "KRW-BTC" and chance["market"]["bid"]["min_total"] == 5000
    assert chance["market"]["ask"]["currency"] == "BTC" and chance["market"]["max_total"] == "1000000000"
    assert chance["bid_account"]["currency"] == "KRW" and chance["bid_account"]["balance"] == "10000000"
    assert chance["ask_account"]["balance"] == "1"


def test_bulk_cancel_by_filter_and_by_ids(client: SignedClient) -> None:
    bid = client.order(**LIMIT_BID, identifier="bulk-1")
    ask = client.order(market="KRW-BTC", side="ask", ord_type="limit", price="120000000", volume="0.1")
    only_asks = client.delete("/v1/orders/open", {"cancel_side": "ask", "pairs": "KRW-BTC"}).json()
    assert only_asks["success"]["count"] == 1 and only_asks["success"]["orders"][0]["uuid"] == ask["uuid"]
    assert client.fetch(ask["uuid"])["state"] == "cancel" and client.fetch(bid["uuid"])["state"] == "wait"
    assert error_name(client.delete("/v1/orders/open")) == "too_many_requests"  # 1 per 2 s
    by_ids = client.delete("/v1/orders/uuids", [("identifiers[]", "bulk-1"), ("uuids[]", ask["uuid"])]).json()
    assert [o["uuid"] for o in by_ids["success"]["orders"]] == [bid["uuid"]]
    assert [o["uuid"] for o in by_ids["failed"]["orders"]] == [ask["uuid"]]  # already cancelled
    assert client.accounts()["KRW"]["locked"] == "0" and client.accounts()["BTC"]["locked"] == "0"
