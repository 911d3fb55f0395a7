"""backtest.importers: saved Upbit REST responses (hand-written in the API's exact shape) → replayable files."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from model.market import Side
from backtest.command import backtest_main
from backtest.importers import UpbitImportError, import_candles, import_ticks
from market.recording import Recording, RecordingKind

# GET /v1/candles/minutes/1?market=KRW-ETH&count=3 — newest first, numbers as the API writes them.
CANDLES_PAGE_1 = """[
  {"market":"KRW-ETH","candle_date_time_utc":"2024-08-24T22:30:00","candle_date_time_kst":"2024-08-25T07:30:00",
   "opening_price":3630000.0,"high_price":3631000.0,"low_price":3629000.0,"trade_price":3629000.0,
   "timestamp":1724538655123,"candle_acc_trade_price":10887123.45678900,"candle_acc_trade_volume":3.00012345,"unit":1},
  {"market":"KRW-ETH","candle_date_time_utc":"2024-08-24T22:29:00","candle_date_time_kst":"2024-08-25T07:29:00",
   "opening_price":3628000.0,"high_price":3630000.0,"low_price":3628000.0,"trade_price":3630000.0,
   "timestamp":1724538599001,"candle_acc_trade_price":3629000.00000000,"candle_acc_trade_volume":1.0,"unit":1},
  {"market":"KRW-ETH","candle_date_time_utc":"2024-08-24T22:28:00","candle_date_time_kst":"2024-08-25T07:28:00",
   "opening_price":3627000.0,"high_price":3628000.0,"low_price":3626000.0,"trade_price":3628000.0,
   "timestamp":1724538530000,"candle_acc_trade_price":362700.0,"candle_acc_trade_volume":0.1,"unit":1}
]"""
# The next page, fetched a little later with `to=`: it overlaps at 22:30, whose candle had grown meanwhile.
CANDLES_PAGE_2 = """[
  {"market":"KRW-ETH","candle_date_time_utc":"2024-08-24T22:31:00","candle_date_time_kst":"2024-08-25T07:31:00",
   "opening_price":3629000.0,"high_price":3629000.0,"low_price":3620000.0,"trade_price":3620000.0,
   "timestamp":1724538700000,"candle_acc_trade_price":1.0,"candle_acc_trade_volume":0.00000004,"unit":1},
  {"market":"KRW-ETH","candle_date_time_utc":"2024-08-24T22:30:00","candle_date_time_kst":"2024-08-25T07:30:00",
   "opening_price":3630000.0,"high_price":3632000.0,"low_price":3629000.0,"trade_price":3629000.0,
   "timestamp":1724538659999,"candle_acc_trade_price":1.0,"candle_acc_trade_volume":3.5,"unit":1}
]"""

# GET /v1/trades/ticks?market=KRW-BTC&count=3 — newest first.
TICKS = """[
  {"market":"KRW-BTC","trade_date_utc":"2024-08-24","trade_time_utc":"22:28:02","timestamp":1724538482500,
   "trade_price":85534000.0,"trade_volume":0.00011691,"prev_closing_price":85000000.0,"change_price":534000.0,
   "ask_bid":"ASK","sequential_id":17245384825000002},
  {"market":"KRW-BTC","trade_date_utc":"2024-08-24","trade_time_utc":"22:28:01","timestamp":1724538481000,
   "trade_price":85533000.0,"trade_volume":0.1,"prev_closing_price":85000000.0,"change_price":533000.0,
   "ask_bid":"BID","sequential_id":17245384810000001},
  {"market":"KRW-BTC","trade_date_utc":"2024-08-24","trade_time_utc":"22:28:01","timestamp":1724538481000,
   "trade_price":85533000.0,"trade_volume":0.02,"prev_closing_price":85000000.0,"change_price":533000.0,
   "ask_bid":"BID","sequential_id":17245384810000000}
]"""


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_candle_pages_merge_oldest_first_keeping_the_more_complete_duplicate(tmp_path: Path) -> None:
    out = tmp_path / "krw-eth-1m-candles.csv"
    done = import_candles([_file(tmp_path, "p1.json", CANDLES_PAGE_1), _file(tmp_path, "p2.json", CANDLES_PAGE_2)],
                          out)
    assert (done.market, done.candles, done.duplicates) == ("KRW-ETH", 4, 1)
    assert (done.first, done.last) == ("2024-08-24 22:28:00", "2024-08-24 22:31:00")
    assert out.read_text() == (
        "timestamp,open,high,low,close,volume\n"
        "2024-08-24 22:28:00,3627000.0,3628000.0,3626000.0,3628000.0,0.1\n"
        "2024-08-24 22:29:00,3628000.0,3630000.0,3628000.0,3630000.0,1.0\n"
        "2024-08-24 22:30:00,3630000.0,3632000.0,3629000.0,3629000.0,3.5\n"
        "2024-08-24 22:31:00,3629000.0,3629000.0,3620000.0,3620000.0,0.00000004\n"
    )
    rec = Recording.open(out)  # the replay reads it, as KRW-ETH (from the name)
    assert rec.kind is RecordingKind.CANDLES
    trades = list(rec.trades())
    assert len(trades) == 16 and {t.market for t in trades} == {"KRW-ETH"}
    assert sum((t.volume for t in trades[8:12]), Decimal(0)) == Decimal("3.5")


def test_pages_in_one_file_as_nested_arrays_or_lines_and_gzip_output(tmp_path: Path) -> None:
    nested = _file(tmp_path, "nested.json", f"[{CANDLES_PAGE_1}, {CANDLES_PAGE_2}]")
    lines = _file(tmp_path, "lines.json", json.dumps(json.loads(CANDLES_PAGE_1)) + "\n"
                  + json.dumps(json.loads(CANDLES_PAGE_2)) + "\n")
    a, b = tmp_path / "krw-eth-1m-a.csv.gz", tmp_path / "krw-eth-1m-b.csv.gz"
    import_candles([nested], a)
    import_candles([lines], b)
    assert a.read_bytes() == b.read_bytes()  # no time stamp in the gzip header either
    assert Recording.open(a).total() == 16


def test_ticks_become_a_trade_file_oldest_first(tmp_path: Path) -> None:
    page = _file(tmp_path, "ticks.json", TICKS)
    out = tmp_path / "btc-ticks.csv"
    done = import_ticks([page, page], out)  # the same page twice: duplicates dropped
    assert (done.markets, done.trades, done.duplicates) == (("KRW-BTC",), 3, 3)
    assert out.read_text() == (
        "market,ts_ms,price,volume,side,seq\n"
        "KRW-BTC,1724538481000,85533000.0,0.02,BID,17245384810000000\n"
        "KRW-BTC,1724538481000,85533000.0,0.1,BID,17245384810000001\n"
        "KRW-BTC,1724538482500,85534000.0,0.00011691,ASK,17245384825000002\n"
    )
    trades = list(Recording.open(out).trades())
    assert [(t.price, t.volume, t.side, t.offset) for t in trades] == [
        (Decimal("85533000.0"), Decimal("0.02"), Side.BID, 0), (Decimal("85533000.0"), Decimal("0.1"), Side.BID, 1),
        (Decimal("85534000.0"), Decimal("0.00011691"), Side.ASK, 2)]
    jsonl = tmp_path / "btc-ticks.jsonl"
    import_ticks([page], jsonl)
    assert [t.seq for t in Recording.open(jsonl).trades()] == [t.seq for t in trades]


@pytest.mark.parametrize(("text", "problem"), [
    ('{"error": {"name": "too_many_requests", "message": "Too many API requests."}}',
     "an Upbit error response, not data: too_many_requests: Too many API requests."),
    (CANDLES_PAGE_1.replace('"trade_price":3629000.0,', "", 1), "[0]: missing 'trade_price'"),
    (CANDLES_PAGE_1.replace('"unit":1}', '"unit":3}', 1), "[0]: a 3-minute candle"),
    (CANDLES_PAGE_1.replace('"KRW-ETH"', '"KRW-XRP"', 1), "candles of several markets (KRW-ETH, KRW-XRP)"),
    (CANDLES_PAGE_1.replace('"low_price":3629000.0', '"low_price":3629500.0', 1), "must lie within low"),
    ("not json at all", "not JSON as the API returns it"),
    ("[]", "no candles in"),
    # review finding 11: finite but absurd numbers and times are refused here, not when replayed
    (CANDLES_PAGE_1.replace('"high_price":3631000.0', '"high_price":1E+400000', 1),
     "[0]: 'high_price': 1E+400000 is too large"),
    (CANDLES_PAGE_1.replace('"candle_acc_trade_volume":3.00012345', '"candle_acc_trade_volume":1E+400000', 1),
     "[0]: 'candle_acc_trade_volume': 1E+400000 is too large"),
    (CANDLES_PAGE_1.replace('"candle_date_time_utc":"2024-08-24T22:30:00"', '"candle_date_time_utc":"1970-01-01T00:30:00"',
                            1), "'1970-01-01T00:30:00' is not a plausible candle time"),
])
def test_bad_candle_input_says_what_and_where(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(UpbitImportError) as caught:
        import_candles([_file(tmp_path, "in.json", text)], tmp_path / "krw-eth-1m.csv")
    assert problem in str(caught.value)
    assert not (tmp_path / "krw-eth-1m.csv").exists()


def test_candle_output_name_must_say_the_market(tmp_path: Path) -> None:
    page = _file(tmp_path, "p1.json", CANDLES_PAGE_1)
    with pytest.raises(UpbitImportError, match="these are KRW-ETH candles .* name it like krw-eth-1m-candles.csv"):
        import_candles([page], tmp_path / "eth.csv")


def test_bad_tick_input_and_existing_output(tmp_path: Path) -> None:
    bad = _file(tmp_path, "t.json", TICKS.replace('"ask_bid":"ASK"', '"ask_bid":"SELL"'))
    with pytest.raises(UpbitImportError, match=r"t.json\[0\]: 'ask_bid' must be ASK or BID, got 'SELL'"):
        import_ticks([bad], tmp_path / "out.csv")
    conflicting = _file(tmp_path, "c.json", TICKS.replace('"trade_volume":0.1,', '"trade_volume":0.2,'))
    with pytest.raises(UpbitImportError, match="appears twice with different contents"):
        import_ticks([_file(tmp_path, "t2.json", TICKS), conflicting], tmp_path / "out.csv")
    existing = _file(tmp_path, "out.csv", "keep me")
    with pytest.raises(UpbitImportError, match="exists; choose another output or pass --force"):
        import_ticks([_file(tmp_path, "t3.json", TICKS)], existing)
    assert existing.read_text() == "keep me"
    import_ticks([tmp_path / "t3.json"], existing, force=True)
    assert existing.read_text().startswith("market,ts_ms,")


def test_the_import_subcommands(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    page = _file(tmp_path, "ticks.json", TICKS)
    code = backtest_main(["import-ticks", str(page), str(tmp_path / "t.csv")], out=out, err=err)
    assert code == 0, err.getvalue()
    assert "wrote 3 trades of KRW-BTC, 2024-08-24 22:28:01.000 → 2024-08-24 22:28:02.500 UTC" in out.getvalue()
    code = backtest_main(["import-candles", str(page), str(tmp_path / "c.csv")], out=out, err=err)
    assert code == 2
    assert "missing 'candle_date_time_utc'; is this a /v1/candles/minutes/1 response?" in err.getvalue()
    code = backtest_main(["import-candles", str(tmp_path / "missing.json"), str(tmp_path / "c.csv")], out=out, err=err)
    assert code == 2 and "missing.json: no such file" in err.getvalue()


@pytest.mark.parametrize(("old", "new", "problem"), [
    ('"trade_price":85534000.0', '"trade_price":1E+400000', "[0]: 'trade_price': 1E+400000 is too large"),
    ('"trade_volume":0.00011691', '"trade_volume":1E-400000', "[0]: 'trade_volume': 1E-400000 is too small"),
    ('"timestamp":1724538482500', '"timestamp":1724538482', "[0]: 'timestamp': 1724538482 looks like seconds"),
    ('"market":"KRW-BTC"', '"market":"KRW-"', "[0]: 'market': expected a market code like KRW-BTC"),
])
def test_absurd_ticks_are_refused_with_the_element(tmp_path: Path, old: str, new: str, problem: str) -> None:
    bad = _file(tmp_path, "t.json", TICKS.replace(old, new, 1))
    with pytest.raises(UpbitImportError) as caught:
        import_ticks([bad], tmp_path / "out.csv")
    assert problem in str(caught.value)
    assert not (tmp_path / "out.csv").exists()
