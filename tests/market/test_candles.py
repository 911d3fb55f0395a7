"""Tests for market.candles: the deterministic expansion of real candles into trades."""

from __future__ import annotations

import csv
import gzip
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from model.market import Side, Trade, TradeSource
from market.candles import Candle, CandleError, count_trades, expand_candle, read_candles, read_trades

HEADER = "timestamp,open,high,low,close,volume"
RESUME_POINTS = (1, 2, 3, 4, 799, 800, 801, 210_001, 420_796, 420_799)
SAMPLE_LEN = 1_000


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1000


# Windows inside the year: mid-minute edges, one across an 801-minute gap.
WINDOWS = (
    (_ms("2025-01-01 00:00:07"), _ms("2025-01-01 05:00:31")),
    (_ms("2024-08-25 01:47:00"), _ms("2024-08-25 15:30:15")),
    (_ms("2025-08-24 09:12:45"), _ms("2025-08-24 09:13:00")),  # the very last trade only
)


@dataclass
class YearPass:
    """What one full streaming pass over the year collected for the tests."""

    trades: int
    candles: int
    windows: dict[tuple[int, int], list[Trade]]
    after: dict[int, list[Trade]]  # resume point -> the SAMPLE_LEN trades from it


def _independent_rows(path: Path) -> Iterator[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """The candles parsed with the csv module, independently of market.candles."""
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == HEADER.split(",")
        for ts, o, h, lo, c, v in reader:
            yield _ms(ts), Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v)


@pytest.fixture(scope="module")
def year(candles_year: Path) -> YearPass:
    """Stream the year once, checking every candle's expansion against the raw file."""
    windows: dict[tuple[int, int], list[Trade]] = {w: [] for w in WINDOWS}
    after: dict[int, list[Trade]] = {p: [] for p in RESUME_POINTS}
    trades = read_trades(candles_year)
    n_trades = n_candles = 0
    prev_seq = -1
    for index, (ts, o, h, lo, c, v) in enumerate(_independent_rows(candles_year)):
        four = list(itertools.islice(trades, 4))
        n_candles += 1
        n_trades += len(four)
        assert len(four) == 4
        # positions and identities
        assert [t.offset for t in four] == [4 * index + k for k in range(4)]
        assert [t.ts_ms for t in four] == [ts, ts + 15_000, ts + 30_000, ts + 45_000]
        assert all(t.market == "KRW-BTC" and t.source is TradeSource.CANDLES for t in four)
        assert prev_seq < four[0].seq < four[1].seq < four[2].seq < four[3].seq
        prev_seq = four[3].seq
        # the OHLC of the minute's trades is the candle, exactly
        prices = [t.price for t in four]
        assert (prices[0], max(prices), min(prices), prices[-1]) == (o, h, lo, c)
        # extremes in the order the candle implies
        assert prices[1:3] == ([lo, h] if c >= o else [h, lo])
        # volumes: 8-decimal parts summing exactly to the candle volume
        assert sum(t.volume for t in four) == v
        assert all(t.volume == t.volume.quantize(Decimal("1E-8")) and t.volume >= 0 for t in four)
        for t in four:
            for (start, end), bucket in windows.items():
                if start <= t.ts_ms < end:
                    bucket.append(t)
            for point, bucket in after.items():
                if t.offset >= point and len(bucket) < SAMPLE_LEN:
                    bucket.append(t)
    assert next(trades, None) is None
    return YearPass(trades=n_trades, candles=n_candles, windows=windows, after=after)


def test_the_year_expands_to_four_trades_per_candle(year: YearPass) -> None:
    assert year.candles == 105_200
    assert year.trades == 420_800


@pytest.mark.parametrize("window", WINDOWS)
def test_slicing_by_time_equals_filtering_the_full_read(
    year: YearPass, candles_year: Path, window: tuple[int, int]
) -> None:
    start, end = window
    sliced = list(read_trades(candles_year, from_ms=start, until_ms=end))
    assert sliced == year.windows[window]
    assert sliced, "every window holds trades"
    assert count_trades(candles_year, from_ms=start, until_ms=end) == len(sliced)


@pytest.mark.parametrize("point", RESUME_POINTS)
def test_resuming_at_an_offset_equals_the_full_read(year: YearPass, candles_year: Path, point: int) -> None:
    resumed = list(itertools.islice(read_trades(candles_year, start_offset=point), SAMPLE_LEN))
    assert resumed == year.after[point]
    assert resumed[0].offset == point


def test_resume_past_the_end_is_empty(candles_year: Path) -> None:
    assert list(read_trades(candles_year, start_offset=420_800)) == []
    assert count_trades(candles_year, start_offset=420_798) == 2


def test_offset_and_window_combine(year: YearPass, candles_year: Path) -> None:
    start, end = WINDOWS[0]
    expected = year.windows[WINDOWS[0]]
    point = expected[len(expected) // 2].offset + 1
    combined = list(read_trades(candles_year, start_offset=point, from_ms=start, until_ms=end))
    assert combined == [t for t in expected if t.offset >= point]
    assert count_trades(candles_year, start_offset=point, from_ms=start, until_ms=end) == len(combined)


def test_expansion_is_deterministic(candles_year: Path) -> None:
    first = list(itertools.islice(read_trades(candles_year), 4_000))
    again = list(itertools.islice(read_trades(candles_year), 4_000))
    assert first == again


def test_expansion_of_a_rising_candle() -> None:
    # 2024-08-24 22:31 from the file: open 85,529,000, high 85,567,000, low 85,494,000, close 85,551,000
    candle = Candle(
        index=3,
        ts_ms=_ms("2024-08-24 22:31:00"),
        open=Decimal("85529000.0"),
        high=Decimal("85567000.0"),
        low=Decimal("85494000.0"),
        close=Decimal("85551000.0"),
        volume=Decimal("2.1692454"),
    )
    trades = expand_candle(candle, market="KRW-BTC")
    assert [t.price for t in trades] == [Decimal(85529000), Decimal(85494000), Decimal(85567000), Decimal(85551000)]
    assert [t.volume for t in trades] == [Decimal("0.54231135")] * 3 + [Decimal("0.54231135")]
    assert [t.side for t in trades] == [Side.BID, Side.ASK, Side.BID, Side.ASK]
    assert [t.offset for t in trades] == [12, 13, 14, 15]
    assert [t.seq - t.ts_ms * 1000 for t in trades] == [0, 1, 2, 3]


def test_expansion_of_a_falling_flat_candle() -> None:
    candle = Candle(
        index=0,
        ts_ms=_ms("2024-08-24 22:28:00"),
        open=Decimal("85533000.0"),
        high=Decimal("85533000.0"),
        low=Decimal("85530000.0"),
        close=Decimal("85530000.0"),
        volume=Decimal("1.69129818"),
    )
    trades = expand_candle(candle, market="KRW-BTC")
    assert [t.price for t in trades] == [Decimal(85533000), Decimal(85533000), Decimal(85530000), Decimal(85530000)]
    assert [t.volume for t in trades] == [Decimal("0.42282454")] * 3 + [Decimal("0.42282456")]
    assert [t.side for t in trades] == [Side.ASK] * 4  # falling candle; ties keep the side


def test_tiny_volume_in_exponent_notation(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"{HEADER}\r\n2025-05-17 19:25:00,146477000.0,146477000.0,146477000.0,146477000.0,4.096e-05\r\n")
    trades = list(read_trades(path))
    assert [t.volume for t in trades] == [Decimal("0.00001024")] * 4
    assert sum(t.volume for t in trades) == Decimal("4.096e-05")


def test_plain_csv_and_market_name(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"{HEADER}\n2024-01-01 00:00:00,10,12,9,11,1\n2024-01-01 00:01:00,11,11,10,10,2\n")
    trades = list(read_trades(path, market="KRW-ETH"))
    assert len(trades) == 8
    assert {t.market for t in trades} == {"KRW-ETH"}
    assert [c.index for c in read_candles(path)] == [0, 1]


def _bad_file(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write("\r\n".join((header, *rows)) + "\r\n")
    return path


GOOD_ROW = "2024-01-01 00:00:00,10,12,9,11,1"


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ("2024-01-01 00:01:00,10,12,9,11", "row", "expected 6 comma-separated columns, got 5"),
        ("2024-01-01 00:01:00,10,12,9,11,1,7", "row", "got 7"),
        ("", "row", "got 1"),
        ("2024-01-01T00:01:00,10,12,9,11,1", "timestamp", "expected a UTC minute"),
        ("2024-13-01 00:01:00,10,12,9,11,1", "timestamp", "expected a UTC minute"),
        ("2024-01-01 00:01:30,10,12,9,11,1", "timestamp", "does not open on a minute"),
        ("2024-01-01 00:00:00,10,12,9,11,1", "timestamp", "strictly increase"),
        ("2023-12-31 23:59:00,10,12,9,11,1", "timestamp", "strictly increase"),
        ("2024-01-01 00:01:00,abc,12,9,11,1", "open", "not a number: 'abc'"),
        ("2024-01-01 00:01:00,10,NaN,9,11,1", "high", "not a finite number"),
        ("2024-01-01 00:01:00,10,12, 9,11,1", "low", "not a finite number"),
        ("2024-01-01 00:01:00,10,12,-9,11,1", "low", "price must be positive"),
        ("2024-01-01 00:01:00,10,12,9,0,1", "close", "price must be positive"),
        ("2024-01-01 00:01:00,10,8,9,9,1", "low", "is above high"),
        ("2024-01-01 00:01:00,13,12,9,11,1", "open", "outside [low 9, high 12]"),
        ("2024-01-01 00:01:00,10,12,9,8.5,1", "close", "outside"),
        ("2024-01-01 00:01:00,10,12,9,11,0", "volume", "must be positive"),
        ("2024-01-01 00:01:00,10,12,9,11,-0.5", "volume", "must be positive"),
        # review finding 11: finite but absurd numbers, refused here rather than in the bar aggregator
        ("2024-01-01 00:01:00,10,1E+400000,9,11,1", "high", "1E+400000 is too large; allowed: a price from"),
        ("2024-01-01 00:01:00,10,12,9,11,1E+400000", "volume", "1E+400000 is too large; allowed: a volume from"),
        ("2024-01-01 00:01:00,1E-400000,12,1E-400000,11,1", "open", "too small; allowed: a price from 1E-12"),
        ("2024-01-01 00:01:00,10,12,9,11,1E-400000", "volume", "too small"),
        ("2024-01-01 00:01:00,10,12,9,11," + "1" * 5000, "volume", "not a number"),
        ("2024-01-01 00:01:00,10,12,9,11,inf", "volume", "not a finite number"),
        ("1970-01-01 00:01:00,10,12,9,11,1", "timestamp", "not a plausible candle time"),
        ("2100-01-01 00:01:00,10,12,9,11,1", "timestamp", "not a plausible candle time"),
    ],
)
def test_bad_rows_name_file_line_and_column(tmp_path: Path, row: str, column: str, problem: str) -> None:
    path = _bad_file(tmp_path, GOOD_ROW, row)
    trades = read_trades(path)
    assert len(list(itertools.islice(trades, 4))) == 4  # the good first candle streams out first
    with pytest.raises(CandleError) as caught:
        next(trades)
    error = caught.value
    assert (error.path, error.line_no, error.column) == (path, 3, column)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:3: column {column!r}: ")


@pytest.mark.parametrize(("header", "problem"), [
    ("time,open,high,low,close,volume", "missing column(s) 'timestamp'; unknown column(s) 'time'"),
    ("timestamp,open,high,low,volume", "missing column(s) 'close'"),
    ("timestamp,high,open,low,close,volume", "out of order"),
])
def test_bad_header_says_which_columns(tmp_path: Path, header: str, problem: str) -> None:
    path = _bad_file(tmp_path, GOOD_ROW, header=header)
    with pytest.raises(CandleError) as caught:
        list(read_trades(path))
    assert (caught.value.line_no, caught.value.column) == (1, "header")
    assert problem in caught.value.problem
    assert "'timestamp,open,high,low,close,volume'" in caught.value.problem


def test_rows_skipped_by_offset_are_not_parsed(tmp_path: Path) -> None:
    path = _bad_file(tmp_path, "garbage", GOOD_ROW)
    assert [t.offset for t in read_trades(path, start_offset=4)] == [4, 5, 6, 7]
    with pytest.raises(CandleError, match=":2: column 'row'"):
        list(read_trades(path))


def test_negative_offsets_are_rejected(candles_year: Path) -> None:
    with pytest.raises(ValueError, match="start_offset"):
        next(read_trades(candles_year, start_offset=-1))
    with pytest.raises(ValueError, match="skip_rows"):
        next(read_candles(candles_year, skip_rows=-1))


def test_expanded_trades_equal_trades_built_through_the_checked_constructor(candles_year: Path) -> None:
    # the decoder builds trades with actors.messages.valid_trade (no re-checks): the very same objects
    for trade in itertools.islice(read_trades(candles_year), 400):
        rebuilt = Trade(**{name: getattr(trade, name) for name in trade.__dataclass_fields__})
        assert rebuilt == trade and hash(rebuilt) == hash(trade) and repr(rebuilt) == repr(trade)
