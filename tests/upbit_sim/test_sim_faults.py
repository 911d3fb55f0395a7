"""upbit_sim.faults (REST faults) and upbit_sim.admin (fault injection from another process)."""

from __future__ import annotations

import time
from decimal import Decimal as D

import orjson
import pytest
import requests

from model.clock import FakeClock
from tests.helpers import MS
from tests.upbit_sim.conftest import ACCESS, MakeSim
from tests.upbit_sim.sim_client import SignedClient, error_name
from upbit_sim import SimServer
from upbit_sim.faults import Faults, parse_fault

BID = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "90000000", "volume": "0.01"}


def _open(client: SignedClient) -> list[dict[str, object]]:
    return client.get("/v1/orders/open").json()


def test_fail_next_answers_before_anything_is_done(sim: SimServer, client: SignedClient) -> None:
    sim.faults.fail_next(2, status=503)
    first = client.post("/v1/orders", {**BID, "identifier": "f-1"}, nonce="n-1")
    second = client.get("/v1/accounts")
    assert [first.status_code, second.status_code] == [503, 503]
    assert "error" in first.json() and "Remaining-Req" in first.headers
    assert client.post("/v1/orders", {**BID, "identifier": "f-1"}, nonce="n-1").status_code == 201  # nonce unused
    assert len(_open(client)) == 1


def test_fail_next_can_target_a_path_and_method(sim: SimServer, client: SignedClient) -> None:
    sim.faults.fail_next(1, status=500, path="/v1/orders", method="POST")
    assert client.get("/v1/orders/open").status_code == 200  # GET on the same path prefix: untouched
    assert client.get("/v1/accounts").status_code == 200
    assert client.post("/v1/orders", BID).status_code == 500
    assert client.post("/v1/orders", BID).status_code == 201


def test_delay_holds_each_request(sim: SimServer, client: SignedClient) -> None:
    sim.faults.delay(200 * MS, n=1)
    started = time.monotonic()
    assert client.get("/v1/accounts").status_code == 200
    assert time.monotonic() - started >= 200 * MS
    sim.faults.delay(10.0)
    sim.faults.delay(0)  # 0 clears it
    assert client.get("/v1/accounts").status_code == 200


def test_drop_after_accept_places_the_order_then_hangs_up(sim: SimServer, client: SignedClient) -> None:
    sim.faults.drop_after_accept(1)
    with pytest.raises(requests.ConnectionError):
        client.post("/v1/orders", {**BID, "identifier": "d-1"})
    found = client.get("/v1/order", {"identifier": "d-1"})
    assert found.status_code == 200 and found.json()["state"] == "wait"
    assert sim.holding(ACCESS, "KRW").locked == D("900450")


def test_lookup_lag_hides_new_orders_until_it_passes(sim: SimServer, client: SignedClient, clock: FakeClock) -> None:
    sim.faults.lookup_lag(2.0)
    placed = client.order(**BID, identifier="lag-1")
    assert error_name(client.get("/v1/order", {"uuid": placed["uuid"]})) == "order_not_found"
    assert error_name(client.get("/v1/order", {"identifier": "lag-1"})) == "order_not_found"
    assert _open(client) == []
    assert error_name(client.delete("/v1/order", {"uuid": placed["uuid"]})) == "order_not_found"
    clock.advance(2.0)
    assert client.fetch(placed["uuid"])["state"] == "wait"
    assert [o["uuid"] for o in _open(client)] == [placed["uuid"]]
    sim.faults.lookup_lag(0)
    assert client.fetch(client.order(**BID)["uuid"])["state"] == "wait"


def test_identifier_taken_puts_a_foreign_order_under_the_next_identifier(sim: SimServer, client: SignedClient) -> None:
    sim.faults.identifier_taken(1)
    ask = {"market": "KRW-BTC", "side": "ask", "ord_type": "market", "volume": "0.01", "identifier": "t-1"}
    refused = client.post("/v1/orders", ask)
    assert refused.status_code == 400 and error_name(refused) == "duplicate_identifier"
    found = client.get("/v1/order", {"identifier": "t-1"}).json()
    assert (found["side"], found["ord_type"], found["state"]) == ("bid", "limit", "wait")  # not the order asked for
    assert sim.faults.foreign_orders == [found["uuid"]]
    placed = client.post("/v1/orders", {**BID, "identifier": "t-2"})  # consumed: the next one is untouched
    assert placed.status_code == 201 and len(sim.faults.foreign_orders) == 1
    sim.faults.inject("identifier_taken", {"n": 1})
    assert client.post("/v1/orders", {**BID, "identifier": "t-3"}).status_code == 400


def test_malformed_next_garbles_the_answer_of_a_handled_request(sim: SimServer, client: SignedClient) -> None:
    sim.faults.malformed_next(1)
    garbled = client.post("/v1/orders", {**BID, "identifier": "m-1"})
    assert garbled.status_code == 201
    with pytest.raises(ValueError):
        garbled.json()
    assert client.get("/v1/order", {"identifier": "m-1"}).json()["state"] == "wait"
    assert client.get("/v1/accounts").json()  # only one answer was garbled


def test_a_failed_request_keeps_the_other_counted_faults_for_the_next() -> None:
    faults = Faults(lambda: 0.0)
    faults.fail_next(1, status=502)
    faults.drop_after_accept(1)
    first, second = faults.take_rest("GET", "/v1/accounts"), faults.take_rest("GET", "/v1/accounts")
    assert (first.fail_status, first.drop) == (502, False)
    assert (second.fail_status, second.drop) == (None, True)
    assert faults.take_rest("GET", "/v1/accounts") == type(first)()


def test_fault_arguments_are_checked() -> None:
    faults = Faults(lambda: 0.0)
    with pytest.raises(ValueError, match="positive integer"):
        faults.fail_next(0)
    with pytest.raises(ValueError, match="HTTP status"):
        faults.fail_next(1, status=99)
    with pytest.raises(ValueError, match="seconds"):
        faults.delay(-1)
    with pytest.raises(ValueError, match="unknown fault"):
        faults.inject("explode")
    with pytest.raises(ValueError, match="has no parameter"):
        faults.inject("ws_drop", {"n": 1})
    with pytest.raises(ValueError, match="must be int"):
        faults.inject("fail_next", {"n": "lots"})


def test_parse_fault_command_line_grammar() -> None:
    assert parse_fault("fail_next:3,503") == ("fail_next", {"n": "3", "status": "503"})
    assert parse_fault("fail_next:n=1,status=503,path=/v1/orders") == (
        "fail_next", {"n": "1", "status": "503", "path": "/v1/orders"})
    assert parse_fault("ws_drop") == ("ws_drop", {})
    assert parse_fault("delay:0.5") == ("delay", {"seconds": "0.5"})
    with pytest.raises(ValueError, match="at most 1 positional"):
        parse_fault("lookup_lag:1,2")
    with pytest.raises(ValueError, match="unknown fault"):
        parse_fault("nope:1")
    faults = Faults(lambda: 0.0)
    faults.inject(*parse_fault("fail_next:2,429"))
    assert faults.take_rest("GET", "/v1/ticker").fail_status == 429


# --- the admin endpoints --------------------------------------------------------------------------


def _admin(sim: SimServer, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, sim.rest_url + path, data=orjson.dumps(body) if body is not None else None,
                            timeout=5)


def test_admin_arms_and_clears_faults(sim: SimServer, client: SignedClient) -> None:
    armed = _admin(sim, "POST", "/_sim/faults", [{"fault": "fail_next", "n": 1, "status": 502},
                                                 {"fault": "lookup_lag", "seconds": 0}])
    assert armed.status_code == 200 and armed.json()["armed"] == ["fail_next", "lookup_lag"]
    assert client.get("/v1/accounts").status_code == 502
    _admin(sim, "POST", "/_sim/faults", {"faults": [{"fault": "fail_next", "n": 5}]})
    assert _admin(sim, "DELETE", "/_sim/faults").status_code == 200
    assert client.get("/v1/accounts").status_code == 200
    status = _admin(sim, "GET", "/_sim/status").json()
    assert status["status"] == "UP" and status["rest_url"] == sim.rest_url
    assert [f["fault"] for f in status["faults"]] == ["fail_next", "lookup_lag", "fail_next", "clear"]


def test_admin_refuses_bad_documents(sim: SimServer) -> None:
    assert _admin(sim, "POST", "/_sim/faults", {"fault": "explode"}).status_code == 400
    assert _admin(sim, "POST", "/_sim/faults", {"n": 1}).status_code == 400
    assert _admin(sim, "POST", "/_sim/trades", {"market": "KRW-BTC", "price": "x", "volume": "1"}).status_code == 400
    assert requests.post(sim.rest_url + "/_sim/faults", data=b"{", timeout=5).status_code == 400
    assert _admin(sim, "GET", "/_sim/nothing").status_code == 404


def test_admin_prints_trades_and_deposits(sim: SimServer, client: SignedClient) -> None:
    order = client.order(**BID)
    printed = _admin(sim, "POST", "/_sim/trades", {"market": "KRW-BTC", "price": "89000000", "volume": "1",
                                                    "side": "ASK"})
    assert printed.json() == {"ok": True, "printed": 1}
    assert client.fetch(order["uuid"])["state"] == "done"
    assert client.public("/v1/ticker", {"markets": "KRW-BTC"}).json()[0]["trade_price"] == 89000000
    assert _admin(sim, "POST", "/_sim/deposit", {"access_key": ACCESS, "currency": "ETH", "amount": "2.5"}).ok
    assert client.accounts()["ETH"]["balance"] == "2.5"


def test_admin_advances_a_manual_replay(make_sim: MakeSim) -> None:
    from market.recording import CAPTURE_2021_04_17, Recording  # noqa: PLC0415

    sim = make_sim(recording=Recording.capture(CAPTURE_2021_04_17), autoplay=False)
    assert _admin(sim, "POST", "/_sim/advance", {"n": 3}).json() == {"ok": True, "replayed": 3}
    assert sim.replayed == 3
    assert _admin(sim, "POST", "/_sim/advance", {"n": 0}).status_code == 400
