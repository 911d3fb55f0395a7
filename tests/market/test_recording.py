"""Tests for market.recording: the Recording view over both sources, and the ReplayPacer."""

from __future__ import annotations

import itertools
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from model.market import TradeSource
from market.capture import read_trades as read_capture
from market.recording import Recording, RecordingKind, ReplayPacer


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- Recording ------------------------------------------------------------------------


def test_open_dispatches_on_the_file_name(capture_30s: Path, candles_year: Path) -> None:
    assert Recording.open(candles_year).kind is RecordingKind.CANDLES
    assert Recording.open(candles_year).source is TradeSource.CANDLES
    assert Recording.open(capture_30s).kind is RecordingKind.CAPTURE
    assert Recording.open(capture_30s).source is TradeSource.CAPTURE


def test_totals(capture_30s: Path, capture_2min: Path, candles_year: Path) -> None:
    assert Recording.open(capture_30s).total() == 304
    assert Recording.open(capture_2min).total() == 672
    assert Recording.open(candles_year).total() == 420_800


def test_market_filter_keeps_offsets(capture_30s: Path) -> None:
    rec = Recording.capture(capture_30s).only(["KRW-WAVES", "BTC-ITAM"])
    trades = list(rec.trades())
    assert [t.market for t in trades].count("KRW-WAVES") == 3
    assert len(trades) == rec.total() == 5
    full = list(read_capture(capture_30s))
    assert trades == [t for t in full if t.market in {"KRW-WAVES", "BTC-ITAM"}]
    assert rec.only(None).total() == 304


def test_candles_filtered_to_another_market_are_empty(candles_year: Path) -> None:
    rec = Recording.candles(candles_year).only(["KRW-ETH"])
    assert list(rec.trades()) == []
    assert rec.total() == 0


def test_capture_time_window_filters_but_never_reorders(capture_30s: Path) -> None:
    start, end = _utc("2021-04-17 16:51:03"), _utc("2021-04-17 16:51:05")
    rec = Recording.capture(capture_30s).between(start, end)
    trades = list(rec.trades())
    full = list(read_capture(capture_30s))
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    assert trades == [t for t in full if lo <= t.ts_ms < hi]
    assert rec.total() == len(trades) > 0
    # the late trades of 16:51:03 arrive after a 16:51:04 trade and are kept where they arrived
    assert any(b.ts_ms < a.ts_ms for a, b in itertools.pairwise(trades))


def test_window_in_another_time_zone_is_the_same_instant(candles_year: Path) -> None:
    kst = timezone(timedelta(hours=9))
    utc_rec = Recording.candles(candles_year).between(_utc("2025-01-01 03:00"), _utc("2025-01-01 04:00"))
    kst_rec = Recording.candles(candles_year).between(
        datetime(2025, 1, 1, 12, 0, tzinfo=kst), datetime(2025, 1, 1, 13, 0, tzinfo=kst)
    )
    assert list(utc_rec.trades()) == list(kst_rec.trades())
    assert utc_rec.total() == 240


def test_candle_window_and_resume(candles_year: Path) -> None:
    rec = Recording.candles(candles_year).between(_utc("2025-01-01 03:00:20"), _utc("2025-01-01 05:00"))
    trades = list(rec.trades())
    assert rec.total() == len(trades) == 120 * 4 - 2
    assert trades[0].ts_ms == int(_utc("2025-01-01 03:00:30").timestamp() * 1000)
    middle = trades[len(trades) // 2].offset
    assert list(rec.trades(start_offset=middle)) == [t for t in trades if t.offset >= middle]


def test_batches_concatenate_to_the_trades(capture_2min: Path) -> None:
    rec = Recording.capture(capture_2min)
    batches = list(rec.batches(100, start_offset=50))
    assert [len(b) for b in batches] == [100] * 6 + [22]
    assert [t for b in batches for t in b] == list(rec.trades(50))
    with pytest.raises(ValueError, match="max_size"):
        next(rec.batches(0))


def test_the_candle_year_streams_in_constant_memory(candles_year: Path) -> None:
    trades = Recording.candles(candles_year).trades(start_offset=100_000)
    tracemalloc.start()
    try:
        count = sum(1 for _ in itertools.islice(trades, 20_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    # 20,000 live trades take ~7 MB; a stream holds a few at a time (~0.1 MB peak)
    assert peak < 1_000_000, f"peak {peak} bytes: the recording is not streaming"


def test_windows_must_be_aware_and_non_empty(candles_year: Path) -> None:
    rec = Recording.candles(candles_year)
    with pytest.raises(ValueError, match="timezone-aware"):
        rec.between(datetime(2025, 1, 1), None)  # noqa: DTZ001 -- the point of the test
    with pytest.raises(ValueError, match="empty window"):
        rec.between(_utc("2025-01-02 00:00"), _utc("2025-01-01 00:00"))
    with pytest.raises(ValueError, match="start_offset"):
        next(rec.trades(start_offset=-5))


# --- ReplayPacer ------------------------------------------------------------------------

T0 = 1_700_000_000_000  # some recording time, epoch ms


def _schedule(pacer: ReplayPacer, times: list[int], wall: float = 100.0) -> list[float]:
    pacer.start(wall_s=wall, ts_ms=times[0])
    return [pacer.due(t) for t in times]


@pytest.mark.parametrize(
    ("speed", "expected"),
    [(1.0, [100.0, 101.0, 102.5, 102.5, 110.0]), (10.0, [100.0, 100.1, 100.25, 100.25, 101.0])],
)
def test_speed_scales_recording_time(speed: float, expected: list[float]) -> None:
    pacer = ReplayPacer(speed=speed, max_gap_s=60)
    due = _schedule(pacer, [T0, T0 + 1000, T0 + 2500, T0 + 2500, T0 + 10_000])
    assert due == pytest.approx(expected)


def test_max_speed_makes_everything_due_at_once() -> None:
    pacer = ReplayPacer(speed=None, max_gap_s=60)
    assert _schedule(pacer, [T0, T0 + 1000, T0 + 48 * 3_600_000]) == [100.0, 100.0, 100.0]
    assert pacer.replay_time_ms == T0 + 48 * 3_600_000
    assert pacer.speed is None


def test_long_gaps_are_compressed() -> None:
    pacer = ReplayPacer(speed=2.0, max_gap_s=5)
    gap = 801 * 60_000  # the holes between the candle file's windows
    due = _schedule(pacer, [T0, T0 + 4000, T0 + 4000 + gap, T0 + 5000 + gap])
    assert due == pytest.approx([100.0, 102.0, 104.5, 105.0])


def test_out_of_order_trades_never_move_time_back() -> None:
    pacer = ReplayPacer(speed=1.0, max_gap_s=60)
    due = _schedule(pacer, [T0, T0 + 2000, T0 + 1000, T0 + 1500, T0 + 3000])
    assert due == pytest.approx([100.0, 102.0, 102.0, 102.0, 103.0])
    assert pacer.replay_time_ms == T0 + 3000


def test_resume_from_an_arbitrary_trade() -> None:
    times = [T0 + k * 1500 for k in range(10)]
    pacer = ReplayPacer(speed=3.0, max_gap_s=60)
    full = _schedule(pacer, times, wall=0.0)
    resumed_pacer = ReplayPacer(speed=3.0, max_gap_s=60)
    resumed = _schedule(resumed_pacer, times[6:], wall=500.0)
    assert resumed[0] == 500.0
    assert [r - 500.0 for r in resumed] == pytest.approx([f - full[6] for f in full[6:]])


def test_pacing_the_real_candle_year_compresses_its_holes(candles_year: Path) -> None:
    pacer = ReplayPacer(speed=60.0, max_gap_s=60)
    trades = Recording.candles(candles_year).trades()
    first = next(trades)
    pacer.start(wall_s=0.0, ts_ms=first.ts_ms)
    prev_ts, prev_due = first.ts_ms, 0.0
    steps: set[float] = set()
    holes = 0
    for trade in itertools.islice(trades, 3_000):  # crosses three ~801-minute holes
        due = pacer.due(trade.ts_ms)
        steps.add(round(due - prev_due, 9))
        step_ms = trade.ts_ms - prev_ts
        assert step_ms == 15_000 or step_ms > 3_600_000
        holes += step_ms > 3_600_000
        prev_ts, prev_due = trade.ts_ms, due
    assert holes == 3
    # inside a window: 15 s of recording per trade = 0.25 s at 60x; a hole costs 60 s / 60 = 1 s
    assert steps == {0.25, 1.0}


def test_pacer_must_be_started_and_validates() -> None:
    with pytest.raises(RuntimeError, match="start"):
        ReplayPacer(speed=1.0, max_gap_s=1).due(T0)
    for bad_speed in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            ReplayPacer(speed=bad_speed, max_gap_s=1)
    with pytest.raises(ValueError, match="max_gap_s"):
        ReplayPacer(speed=1.0, max_gap_s=-1)
