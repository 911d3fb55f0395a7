"""bench.tick_stream and bench.order_attribution: the signal stream's plan and driver, frame → order attribution.

Pure: values in, values out (the driver gets a recording sink and a fake clock).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from model.market import Trade
from bench.order_attribution import CATEGORIES, PaperTrade, attribute
from bench.tick_stream import Published, drive, plan_stream

MARKETS = ("KRW-ETH", "KRW-XRP")


def test_each_market_trades_once_a_second_at_its_own_instant_with_alternating_prices() -> None:
    plan = plan_stream(signal_markets=MARKETS, start_s=100, seconds=3, warmup_seconds=1, low=D(10), high=D(11))
    assert [(f.market, f.ts_ms) for f in plan] == [
        ("KRW-ETH", 100_250), ("KRW-XRP", 100_750), ("KRW-ETH", 101_250), ("KRW-XRP", 101_750),
        ("KRW-ETH", 102_250), ("KRW-XRP", 102_750)]
    eth = [f.price for f in plan if f.market == "KRW-ETH"]
    assert eth == [D(10), D(11), D(10)]  # every bar crosses its 2-bar SMA: entries and exits in turn
    assert [f.burst for f in plan] == [False, True] * 3  # phases interleave frame by frame
    assert [f.warmup for f in plan] == [True, True] + [False] * 4


def test_the_plan_refuses_a_warmup_that_leaves_nothing() -> None:
    with pytest.raises(ValueError, match="warmup_seconds"):
        plan_stream(signal_markets=MARKETS, start_s=0, seconds=2, warmup_seconds=2, low=D(1), high=D(2))


class Sink:
    """Records the trades printed and when (on the fake clock)."""

    def __init__(self, clock: FakeWall) -> None:
        self.clock = clock
        self.printed: list[tuple[float, Trade]] = []

    def feed(self, trade: Trade) -> None:
        self.printed.append((self.clock.now, trade))
        self.clock.now += 0.001  # printing takes a millisecond


class FakeWall:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_driver_publishes_on_schedule_and_follows_burst_frames_with_other_markets() -> None:
    wall = FakeWall(99.0)
    sink = Sink(wall)
    plan = plan_stream(signal_markets=MARKETS, start_s=100, seconds=1, warmup_seconds=0, low=D(10), high=D(11))
    published = drive(sink, plan, burst_markets=("KRW-EOS", "KRW-TRX"), burst_size=3, burst_price=D(5),
                      wall=wall, sleep=wall.sleep)
    assert [(p.market, p.published_at, p.burst) for p in published] == [
        ("KRW-ETH", 100.25, False), ("KRW-XRP", 100.75, True)]
    assert published[1].burst_s == pytest.approx(0.004)  # the frame and its 3 burst trades
    markets = [t.market for _, t in sink.printed]
    assert markets == ["KRW-ETH", "KRW-XRP", "KRW-EOS", "KRW-TRX", "KRW-EOS"]
    assert all(t.ts_ms == 100_750 and t.seq == -1 for _, t in sink.printed[1:])


def frame(market: str, ts_ms: int, at: float, *, burst: bool = False, warmup: bool = False) -> Published:
    return Published(market=market, ts_ms=ts_ms, published_at=at, burst=burst, warmup=warmup)


def trade(pid: int, market: str, fill_s: int, committed: float, *idents: str) -> PaperTrade:
    return PaperTrade(paper_trade_id=pid, market=market, fill_s=fill_s, committed_at=committed, identifiers=idents)


def test_an_order_is_attributed_to_the_first_frame_of_a_later_second_of_its_market() -> None:
    frames = [frame("KRW-ETH", 10_250, 10.25), frame("KRW-ETH", 11_250, 11.25, burst=True),
              frame("KRW-XRP", 11_750, 11.75), frame("KRW-ETH", 12_250, 12.25)]
    trades = [trade(1, "KRW-ETH", 10, 11.252, "b-1-1"), trade(2, "KRW-XRP", 10, 11.756, "b-2-1")]
    result = attribute(frames, trades, {"b-1-1": 11.259, "b-2-1": 11.760})
    (burst,) = result.burst
    assert burst.total_s == pytest.approx(0.009)
    assert burst.market_node_s == pytest.approx(0.002)
    assert burst.handoff_s == pytest.approx(0.007)
    (quiet,) = result.quiet
    assert quiet.total_s == pytest.approx(0.010)
    assert result.counts == {**dict.fromkeys(CATEGORIES, 0), "measured": 2}


def test_the_first_request_of_an_intent_counts_when_it_was_sent_twice() -> None:
    frames = [frame("KRW-ETH", 11_250, 11.25)]
    result = attribute(frames, [trade(1, "KRW-ETH", 10, 11.26, "b-1-1", "b-1-2")], {"b-1-2": 11.4, "b-1-1": 11.27})
    assert result.quiet[0].total_s == pytest.approx(0.02)


def test_unattributable_orders_are_counted_apart_never_clipped() -> None:
    frames = [frame("KRW-ETH", 11_250, 11.25), frame("KRW-ETH", 12_250, 12.25),
              frame("KRW-XRP", 11_750, 11.75, warmup=True)]
    trades = [
        trade(1, "KRW-ETH", 10, 11.20, "b-1-1"),  # committed before its frame: closed by the clock tick
        trade(2, "KRW-ETH", 11, 12.26, "b-2-1"),  # never sent
        trade(3, "KRW-ETH", 12, 13.00, "b-3-1"),  # no later frame: the stream had ended
        trade(4, "KRW-XRP", 10, 11.76, "b-4-1"),  # warm-up
        trade(5, "KRW-ETH", 11, 12.27, "b-5-1"),  # a second order for the frame of trade 2
    ]
    arrivals = {"b-1-1": 11.3, "b-3-1": 13.1, "b-4-1": 11.77, "b-5-1": 12.28}
    result = attribute(frames, trades, arrivals)
    assert not result.quiet and not result.burst
    assert result.counts == {"measured": 0, "warmup": 1, "after_stream": 1, "before_frame": 1, "not_sent": 1,
                             "shared_frame": 1}


def test_a_request_before_its_frame_is_not_a_negative_sample() -> None:
    result = attribute([frame("KRW-ETH", 11_250, 11.25)], [trade(1, "KRW-ETH", 10, 11.26, "b-1-1")],
                       {"b-1-1": 11.24})
    assert result.counts["before_frame"] == 1 and not result.quiet
