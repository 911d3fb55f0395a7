"""Tests for market.frames: real captured frames in both formats, and malformed ones."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from model.market import Side, Trade, TradeSource
from market.frames import FrameError, UpbitStreamError, decode_trade, subscription_message
from tests.fakes.upbit_ws import to_default_format
from tests.market.recorded_frames import raw_frames, raw_trade_frames

# The first frame of the 2021-04-17 capture, byte for byte.
FIRST_TRADE = (
    b'{"ty":"trade","cd":"KRW-LAMB","tms":1618678262712,"td":"2021-04-17","ttm":"16:51:02",'
    b'"ttms":1618678262000,"tp":127.0,"tv":46.48838371,"ab":"BID","pcp":123.00000000,"c":"RISE",'
    b'"cp":4.00000000,"sid":1618678262000003,"st":"REALTIME"}'
)
EXPECTED_FIRST = Trade(
    market="KRW-LAMB",
    ts_ms=1618678262000,
    price=Decimal("127.0"),
    volume=Decimal("46.48838371"),
    side=Side.BID,
    seq=1618678262000003,
    source=TradeSource.LIVE,
)


def _number_text(frame: bytes, key: str) -> str:
    match = re.search(rb'"' + key.encode() + rb'":([-0-9.eE+]+)', frame)
    assert match is not None, (key, frame)
    return match.group(1).decode()


def test_first_real_frame_decodes_exactly(capture_30s: Path) -> None:
    assert raw_frames(capture_30s)[0] == FIRST_TRADE
    assert decode_trade(FIRST_TRADE) == EXPECTED_FIRST


def test_bytes_and_str_frames_decode_alike() -> None:
    assert decode_trade(FIRST_TRADE.decode()) == decode_trade(FIRST_TRADE) == EXPECTED_FIRST


def test_source_and_offset_are_recorded() -> None:
    trade = decode_trade(FIRST_TRADE, source=TradeSource.CAPTURE, offset=7)
    assert trade is not None
    assert (trade.source, trade.offset) == (TradeSource.CAPTURE, 7)


@pytest.mark.parametrize("fixture", ["capture_30s", "capture_2min"])
def test_every_real_trade_frame_decodes_to_the_numbers_as_written(fixture: str, request: pytest.FixtureRequest) -> None:
    frames = raw_trade_frames(request.getfixturevalue(fixture))
    assert len(frames) in (304, 672)
    for frame in frames:
        trade = decode_trade(frame)
        assert trade is not None
        obj = orjson.loads(frame)
        # exact: the Decimal equals the number's text in the frame, digit for digit
        assert trade.price == Decimal(_number_text(frame, "tp"))
        assert trade.volume == Decimal(_number_text(frame, "tv"))
        assert (trade.market, trade.ts_ms, trade.seq) == (obj["cd"], obj["ttms"], obj["sid"])
        assert trade.side.value == obj["ab"]


def test_tiny_btc_market_price_keeps_its_exact_value(capture_2min: Path) -> None:
    frames = [f for f in raw_trade_frames(capture_2min) if b'"tp":2.1E-7' in f]
    assert frames, "the 2021-04-05 capture has BTC-BASIC trades at 2.1E-7 BTC"
    trade = decode_trade(frames[0])
    assert trade is not None
    assert trade.price == Decimal("0.00000021")


@pytest.mark.parametrize("fixture", ["capture_30s", "capture_2min"])
def test_default_format_decodes_like_simple(fixture: str, request: pytest.FixtureRequest) -> None:
    for frame in raw_trade_frames(request.getfixturevalue(fixture)):
        default = to_default_format(frame)
        assert b'"trade_price":' in default
        assert b'"tp":' not in default
        assert decode_trade(default) == decode_trade(frame)


def test_default_format_frame_written_by_hand() -> None:
    frame = (
        '{"type":"trade","code":"KRW-BTC","timestamp":1756026780123,"trade_date":"2025-08-24",'
        '"trade_time":"09:13:00","trade_timestamp":1756026780100,"trade_price":159402000,'
        '"trade_volume":0.00123456,"ask_bid":"ASK","prev_closing_price":158000000.0,"change":"RISE",'
        '"change_price":1402000.0,"sequential_id":17560267801000000,"best_ask_price":159403000,'
        '"best_ask_size":0.1,"best_bid_price":159402000,"best_bid_size":0.2,"stream_type":"REALTIME"}'
    )
    assert decode_trade(frame) == Trade(
        market="KRW-BTC",
        ts_ms=1756026780100,
        price=Decimal(159402000),
        volume=Decimal("0.00123456"),
        side=Side.ASK,
        seq=17560267801000000,
        source=TradeSource.LIVE,
    )


def test_real_orderbook_frames_are_not_trades(capture_30s: Path) -> None:
    orderbooks = [f for f in raw_frames(capture_30s) if f.startswith(b'{"ty":"orderbook"')]
    assert len(orderbooks) == 145
    assert all(decode_trade(f) is None for f in orderbooks)


@pytest.mark.parametrize(
    "frame",
    [
        b'{"status":"UP"}',
        b'{"type":"ticker","code":"KRW-BTC","trade_price":1.0}',
        b'{"type":"orderbook","code":"KRW-BTC","orderbook_units":[]}',
        b'{"ty":"candle.1s","cd":"KRW-BTC"}',
    ],
)
def test_non_trade_frames_return_none(frame: bytes) -> None:
    assert decode_trade(frame) is None


def test_error_frame_raises_stream_error() -> None:
    frame = '{"error":{"name":"WRONG_FORMAT","message":"요청 형식이 올바르지 않습니다."}}'.encode()
    with pytest.raises(UpbitStreamError) as caught:
        decode_trade(frame)
    assert caught.value.name == "WRONG_FORMAT"
    assert "요청 형식" in caught.value.message
    assert not isinstance(caught.value, FrameError)


def _mutated(**changes: object) -> bytes:
    obj = orjson.loads(FIRST_TRADE)
    for key, value in changes.items():
        if value is _DELETE:
            del obj[key]
        else:
            obj[key] = value
    return orjson.dumps(obj)


_DELETE = object()


@pytest.mark.parametrize(
    ("frame", "field", "problem"),
    [
        (_mutated(tp=_DELETE), "tp", "is missing"),
        (_mutated(tv=_DELETE), "tv", "is missing"),
        (_mutated(cd=_DELETE), "cd", "is missing"),
        (_mutated(ttms=_DELETE), "ttms", "is missing"),
        (_mutated(ab=_DELETE), "ab", "is missing"),
        (_mutated(sid=_DELETE), "sid", "is missing"),
        (_mutated(tp="127.0"), "tp", "wrong type string, expected number"),
        (_mutated(tv=None), "tv", "wrong type null, expected number"),
        (_mutated(tp=True), "tp", "wrong type boolean"),
        (_mutated(tp=0), "tp", "must be positive, got 0"),
        (_mutated(tp=-126.5), "tp", "must be positive, got -126.5"),
        (_mutated(tv=0.0), "tv", "must be positive"),
        (_mutated(tv=-1.5), "tv", "must be positive, got -1.5"),
        (_mutated(ab="SELL"), "ab", "unknown side 'SELL'"),
        (_mutated(ab=1), "ab", "unknown side 1"),
        (_mutated(ttms=1618678262000.5), "ttms", "wrong type number, expected integer"),
        (_mutated(ttms="1618678262000"), "ttms", "wrong type string, expected integer"),
        (_mutated(ttms=0), "ttms", "must be an epoch-millisecond time: 0 is not a plausible trade time"),
        (_mutated(ttms=1618678262), "ttms", "looks like seconds, expected milliseconds"),
        (_mutated(tp=1e300), "tp", "1E+300 is too large; allowed: a price from 1E-12 to 1E+12"),
        (_mutated(tv=1e300), "tv", "is too large; allowed: a volume from"),
        (_mutated(tp=1e-300), "tp", "is too small"),
        (_mutated(cd="KRW-"), "cd", "is not a market code"),
        (_mutated(sid=-1), "sid", "must not be negative"),
        (_mutated(cd="krw-lamb"), "cd", "is not a market code"),
        (_mutated(cd=42), "cd", "wrong type number, expected string"),
        (_mutated(ty=7), "ty", "wrong type number, expected string"),
        (b'{"type":"trade","code":"KRW-BTC","trade_timestamp":1618678262000,"trade_volume":1,"ask_bid":"BID",'
         b'"sequential_id":1}', "trade_price", "is missing"),
        (b'{"ty":"trade","cd":"KRW-LAMB","tp":127.0', "frame", "is not valid UTF-8 JSON"),
        (b"\xff\xfe", "frame", "is not valid UTF-8 JSON"),
        (b"[1,2,3]", "frame", "is a JSON array, expected an object"),
        (b'"trade"', "frame", "is a JSON string"),
        (b'{"cd":"KRW-BTC","tp":1.0}', "type", "is missing"),
        (b'{"error":"boom"}', "error", "wrong type string, expected object"),
    ],
)  # fmt: skip
def test_malformed_trade_frames_name_the_field(frame: bytes, field: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_trade(frame)
    error = caught.value
    assert error.field == field
    assert problem in error.problem
    assert f"{field} {error.problem}" in str(error)
    assert error.excerpt  # a short piece of the frame
    assert error.excerpt in str(error)


def test_excerpt_of_a_huge_frame_is_short() -> None:
    frame = b'{"ty":"trade","cd":"KRW-BTC","pad":"' + b"x" * 100_000 + b'"}'
    with pytest.raises(FrameError) as caught:
        decode_trade(frame)
    assert caught.value.field == "ttms"
    assert len(caught.value.excerpt) <= 161
    assert caught.value.excerpt.startswith('{"ty":"trade","cd":"KRW-BTC"')


def test_subscription_message_simple() -> None:
    message = subscription_message(["KRW-BTC", "KRW-ETH", "KRW-BTC"], "ticket-1")
    assert isinstance(message, bytes)
    assert orjson.loads(message) == [
        {"ticket": "ticket-1"},
        {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": True},
        {"format": "SIMPLE"},
    ]


def test_subscription_message_default_with_snapshot() -> None:
    message = orjson.loads(subscription_message(("BTC-FCT2",), "t", "DEFAULT", only_realtime=False))
    assert message[1] == {"type": "trade", "codes": ["BTC-FCT2"], "is_only_realtime": False}
    assert message[2] == {"format": "DEFAULT"}


@pytest.mark.parametrize(
    ("markets", "ticket", "fmt", "problem"),
    [
        ([], "t", "SIMPLE", "at least one market"),
        (["krw-btc"], "t", "SIMPLE", "not an upper-case Upbit market code"),
        (["KRW-BTC.15"], "t", "SIMPLE", "not an upper-case Upbit market code"),
        (["KRW-BTC"], "", "SIMPLE", "ticket must not be empty"),
        (["KRW-BTC"], "t", "SIMPLE_LIST", "unsupported format"),
    ],
)
def test_subscription_message_rejects_bad_requests(markets: list[str], ticket: str, fmt: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        subscription_message(markets, ticket, fmt)  # type: ignore[arg-type]
