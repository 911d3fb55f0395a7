"""Tests for market.trades_file (the user's own trade files) and its place in market.recording."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from model.market import Side, Trade, TradeSource
from market.candles import CandleError
from market.capture import read_trades as read_capture
from market.recording import Recording, RecordingKind, candle_market_from_name
from market.trades_file import TradesFileError, is_trades_file, read_trades, write_trades

CSV = """market,ts_ms,price,volume,side,seq
KRW-BTC,1724538480000,85533000,0.01234567,BID,17245384800000000
KRW-ETH,1724538480500,3500000.5,1.5,ask,17245384805000000

KRW-BTC,1724538481000,85534000,0.1,buy,17245384810000000
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_become_trades_with_exact_decimals_and_contiguous_offsets(tmp_path: Path) -> None:
    trades = list(read_trades(_write(tmp_path / "mine.csv", CSV)))
    assert trades == [
        Trade(market="KRW-BTC", ts_ms=1724538480000, price=Decimal("85533000"), volume=Decimal("0.01234567"),
              side=Side.BID, seq=17245384800000000, source=TradeSource.FILE, offset=0),
        Trade(market="KRW-ETH", ts_ms=1724538480500, price=Decimal("3500000.5"), volume=Decimal("1.5"),
              side=Side.ASK, seq=17245384805000000, source=TradeSource.FILE, offset=1),
        Trade(market="KRW-BTC", ts_ms=1724538481000, price=Decimal("85534000"), volume=Decimal("0.1"),
              side=Side.BID, seq=17245384810000000, source=TradeSource.FILE, offset=2),
    ]


def test_iso_timestamps_any_column_order_and_default_seq(tmp_path: Path) -> None:
    text = ("side,volume,price,timestamp,market\n"
            "ASK,1,100,2024-08-24T22:28:00.123Z,KRW-XRP\n"
            "BID,2,101,2024-08-24 22:28:01,KRW-XRP\n"
            "SELL,3,102,2024-08-25T07:28:02+09:00,KRW-XRP\n")
    trades = list(read_trades(_write(tmp_path / "t.csv", text)))
    base = int(datetime(2024, 8, 24, 22, 28, tzinfo=UTC).timestamp()) * 1000
    assert [t.ts_ms for t in trades] == [base + 123, base + 1000, base + 2000]
    assert [t.side for t in trades] == [Side.ASK, Side.BID, Side.ASK]
    assert [t.seq for t in trades] == [0, 1, 2]  # no seq column: the offset


def test_jsonl_reads_numbers_exactly_and_gzip_is_transparent(tmp_path: Path) -> None:
    lines = ('{"market": "KRW-BTC", "ts_ms": 1724538480000, "price": 0.1, "volume": "0.30000000", "side": "BID",'
             ' "seq": 7}\n'
             '\n'
             '{"market": "KRW-BTC", "timestamp": "2024-08-24T22:28:01Z", "price": 85533000, "volume": 1e-8,'
             ' "side": "ask"}\n')
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(lines.encode()))
    first, second = read_trades(path)
    assert (first.price, first.volume, first.seq, first.offset) == (Decimal("0.1"), Decimal("0.30000000"), 7, 0)
    assert (second.ts_ms, second.price, second.volume, second.seq) == (1724538481000, Decimal(85533000),
                                                                       Decimal("1e-8"), 1)


def test_resume_skips_rows_unparsed(tmp_path: Path) -> None:
    text = CSV.replace("KRW-ETH,1724538480500,3500000.5", "KRW-ETH,not-a-time,3500000.5")
    path = _write(tmp_path / "t.csv", text)
    assert [t.offset for t in read_trades(path, start_offset=2)] == [2]
    with pytest.raises(TradesFileError, match=r"t.csv:3: column 'ts_ms'"):
        list(read_trades(path))


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("market,ts_ms,price,volumne,side\n", "header", "unknown column(s) 'volumne'"),
    ("market,ts_ms,price,side\n", "header", "missing column(s) 'volume'"),
    ("market,ts_ms,timestamp,price,volume,side\n", "header", "has both 'ts_ms' and 'timestamp'"),
    ("market,price,volume,side\n", "header", "needs 'ts_ms' or 'timestamp'"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,0,1,BID\n", "price", "> 0, got '0'"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,1,abc,BID\n", "volume", "not a number: 'abc'"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,1,1,HOLD\n", "side", "expected BID or ASK"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,-5,1,1,BID\n", "ts_ms", "whole number >= 0"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,1,1\n", "row", "expected 5 comma-separated columns, got 4"),
    ("market,ts_ms,price,volume,side\nBTC,1,1,1,BID\n", "market", "market code like KRW-BTC"),
])
def test_bad_csv_names_line_and_column(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(TradesFileError) as caught:
        list(read_trades(path))
    assert caught.value.column == where
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_jsonl_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", '{"market": "KRW-BTC", "ts_ms": 1724538480000, "price": 1, "volume": 1, "side": "BID"}\n'
                                          '[1, 2]\n')
    with pytest.raises(TradesFileError, match=r"bad.jsonl:2: column 'line': expected a JSON object, got list"):
        list(read_trades(path))
    _write(path, '{"market": "KRW-BTC", "ts_ms": true, "price": 1, "volume": 1, "side": "BID"}\n')
    with pytest.raises(TradesFileError, match="column 'ts_ms'"):
        list(read_trades(path))


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.jsonl", "out.jsonl.gz"])
def test_written_files_read_back_identically_and_deterministically(tmp_path: Path, capture_30s: Path,
                                                                   name: str) -> None:
    original = list(read_capture(capture_30s))
    path = tmp_path / name
    assert write_trades(path, original) == len(original) == 304
    first_bytes = path.read_bytes()
    again = list(read_trades(path))
    assert [(t.market, t.ts_ms, t.price, t.volume, t.side, t.seq, t.offset) for t in again] == \
        [(t.market, t.ts_ms, t.price, t.volume, t.side, t.seq, t.offset) for t in original]
    write_trades(path, original)
    assert path.read_bytes() == first_bytes
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_recording_opens_trade_files_by_name_and_header(tmp_path: Path, candles_year: Path) -> None:
    csv_path = _write(tmp_path / "mine.csv", CSV)
    assert is_trades_file(csv_path)
    assert not is_trades_file(candles_year)
    assert not is_trades_file(tmp_path / "missing.csv")
    rec = Recording.open(csv_path)
    assert rec.kind is RecordingKind.TRADES
    assert rec.source is TradeSource.FILE
    assert rec.total() == 3
    assert [t.offset for t in rec.only(["KRW-BTC"]).trades()] == [0, 2]
    window = rec.between(datetime.fromtimestamp(1724538480.5, UTC), datetime.fromtimestamp(1724538481, UTC))
    assert [t.market for t in window.trades()] == ["KRW-ETH"]
    assert [t.offset for t in rec.trades(1)] == [1, 2]
    assert Recording.open(_write(tmp_path / "x.jsonl", "")).kind is RecordingKind.TRADES
    assert Recording.open(candles_year).kind is RecordingKind.CANDLES


def test_candle_files_take_their_market_from_the_name(tmp_path: Path) -> None:
    assert candle_market_from_name("krw-btc-1m-candles-2024-08-to-2025-08.csv.gz") == "KRW-BTC"
    assert candle_market_from_name("krw-eth-1m-candles.csv") == "KRW-ETH"
    assert candle_market_from_name("BTC-XRP-1m.csv") == "BTC-XRP"
    assert candle_market_from_name("my-candles.csv") == "KRW-BTC"
    path = _write(tmp_path / "krw-eth-1m.csv", "timestamp,open,high,low,close,volume\n"
                                               "2024-01-01 00:00:00,10,12,9,11,4\n")
    rec = Recording.open(path)
    assert rec.kind is RecordingKind.CANDLES
    assert {t.market for t in rec.trades()} == {"KRW-ETH"}
    assert Recording.open(path, candle_market="KRW-SOL").candle_market == "KRW-SOL"


# --- review finding 11: bad input is our error, naming line and column, never a traceback ----------

ROW = "market,ts_ms,price,volume,side\n{}\n"


@pytest.mark.parametrize(("row", "column", "problem"), [
    ("KRW-BTC,²,1,1,BID", "ts_ms", "whole number >= 0"),  # '²'.isdigit() is True, int('²') raises
    ("KRW-BTC,１７２４５３８４８００００,1,1,BID", "ts_ms", "whole number >= 0"),
    ("KRW-BTC,1724538480,85533000,1,BID", "ts_ms", "looks like seconds, expected milliseconds (e.g. 1724538480000)"),
    ("KRW-BTC,1724538480000000,85533000,1,BID", "ts_ms", "looks like microseconds"),
    ("KRW-BTC,5,85533000,1,BID", "ts_ms", "not a plausible trade time"),
    ("KRW-BTC,4102444800000,85533000,1,BID", "ts_ms", "not a plausible trade time"),
    ("KRW-BTC,1724538480000,1E+400000,1,BID", "price", "1E+400000 is too large; allowed: a price from 1E-12 to 1E+12"),
    ("KRW-BTC,1724538480000,1,1E+400000,BID", "volume", "is too large; allowed: a volume from 1E-12 to 1E+15"),
    ("KRW-BTC,1724538480000,1E-400000,1,BID", "price", "too small"),
    ("KRW-BTC,1724538480000,1,1E-400000,BID", "volume", "too small"),
    ("KRW-BTC,1724538480000,nan,1,BID", "price", "finite number > 0"),
    ("KRW-BTC,1724538480000,inf,1,BID", "price", "finite number > 0"),
    ("KRW-BTC,1724538480000,-1,1,BID", "price", "finite number > 0"),
    ("KRW-BTC,1724538480000,0,1,BID", "price", "finite number > 0"),
    ("KRW-BTC,1724538480000,1,0,BID", "volume", "finite number > 0"),
    ("KRW-BTC,1724538480000,1,0.0000000000000000000001,BID", "volume", "too small"),
    ("KRW-BTC,1724538480000,1.00000000000000000000000000000000001,1,BID", "price", "more than 34 significant digits"),
    ("KRW-BTC,1724538480000,²,1,BID", "price", "not a number"),
    ("KRW-BTC,1724538480000," + "9" * 5000 + ",1,BID", "price", "not a number"),
    ("KRW-,1724538480000,1,1,BID", "market", "market code like KRW-BTC"),
    ("-BTC,1724538480000,1,1,BID", "market", "market code like KRW-BTC"),
    ("krw-btc,1724538480000,1,1,BID", "market", "upper-case"),
    ("KRW-B-C,1724538480000,1,1,BID", "market", "QUOTE-BASE"),
    ("KRW-₿,1724538480000,1,1,BID", "market", "QUOTE-BASE"),
])
def test_absurd_values_are_refused_where_they_enter(tmp_path: Path, row: str, column: str, problem: str) -> None:
    path = _write(tmp_path / "bad.csv", ROW.format(row))
    with pytest.raises(TradesFileError) as caught:
        list(read_trades(path))
    assert (caught.value.line_no, caught.value.column) == (2, column)
    assert problem in caught.value.problem
    assert len(str(caught.value)) < 400  # a 5,000-digit value is not echoed whole


def test_iso_times_before_2009_are_refused_too(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "market,timestamp,price,volume,side\nKRW-BTC,1970-01-21T07:22:18Z,1,1,BID\n")
    with pytest.raises(TradesFileError, match=r"t.csv:2: column 'timestamp': '1970-01-21T07:22:18Z' is not a plausible"):
        list(read_trades(path))


@pytest.mark.parametrize("line", [
    '{"market": "KRW-BTC", "ts_ms": 1724538480000, "price": 1E+400000, "volume": 1, "side": "BID"}',
    '{"market": "KRW-BTC", "ts_ms": 1724538480000, "price": "1E+400000", "volume": 1, "side": "BID"}',
    '{"market": "KRW-BTC", "ts_ms": 1724538480000, "price": 1, "volume": ' + "9" * 5000 + ', "side": "BID"}',
    '{"market": "KRW-BTC", "ts_ms": 1724538480, "price": 1, "volume": 1, "side": "BID"}',
    '{"market": "KRW-", "ts_ms": 1724538480000, "price": 1, "volume": 1, "side": "BID"}',
    '{"market": 7, "ts_ms": 1724538480000, "price": 1, "volume": 1, "side": "BID"}',
    '{"market": "KRW-BTC", "ts_ms": "²", "price": 1, "volume": 1, "side": "BID"}',
])
def test_absurd_json_values_are_refused_with_the_line(tmp_path: Path, line: str) -> None:
    path = _write(tmp_path / "bad.jsonl", line + "\n")
    with pytest.raises(TradesFileError, match=r"bad.jsonl:1: "):
        list(read_trades(path))


def test_a_trade_csv_without_side_is_reported_as_a_trade_file_missing_side(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.csv", "market,ts_ms,price,volume\nKRW-BTC,1724538480000,85533000,0.1\n")
    assert is_trades_file(path)
    rec = Recording.open(path)
    assert rec.kind is RecordingKind.TRADES
    with pytest.raises(TradesFileError) as caught:
        list(rec.trades())
    assert (caught.value.line_no, caught.value.column) == (1, "header")
    assert "missing column(s) 'side' of a trade file" in caught.value.problem
    assert "candle" not in str(caught.value)


def test_a_candle_csv_with_a_wrong_header_is_still_reported_as_a_candle_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", "timestamp,open,high,low,volume\n2024-01-01 00:00:00,10,12,9,4\n")
    assert not is_trades_file(path)
    with pytest.raises(CandleError, match="missing column.s. 'close'"):
        list(Recording.open(path).trades())
