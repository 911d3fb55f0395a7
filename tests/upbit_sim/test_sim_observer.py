"""upbit_sim.rest's request observer: told of every REST request, with its arrival time, before the answer."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.upbit_sim.conftest import ACCESS, SECRET, MakeSim
from tests.upbit_sim.sim_client import SignedClient
from upbit_sim.rest import RestRequest

TEST_ORDER = {"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "10000", "identifier": "bench-7-1"}


class Recorder:
    """A fake observer that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, RestRequest]] = []

    def __call__(self, arrived_at: float, request: RestRequest) -> None:
        self.seen.append((arrived_at, request))


def test_every_request_is_observed_with_its_wall_clock_arrival(make_sim: MakeSim) -> None:
    recorder = Recorder()
    sim = make_sim(on_request=recorder)
    sim.print_trade("KRW-BTC", "100000000")
    client = SignedClient(sim.rest_url, ACCESS, SECRET)
    try:
        before = time.time()
        answer = client.post("/v1/orders/test", TEST_ORDER)
        after = time.time()
        assert answer.status_code == 201, answer.text
        assert client.public("/v1/market/all").status_code == 200
    finally:
        client.close()
    (arrived_at, order), (_, listing) = recorder.seen
    assert before <= arrived_at <= after  # wall time (time.time()), although the simulator's clock is fake
    assert (order.method, order.path) == ("POST", "/v1/orders/test")
    assert orjson.loads(order.body)["identifier"] == "bench-7-1"
    assert (listing.method, listing.path) == ("GET", "/v1/market/all")


def test_a_failing_observer_does_not_change_the_answer(make_sim: MakeSim, caplog: pytest.LogCaptureFixture) -> None:
    def broken(arrived_at: float, request: RestRequest) -> None:
        raise RuntimeError("observer bug")

    sim = make_sim(on_request=broken)
    sim.print_trade("KRW-BTC", "100000000")
    client = SignedClient(sim.rest_url, ACCESS, SECRET)
    try:
        answer = client.post("/v1/orders/test", TEST_ORDER)
    finally:
        client.close()
    assert answer.status_code == 201, answer.text
    assert "request observer failed on POST /v1/orders/test" in caplog.text


def test_no_observer_by_default(make_sim: MakeSim) -> None:
    sim = make_sim()
    assert sim.markets.get("KRW-BTC") is not None  # builds and serves as before
    client = SignedClient(sim.rest_url, ACCESS, SECRET)
    try:
        assert client.public("/v1/market/all").status_code == 200
    finally:
        client.close()
