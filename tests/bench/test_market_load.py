"""bench.market_load: the real capture spread over N markets keeps every recorded trade and its rate."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

import pytest

from model.market import Trade
from bench.market_load import PERIOD_S, Feeder, choose_markets, schedule, source_streams, spread


def test_the_sources_are_the_captures_krw_markets_busiest_first() -> None:
    streams = source_streams()
    counts = {m: len(s) for m, s in streams.items()}
    assert list(counts)[:3] == ["KRW-DAWN", "KRW-STX", "KRW-ADA"]  # 321, 183, 71 trades (PROVENANCE.md)
    assert counts["KRW-DAWN"] == 321 and len(counts) == 6  # BTC-BASIC is not a KRW market
    assert all(0 <= at < PERIOD_S for s in streams.values() for at, *_ in s)


def test_twenty_markets_each_carry_a_whole_recorded_stream_shifted_apart() -> None:
    streams = source_streams()
    markets = choose_markets(20, list(streams), ["KRW-BTC", "BTC-ETH", *(f"KRW-X{i:02d}" for i in range(30))])
    assert len(set(markets)) == 20 and markets[:6] == list(streams) and markets[6] == "KRW-BTC"
    period = spread(markets, streams)
    per_market = Counter(p.market for p in period)
    sources = list(streams)
    assert per_market == {m: len(streams[sources[i % len(sources)]]) for i, m in enumerate(markets)}
    assert [p.at_s for p in period] == sorted(p.at_s for p in period)
    # the two markets fed from KRW-DAWN do not trade in the same instants
    first = {round(p.at_s, 3) for p in period if p.market == markets[0]}
    again = {round(p.at_s, 3) for p in period if p.market == markets[6]}
    assert not first & again


def test_too_few_listed_markets_is_an_error_naming_the_count() -> None:
    with pytest.raises(ValueError, match="only 3 KRW markets"):
        choose_markets(5, ["KRW-A"], ["KRW-B", "KRW-C", "BTC-D"])


def test_the_schedule_repeats_the_period() -> None:
    period = spread(["KRW-DAWN"], source_streams())
    due = [at for at, _p in itertools.islice(schedule(period), 2 * len(period))]
    assert due[len(period)] == pytest.approx(PERIOD_S + period[0].at_s)
    assert due == sorted(due)


def test_the_feeder_feeds_what_is_due_and_stops() -> None:
    period = spread(["KRW-DAWN"], source_streams())
    ticks = iter([0.0])  # the feeder's start; every later reading is period[4]'s due time

    def clock() -> float:
        return next(ticks, period[4].at_s)

    fed: list[Trade] = []
    due = sum(1 for p in period if p.at_s <= period[4].at_s)
    feeder = Feeder(fed.append, period, monotonic=clock).start()
    deadline = threading.Event()
    for _ in range(500):
        if len(fed) >= due:
            break
        deadline.wait(0.01)
    feeder.stop()
    assert len(fed) == due  # what is due went out at once; the next one waits for its time
    assert [t.market for t in fed] == ["KRW-DAWN"] * due
    assert all(t.ts_ms == 0 and t.seq == -1 for t in fed)  # the simulator stamps and numbers them
