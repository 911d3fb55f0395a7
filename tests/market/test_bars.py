"""Tests for market.bars: 1-second bars, late trades, and exactly-once resume after a crash."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from model.market import Bar, Side, Trade, TradeSource
from market.bars import BarAggregator
from market.capture import read_trades as read_capture
from market.recording import Recording

S = 1_700_000_000  # a second, epoch seconds


def _trade(market: str, ts_ms: int, price: str, volume: str = "1", offset: int = -1) -> Trade:
    return Trade(
        market=market,
        ts_ms=ts_ms,
        price=Decimal(price),
        volume=Decimal(volume),
        side=Side.BID,
        seq=ts_ms * 1000,
        source=TradeSource.CAPTURE if offset >= 0 else TradeSource.LIVE,
        offset=offset,
    )


def _numbered(trades: Iterable[Trade]) -> list[Trade]:
    """Give hand-made trades recording offsets 0, 1, 2, ..."""
    out = []
    for i, t in enumerate(trades):
        out.append(
            Trade(
                market=t.market, ts_ms=t.ts_ms, price=t.price, volume=t.volume, side=t.side,
                seq=t.seq, source=TradeSource.CAPTURE, offset=i,
            )
        )  # fmt: skip
    return out


# --- the consumer: a fake of the DB upsert the brief specifies ---------------------------


@dataclass
class Row:
    """A stored bar."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trade_count: int
    late_trades: int
    source: TradeSource


class FakeBarStore:
    """Stores bars like the real consumer: regular bars insert, amendments upsert; offsets
    (and everything else) commit atomically per ``commit`` call.
    """

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], Row] = {}
        self.applied: dict[str, int] = {}
        self.commits = 0

    def commit(self, bars: Sequence[Bar], applied: dict[str, int]) -> None:
        for bar in bars:
            key = (bar.market, bar.ts)
            row = self.rows.get(key)
            if bar.late_trades == 0:
                assert row is None, f"regular bar emitted twice: {bar}"
                self.rows[key] = Row(bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trade_count, 0, bar.source)
            else:
                assert bar.late_trades == bar.trade_count, f"amendment must be all late trades: {bar}"
                if row is None:
                    self.rows[key] = Row(
                        bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trade_count,
                        bar.late_trades, bar.source,
                    )  # fmt: skip
                else:
                    row.high = max(row.high, bar.high)
                    row.low = min(row.low, bar.low)
                    row.volume += bar.volume
                    row.trade_count += bar.trade_count
                    row.late_trades += bar.late_trades
        for market, offset in applied.items():
            assert offset >= self.applied.get(market, -1), "applied offsets never go back"
        self.applied = dict(applied)
        self.commits += 1

    def closed_through(self) -> dict[str, int]:
        """``SELECT market, max(ts) FROM bars GROUP BY market``."""
        result: dict[str, int] = {}
        for market, ts in self.rows:
            result[market] = max(result.get(market, -1), ts)
        return result


def group_by(trades: Sequence[Trade]) -> dict[tuple[str, int], Row]:
    """The expected bars, computed offline: a group-by over all trades per (market, second).

    high/low/volume/count cover all trades. A trade is late when an earlier-arriving trade of
    its market had a later second; open/close are the first/last on-time trades in arrival
    order (or of the late ones when a second has no on-time trade).
    """
    newest: dict[str, int] = {}
    groups: dict[tuple[str, int], list[tuple[Trade, bool]]] = defaultdict(list)
    for t in trades:
        sec = t.ts_ms // 1000
        late = t.market in newest and sec < newest[t.market]
        newest[t.market] = max(newest.get(t.market, sec), sec)
        groups[(t.market, sec)].append((t, late))
    rows = {}
    for key, members in groups.items():
        prices = [t.price for t, _ in members]
        on_time = [t for t, late in members if not late] or [t for t, _ in members]
        rows[key] = Row(
            open=on_time[0].price,
            high=max(prices),
            low=min(prices),
            close=on_time[-1].price,
            volume=sum((t.volume for t, _ in members), Decimal(0)),
            trade_count=len(members),
            late_trades=sum(late for _, late in members),
            source=members[0][0].source,
        )
    return rows


def run(
    trades: Sequence[Trade],
    *,
    store: FakeBarStore | None = None,
    batch_sizes: Iterable[int] = itertools.repeat(64),
    tick: Callable[[Trade], int | None] | None = None,
    crash_after: int | None = None,
    lose_last_batch: bool = False,
    resume: bool = False,
    pass_closed_through: bool = True,
) -> FakeBarStore:
    """Drive an aggregator like the market node does, committing after every batch.

    With ``resume``, start from ``store``'s persisted offsets: replay from min(applied) + 1.
    ``tick(trade)`` gives the replay clock to tick at after that trade, or None (no tick).
    With ``crash_after=n``, stop (without flushing) once n trades were fed; with
    ``lose_last_batch`` the output of that last batch is lost too (crash before the commit).
    """
    store = store if store is not None else FakeBarStore()
    agg = BarAggregator()
    start = 0
    if resume:
        closed = store.closed_through() if pass_closed_through else None
        agg.resume(store.applied, closed)
        start = min(store.applied.values()) + 1 if store.applied else 0
    todo = [t for t in trades if t.offset >= start]
    sizes = iter(batch_sizes)
    fed = start
    i = 0
    while i < len(todo):
        size = next(sizes)
        if crash_after is not None:
            size = min(size, crash_after - fed)
        batch = todo[i : i + size]
        i += len(batch)
        fed += len(batch)
        if tick is not None:
            bars: list[Bar] = []
            for t in batch:
                bars += agg.add_many([t])
                now_ms = tick(t)
                if now_ms is not None:
                    bars += agg.tick(now_ms)
        else:
            bars = agg.add_many(batch)
        if crash_after is not None and fed >= crash_after:
            if not lose_last_batch:
                store.commit(bars, agg.applied_offsets())
            return store  # crash: the aggregator's unflushed state is gone
        store.commit(bars, agg.applied_offsets())
    store.commit(agg.flush(), agg.applied_offsets())
    return store


# --- unit behaviour ---------------------------------------------------------------------


def test_a_bar_closes_when_a_later_second_arrives() -> None:
    agg = BarAggregator()
    assert agg.add_many([_trade("KRW-BTC", S * 1000, "10", "1"), _trade("KRW-BTC", S * 1000 + 999, "12", "2")]) == []
    assert agg.add(_trade("KRW-BTC", S * 1000 + 400, "9", "0.5")) == []
    assert agg.add(_trade("KRW-BTC", S * 1000 + 700, "11", "0.25")) == []
    (bar,) = agg.add(_trade("KRW-BTC", (S + 1) * 1000, "13"))
    assert bar == Bar(
        market="KRW-BTC", ts=S, open=Decimal(10), high=Decimal(12), low=Decimal(9), close=Decimal(11),
        volume=Decimal("3.75"), trade_count=4, source=TradeSource.LIVE,
    )  # fmt: skip


def test_second_boundaries() -> None:
    agg = BarAggregator()
    agg.add_many([_trade("M-A", S * 1000 + 999, "1"), _trade("M-A", (S + 1) * 1000, "2")])
    (bar,) = agg.flush()
    assert (bar.ts, bar.open) == (S + 1, Decimal(2))


def test_tick_closes_after_the_grace_period() -> None:
    agg = BarAggregator(grace_ms=500)
    agg.add(_trade("KRW-BTC", S * 1000 + 10, "10"))
    assert agg.tick((S + 1) * 1000 + 499) == []
    (bar,) = agg.tick((S + 1) * 1000 + 500)
    assert bar.ts == S
    assert agg.tick((S + 5) * 1000) == []


def test_markets_are_independent() -> None:
    agg = BarAggregator()
    bars = agg.add_many(
        [_trade("KRW-A", S * 1000, "1"), _trade("KRW-B", S * 1000, "100"), _trade("KRW-A", (S + 1) * 1000, "2")]
    )
    assert [(b.market, b.ts) for b in bars] == [("KRW-A", S)]
    assert sorted((b.market, b.ts) for b in agg.flush()) == [("KRW-A", S + 1), ("KRW-B", S)]


def test_late_trade_becomes_an_amendment_emitted_with_the_next_close() -> None:
    agg = BarAggregator()
    first = agg.add_many(
        [
            _trade("KRW-A", S * 1000, "10", "1"),
            _trade("KRW-A", (S + 1) * 1000, "11", "1"),  # closes S
            _trade("KRW-A", S * 1000 + 900, "14", "2"),  # late for S
            _trade("KRW-A", S * 1000 + 950, "8", "0.5"),  # late for S
        ]
    )
    assert [b.ts for b in first] == [S]
    amendment, bar = agg.add(_trade("KRW-A", (S + 2) * 1000, "12"))
    assert amendment == Bar(
        market="KRW-A", ts=S, open=Decimal(14), high=Decimal(14), low=Decimal(8), close=Decimal(8),
        volume=Decimal("2.5"), trade_count=2, late_trades=2, source=TradeSource.LIVE,
    )  # fmt: skip
    assert (bar.ts, bar.late_trades) == (S + 1, 0)


def test_late_trade_for_a_second_without_a_bar() -> None:
    agg = BarAggregator()
    agg.add_many([_trade("KRW-A", S * 1000, "10"), _trade("KRW-A", (S + 2) * 1000, "11")])
    assert agg.add(_trade("KRW-A", (S + 1) * 1000, "9", "3")) == []
    amendment, bar = agg.flush()
    assert (amendment.ts, amendment.trade_count, amendment.late_trades, amendment.open) == (S + 1, 1, 1, Decimal(9))
    assert bar.ts == S + 2


def test_late_trade_after_a_tick_is_released_by_the_next_tick() -> None:
    agg = BarAggregator()
    agg.add(_trade("KRW-A", S * 1000, "10"))
    (bar,) = agg.tick((S + 1) * 1000)
    assert bar.ts == S
    assert agg.add(_trade("KRW-A", S * 1000 + 5, "11")) == []  # its bar closed: late
    (amendment,) = agg.tick((S + 1) * 1000 + 1)
    assert (amendment.ts, amendment.late_trades) == (S, 1)
    assert agg.flush() == []


def test_bars_carry_the_trades_source() -> None:
    agg = BarAggregator()
    agg.add_many(_numbered([_trade("KRW-A", S * 1000, "1")]))
    (bar,) = agg.flush()
    assert bar.source is TradeSource.CAPTURE


def test_offsets_must_increase_and_a_failed_aggregator_refuses_work() -> None:
    agg = BarAggregator()
    trades = _numbered([_trade("KRW-A", S * 1000, "1"), _trade("KRW-A", S * 1000, "1")])
    agg.add_many(trades)
    with pytest.raises(ValueError, match="offsets must strictly increase: 1 after 1"):
        agg.add_many(trades[1:])
    with pytest.raises(RuntimeError, match="must not be used"):
        agg.flush()


def test_an_iterable_failing_mid_batch_poisons_the_aggregator() -> None:
    def trades() -> Iterator[Trade]:
        yield _trade("KRW-A", S * 1000, "1")
        yield _trade("KRW-A", (S + 1) * 1000, "1")  # closes S: that bar is lost with the error
        raise OSError("disk gone")

    agg = BarAggregator()
    with pytest.raises(OSError, match="disk gone"):
        agg.add_many(trades())
    with pytest.raises(RuntimeError, match="resume a fresh one"):
        agg.add_many([])


def test_resume_only_on_a_fresh_aggregator() -> None:
    agg = BarAggregator()
    agg.add(_trade("KRW-A", S * 1000, "1"))
    with pytest.raises(RuntimeError, match="fresh"):
        agg.resume({"KRW-A": 0})
    with pytest.raises(ValueError, match="grace_ms"):
        BarAggregator(grace_ms=-1)


def test_applied_offsets_track_what_was_emitted() -> None:
    trades = _numbered(
        [
            _trade("KRW-A", S * 1000, "1"),  # 0
            _trade("KRW-B", S * 1000, "1"),  # 1
            _trade("KRW-A", (S + 1) * 1000, "1"),  # 2: closes A@S
            _trade("KRW-A", S * 1000, "1"),  # 3: late for A
            _trade("KRW-B", S * 1000, "1"),  # 4
        ]
    )
    agg = BarAggregator()
    agg.add_many(trades[:3])
    assert agg.applied_offsets() == {"KRW-A": 1, "KRW-B": 0}  # A: 0 emitted, 2 held; B: 1 held
    agg.add_many(trades[3:])
    assert agg.applied_offsets() == {"KRW-A": 1, "KRW-B": 0}
    agg.flush()
    assert agg.applied_offsets() == {"KRW-A": 4, "KRW-B": 4}  # nothing held: all up to 4 emitted
    assert agg.closed_through() == {"KRW-A": S + 1, "KRW-B": S}


# --- real captures vs an independent group-by --------------------------------------------


@pytest.mark.parametrize("fixture", ["capture_30s", "capture_2min"])
@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_bars_of_real_captures_equal_a_group_by(fixture: str, batch: int, request: pytest.FixtureRequest) -> None:
    trades = list(read_capture(request.getfixturevalue(fixture)))
    store = run(trades, batch_sizes=itertools.repeat(batch))
    expected = group_by(trades)
    assert store.rows == expected
    assert sum(r.trade_count for r in store.rows.values()) == len(trades)


def test_the_30s_capture_has_late_trades_folded_in(capture_30s: Path) -> None:
    trades = list(read_capture(capture_30s))
    agg = BarAggregator()
    bars = agg.add_many(trades) + agg.flush()
    amendments = [b for b in bars if b.late_trades]
    assert len(amendments) == 6  # one per out-of-order episode
    assert sum(b.late_trades for b in amendments) == 78
    store = run(trades)
    assert sum(r.late_trades for r in store.rows.values()) == 78
    assert len(store.rows) == len(group_by(trades)) == len(bars) - len(amendments)


def test_bars_of_candle_trades_equal_a_group_by(candles_year: Path) -> None:
    trades = list(itertools.islice(Recording.candles(candles_year).trades(), 8_000))
    store = run(trades, batch_sizes=itertools.repeat(500))
    assert store.rows == group_by(trades)
    assert len(store.rows) == 8_000  # candle trades are 15 s apart: one bar each


# --- crash and resume: exactly once -------------------------------------------------------


def _crash_and_resume(
    trades: Sequence[Trade],
    crash_points: Sequence[int],
    rng: random.Random,
    *,
    lose_last_batch: bool,
    tick: Callable[[Trade], int | None] | None = None,
) -> FakeBarStore:
    store = FakeBarStore()
    resume = False
    for point in crash_points:
        run(
            trades, store=store, batch_sizes=iter(lambda: rng.randint(1, 40), None), crash_after=point,
            lose_last_batch=lose_last_batch, resume=resume, tick=tick,
        )  # fmt: skip
        resume = True
    return run(
        trades, store=store, batch_sizes=iter(lambda: rng.randint(1, 40), None), resume=True,
        tick=tick,
    )  # fmt: skip


@pytest.mark.parametrize("fixture", ["capture_30s", "capture_2min"])
@pytest.mark.parametrize("lose_last_batch", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_crash_and_resume_equals_the_uninterrupted_run(
    fixture: str, lose_last_batch: bool, seed: int, request: pytest.FixtureRequest
) -> None:
    trades = list(read_capture(request.getfixturevalue(fixture)))
    rng = random.Random(seed)
    uninterrupted = run(trades).rows
    points = sorted(rng.sample(range(1, len(trades)), k=1 + seed % 3))  # one to three crashes
    resumed = _crash_and_resume(trades, points, rng, lose_last_batch=lose_last_batch)
    assert resumed.rows == uninterrupted == group_by(trades)


@pytest.mark.parametrize("point", [1, 9, 10, 12, 20, 21, 72, 125, 146, 176, 215, 303])
def test_crash_around_the_late_trades(capture_30s: Path, point: int) -> None:
    trades = list(read_capture(capture_30s))
    for lose in (False, True):
        resumed = _crash_and_resume(trades, [point], random.Random(point), lose_last_batch=lose)
        assert resumed.rows == group_by(trades)


def _every_trade(trade: Trade) -> int:
    return trade.ts_ms


def _every_seventh(trade: Trade) -> int | None:
    return trade.ts_ms + 1000 if trade.offset % 7 == 0 else None  # closes the current second


@pytest.mark.parametrize("tick", [_every_trade, _every_seventh])
@pytest.mark.parametrize("seed", range(6))
def test_crash_and_resume_with_ticks(
    capture_2min: Path, capture_30s: Path, seed: int, tick: Callable[[Trade], int | None]
) -> None:
    """With a replay clock ticking (at fixed positions of the recording), bars also close by
    time, so late trades can follow a tick-closed bar; the persisted max(ts) per market keeps
    them amendments after a restart.
    """
    trades = list(read_capture(capture_30s if seed % 2 else capture_2min))
    rng = random.Random(seed)
    uninterrupted = run(trades, tick=tick).rows
    points = sorted(rng.sample(range(1, len(trades)), k=3))
    resumed = _crash_and_resume(trades, points, rng, lose_last_batch=bool(seed % 3), tick=tick)
    assert resumed.rows == uninterrupted
    assert sum(r.trade_count for r in resumed.rows.values()) == len(trades)


def test_pending_amendment_holds_back_the_applied_offset_after_a_new_bar() -> None:
    trades = _numbered(
        [
            _trade("KRW-A", S * 1000, "10"),  # 0: bar S, closed by a tick
            _trade("KRW-A", S * 1000 + 500, "12"),  # 1: late, pending
            _trade("KRW-A", (S + 3) * 1000, "11"),  # 2: opens bar S+3; 1 is still pending
        ]
    )
    agg = BarAggregator()
    agg.add(trades[0])
    agg.tick((S + 1) * 1000)
    assert agg.add_many(trades[1:]) == []
    assert agg.applied_offsets() == {"KRW-A": 0}
    amendment, bar = agg.flush()
    assert (amendment.ts, amendment.late_trades, bar.ts) == (S, 1, S + 3)
    assert agg.applied_offsets() == {"KRW-A": 2}


def test_closed_through_is_what_prevents_a_duplicate_bar_after_a_tick() -> None:
    trades = _numbered(
        [
            _trade("KRW-A", S * 1000, "10"),  # 0: bar S, closed by the tick below
            _trade("KRW-A", S * 1000 + 500, "12"),  # 1: arrives after the tick: late
            _trade("KRW-A", (S + 1) * 1000, "11"),  # 2
        ]
    )
    store = FakeBarStore()
    agg = BarAggregator()
    store.commit(agg.add_many(trades[:1]) + agg.tick((S + 1) * 1000), agg.applied_offsets())
    store.commit(agg.add_many(trades[1:2]), agg.applied_offsets())
    assert store.applied == {"KRW-A": 0}  # trade 1 is held as a pending amendment
    # crash; resume without the closed seconds: trade 1 would open bar S a second time
    naive = BarAggregator()
    naive.resume(store.applied)
    with pytest.raises(AssertionError, match="regular bar emitted twice"):
        FakeBarStore.commit(_copy(store), naive.add_many(trades[1:]) + naive.flush(), naive.applied_offsets())
    # resume with them: trade 1 is an amendment, as without the crash
    resumed = BarAggregator()
    resumed.resume(store.applied, store.closed_through())
    store.commit(resumed.add_many(trades[1:]) + resumed.flush(), resumed.applied_offsets())
    assert store.rows[("KRW-A", S)] == Row(
        Decimal(10), Decimal(12), Decimal(10), Decimal(10), Decimal(2), 2, 1, TradeSource.CAPTURE
    )


def _copy(store: FakeBarStore) -> FakeBarStore:
    clone = FakeBarStore()
    clone.rows = {k: Row(**vars(v)) for k, v in store.rows.items()}
    clone.applied = dict(store.applied)
    return clone


def test_aggregated_bars_equal_bars_built_through_the_checked_constructor(candles_year: Path) -> None:
    # the aggregator builds bars with actors.messages.valid_bar (no re-checks): the very same objects
    agg = BarAggregator()
    bars = [b for batch in Recording.candles(candles_year).batches(500) for b in agg.add_many(batch)][:400]
    assert bars
    for bar in bars:
        rebuilt = Bar(**{name: getattr(bar, name) for name in bar.__dataclass_fields__})
        assert rebuilt == bar and hash(rebuilt) == hash(bar) and repr(rebuilt) == repr(bar)
