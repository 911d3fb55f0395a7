"""upbit_sim.ratelimit: per-group windows, Remaining-Req, 429 then 418 — as values and over HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from model.clock import FakeClock
from tests.upbit_sim.conftest import MakeSim
from tests.upbit_sim.sim_client import SignedClient, error_name
from upbit_sim import SimServer
from upbit_sim.errors import ApiError
from upbit_sim.ratelimit import RateLimiter

PYUPBIT_HEADER = re.compile(r"group=([a-z\-]+); min=([0-9]+); sec=([0-9]+)")


def _status(limiter: RateLimiter, group: str, who: str) -> int:
    try:
        limiter.admit(group, who)
    except ApiError as exc:
        return exc.status
    return 200


def test_window_budget_and_header() -> None:
    clock = FakeClock(monotonic=10.0)
    limiter = RateLimiter(clock.monotonic)
    headers = [limiter.admit("ticker", "1.2.3.4").header() for _ in range(10)]
    assert headers[0] == "group=ticker; min=600; sec=9"
    assert headers[-1] == "group=ticker; min=600; sec=0"
    assert _status(limiter, "ticker", "1.2.3.4") == 429
    assert _status(limiter, "ticker", "5.6.7.8") == 200  # per IP
    assert _status(limiter, "trade", "1.2.3.4") == 200  # per group
    clock.advance(1.0)
    assert limiter.admit("ticker", "1.2.3.4").remaining == 9  # a new second


@pytest.mark.parametrize(("group", "limit"), [("default", 30), ("order", 8), ("order-test", 8), ("market", 10)])
def test_documented_limits(group: str, limit: int) -> None:
    limiter = RateLimiter(FakeClock(monotonic=5.0).monotonic)
    assert [_status(limiter, group, "k") for _ in range(limit + 1)] == [200] * limit + [429]


def test_limit_override_for_the_2026_order_budget() -> None:
    limiter = RateLimiter(FakeClock(monotonic=5.0).monotonic, limits={"order": 12})
    assert [_status(limiter, "order", "k") for _ in range(13)] == [200] * 12 + [429]
    with pytest.raises(ValueError, match="unknown rate-limit groups"):
        RateLimiter(FakeClock().monotonic, limits={"orders": 1})


def test_429_then_418_when_the_client_keeps_going_and_the_block_doubles() -> None:
    clock = FakeClock(monotonic=100.0)
    limiter = RateLimiter(clock.monotonic, block_after=3, block_seconds=10.0)
    for _ in range(10):
        limiter.admit("ticker", "ip")
    assert [_status(limiter, "ticker", "ip") for _ in range(4)] == [429, 429, 429, 418]
    assert _status(limiter, "market", "ip") == 418  # the whole IP is blocked
    assert limiter.blocked("ip")
    clock.advance(10.0)
    assert not limiter.blocked("ip")
    assert _status(limiter, "ticker", "ip") == 200
    for _ in range(9):
        limiter.admit("ticker", "ip")
    assert [_status(limiter, "ticker", "ip") for _ in range(3)] == [429, 429, 429]
    clock.advance(19.0)
    assert _status(limiter, "ticker", "ip") == 418  # second offence: 20 s
    clock.advance(1.0)
    assert _status(limiter, "ticker", "ip") == 200


def test_disabled_limits_still_report_the_budget() -> None:
    limiter = RateLimiter(FakeClock(monotonic=1.0).monotonic, enabled=False)
    assert [_status(limiter, "order", "k") for _ in range(20)] == [200] * 20


# --- over HTTP -----------------------------------------------------------------------------------


def test_every_answer_carries_remaining_req(sim: SimServer, client: SignedClient) -> None:
    answers = [
        client.public("/v1/ticker", {"markets": "KRW-BTC"}),
        client.public("/v1/ticker", {"markets": "NOPE-NOPE"}),
        client.get("/v1/accounts"),
        requests.get(sim.rest_url + "/v1/accounts", timeout=5),
        client.post("/v1/orders", {"market": "KRW-BTC"}),
        client.public("/v1/no/such/route"),
    ]
    for answer in answers:
        assert PYUPBIT_HEADER.search(answer.headers["Remaining-Req"]), answer.headers
    assert answers[0].headers["Remaining-Req"].startswith("group=ticker;")
    assert answers[2].headers["Remaining-Req"].startswith("group=default;")
    assert answers[4].headers["Remaining-Req"].startswith("group=order;")


def test_http_429_then_418(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(block_after=2, block_seconds=30.0)
    sim.print_trade("KRW-BTC", "100000000")
    statuses = [requests.get(sim.rest_url + "/v1/ticker", params={"markets": "KRW-BTC"}, timeout=5)
                for _ in range(13)]
    assert [r.status_code for r in statuses] == [200] * 10 + [429, 429, 418]
    assert error_name(statuses[10]) == "too_many_requests"
    assert "Too many API requests." in statuses[10].json()["error"]["message"]
    assert statuses[10].headers["Remaining-Req"] == "group=ticker; min=600; sec=0"
    clock.advance(30.0)
    assert requests.get(sim.rest_url + "/v1/ticker", params={"markets": "KRW-BTC"}, timeout=5).status_code == 200


def test_http_order_budget_is_per_access_key(sim: SimServer, client: SignedClient) -> None:
    body = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "50000000", "volume": "0.001"}
    statuses = [client.post("/v1/orders/test", body).status_code for _ in range(9)]
    assert statuses == [201] * 8 + [429]
    assert client.get("/v1/accounts").status_code == 200  # the default group is separate
