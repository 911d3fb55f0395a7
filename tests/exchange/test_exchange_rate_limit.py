"""exchange.rate_limit: Remaining-Req parsing and token buckets on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange.rate_limit import RateLimiter, RemainingReq, documented_limits, parse_remaining_req


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(("header", "expected"), [
    ("group=default; min=1800; sec=29", RemainingReq(group="default", sec=29, min=1800)),
    ("group=market; min=573; sec=9", RemainingReq(group="market", sec=9, min=573)),
    ("group=order-test; min=0; sec=0", RemainingReq(group="order-test", sec=0, min=0)),
    ("group=order;sec=7", RemainingReq(group="order", sec=7)),
    ("sec=3; group=candle; min=60", RemainingReq(group="candle", sec=3, min=60)),
    ("  group = ticker ;  min = 1 ; sec = 2 ", RemainingReq(group="ticker", sec=2, min=1)),
])
def test_parse_remaining_req(header: str, expected: RemainingReq) -> None:
    assert parse_remaining_req(header) == expected


@pytest.mark.parametrize("header", [None, "", "garbage", "group=default; min=10", "group=; sec=1",
                                    "group=default; sec=-1", "group=default; sec=x"])
def test_unparsable_headers_are_none(header: str | None) -> None:
    assert parse_remaining_req(header) is None


def test_documented_limits() -> None:
    limits = documented_limits(datetime(2025, 1, 1, tzinfo=UTC))
    assert limits["default"] == 30 and limits["order"] == 8 and limits["order-test"] == 8
    assert all(limits[g] == 10 for g in ("market", "candle", "trade", "ticker", "orderbook"))
    assert documented_limits(datetime(2026, 9, 1, tzinfo=UTC))["order"] == 12


def test_bucket_allows_a_burst_then_paces_at_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"order": 8}, clock=clock)
    assert [limiter.reserve("order") for _ in range(8)] == [0.0] * 8
    assert limiter.reserve("order") == pytest.approx(1 / 8)
    assert limiter.reserve("order") == pytest.approx(2 / 8)  # reservations queue up
    clock.advance(0.25)
    assert limiter.reserve("order") == pytest.approx(1 / 8)
    clock.advance(10)
    assert limiter.reserve("order") == 0.0


def test_groups_are_independent_and_unknown_groups_get_the_default() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"ticker": 1}, clock=clock, default_limit=2)
    assert limiter.reserve("ticker") == 0
    assert limiter.reserve("ticker") == pytest.approx(1.0)
    assert limiter.reserve("candle") == 0 and limiter.reserve("candle") == 0
    assert limiter.reserve("candle") == pytest.approx(0.5)
    assert limiter.limit("somewhere") == 2


def test_remaining_req_corrects_our_count_and_sec_zero_holds_a_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"default": 30}, clock=clock)
    assert limiter.last_remaining("default") is None
    limiter.reserve("default")
    limiter.observe(RemainingReq(group="default", sec=2))  # another process used the key
    assert limiter.last_remaining("default") == 2
    assert limiter.reserve("default") == 0 and limiter.reserve("default") == 0
    assert limiter.reserve("default") > 0
    limiter.observe(RemainingReq(group="default", sec=0))
    assert limiter.last_remaining("default") == 0
    assert limiter.reserve("default") >= 1.0 - 1e-9
    clock.advance(1.0)
    limiter.observe(RemainingReq(group="default", sec=29))
    assert limiter.reserve("default") < 0.2
    limiter.observe(None)  # an answer without the header changes nothing
    assert limiter.last_remaining("default") == 29
    clock.advance(1.0)  # a second later the answer says nothing about the new second's budget
    assert limiter.last_remaining("default") is None


def test_429_backs_off_exponentially_with_jitter_and_resets_on_success() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"order": 8}, clock=clock, backoff_base_s=1, backoff_cap_s=8, rng=lambda: 1.0)
    holds = [limiter.on_429("order") for _ in range(5)]
    assert holds == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert limiter.reserve("order") == pytest.approx(8.0)
    clock.advance(9)
    limiter.observe(RemainingReq(group="order", sec=7), status=201)
    assert limiter.on_429("order") == 1.0
    half = RateLimiter({"order": 8}, clock=clock, backoff_base_s=4, rng=lambda: 0.0)
    assert half.on_429("order") == 2.0  # jitter: between half and all of the backoff
    assert half.on_429("order", retry_after=3.5) == 3.5  # the exchange's word wins


def test_418_blocks_every_group_for_the_announced_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, default_block_s=60)
    assert limiter.blocked_for() == 0
    assert limiter.on_418(5.0) == 5.0
    assert limiter.blocked_for() == pytest.approx(5.0)
    clock.advance(5.0)
    assert limiter.blocked_for() == 0
    assert limiter.on_418(None) == 60
    assert limiter.blocked_for() == pytest.approx(60)
