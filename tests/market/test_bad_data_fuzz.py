"""Whatever numbers a data file or frame holds, the reader yields usable trades or raises our own error.

Review finding 11: ``1E+400000`` as a price passed every reader (it is a finite ``Decimal``) and
crash-looped the market node from the bar aggregator; ``²`` in ``ts_ms`` escaped as a bare
``ValueError``. Here arbitrary numeric text goes in, and what comes out is either our error type
(naming the line or field) or a trade the bar aggregator can take.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.market import Trade
from exchange import rules
from market.bars import BarAggregator
from market.candles import CandleError
from market.candles import read_trades as read_candle_trades
from market.frames import FrameError, decode_trade
from market.trades_file import TradesFileError, read_trades

# numeric-looking text: plain, exponent (huge and tiny), signs, Unicode digits, specials, junk
_numbers = st.one_of(
    st.from_regex(r"\A[+-]?[0-9]{1,20}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,7})?\Z"),
    st.sampled_from(["nan", "NaN", "-nan", "sNaN", "inf", "-Infinity", "0", "-0", "0.0", "1E+400000", "1E-400000",
                     "²", "١٢٣", "１２", "1_000", "0x10", "", " 1", "9" * 5000]),
    st.text(alphabet=st.characters(blacklist_characters=",\r\n", blacklist_categories=("Cs",)), max_size=12),
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _usable(trades: list[Trade]) -> None:
    """Accepted trades are plausible, and the bar aggregator computes with them without raising."""
    for t in trades:
        assert rules.market_id_problem(t.market) is None
        assert rules.epoch_ms_problem(t.ts_ms) is None
        assert rules.price_problem(t.price) is None
        assert t.volume == 0 or rules.volume_problem(t.volume) is None  # a candle's split may leave a 0
    bars = BarAggregator()
    bars.add_many(trades)
    bars.flush()


@_SETTINGS
@given(ts=_numbers, price=_numbers, volume=_numbers, seq=_numbers)
def test_a_trade_csv_row_is_a_trade_or_a_trades_file_error(ts: str, price: str, volume: str, seq: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_text(f"market,ts_ms,price,volume,side,seq\nKRW-BTC,{ts},{price},{volume},BID,{seq}\n",
                        encoding="utf-8")
        try:
            trades = list(read_trades(path))
        except TradesFileError as exc:
            assert exc.line_no == 2 and exc.column in {"ts_ms", "price", "volume", "seq"}
            assert len(str(exc)) < 600
            return
        _usable(trades)


_json_numbers = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,25}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,7})?\Z"),
    st.sampled_from(["NaN", "Infinity", "1E+400000", "1e-400000", "9" * 5000, "true", "null", '"²"', '"1E+400000"']),
)


@_SETTINGS
@given(ts=_json_numbers, price=_json_numbers, volume=_json_numbers)
def test_a_json_lines_row_is_a_trade_or_a_trades_file_error(ts: str, price: str, volume: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text(f'{{"market": "KRW-BTC", "ts_ms": {ts}, "price": {price}, "volume": {volume},'
                        f' "side": "ASK"}}\n', encoding="utf-8")
        try:
            trades = list(read_trades(path))
        except TradesFileError as exc:
            assert exc.line_no == 1
            return
        _usable(trades)


@_SETTINGS
@given(o=_numbers, h=_numbers, lo=_numbers, c=_numbers, v=_numbers)
def test_a_candle_row_is_four_trades_or_a_candle_error(o: str, h: str, lo: str, c: str, v: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "krw-btc-1m.csv.gz"
        path.write_bytes(gzip.compress(f"timestamp,open,high,low,close,volume\n"
                                       f"2024-08-24 22:28:00,{o},{h},{lo},{c},{v}\n".encode()))
        try:
            trades = list(read_candle_trades(path))
        except CandleError as exc:
            assert exc.line_no == 2 and exc.column in {"row", "open", "high", "low", "close", "volume"}
            assert len(str(exc)) < 600
            return
        assert len(trades) == 4
        _usable(trades)


@settings(max_examples=500, deadline=None)
@given(ts=_json_numbers, price=_json_numbers, volume=_json_numbers, code=st.sampled_from(
    ["KRW-BTC", "KRW-", "-BTC", "krw-btc", "KRW-B-C", "KRW-₿", ""]))
def test_a_trade_frame_with_any_numbers_is_a_trade_or_a_frame_error(ts: str, price: str, volume: str,
                                                                   code: str) -> None:
    frame = (f'{{"ty":"trade","cd":{orjson.dumps(code).decode()},"ttms":{ts},"tp":{price},"tv":{volume},'
             f'"ab":"BID","sid":1}}').encode()
    try:
        trade = decode_trade(frame)
    except FrameError as exc:
        assert exc.field in {"frame", "cd", "ttms", "tp", "tv"}
        return
    assert trade is not None
    _usable([trade])
