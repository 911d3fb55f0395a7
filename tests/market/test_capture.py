"""Tests for market.capture: reading the real cryptofeed captures shipped in data/upbit."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from model.market import TradeSource
from market.capture import CaptureError, read_frames, read_trades
from market.recording import BUNDLED_DATA_DIR
from tests.market.recorded_frames import raw_frames

GOOD_FRAME = (
    b'{"ty":"trade","cd":"KRW-LAMB","tms":1618678262712,"td":"2021-04-17","ttm":"16:51:02",'
    b'"ttms":1618678262000,"tp":127.0,"tv":46.48838371,"ab":"BID","sid":1618678262000003,"st":"REALTIME"}'
)


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "test.capture"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_frames_of_the_30s_capture(capture_30s: Path) -> None:
    frames = list(read_frames(capture_30s))
    assert len(frames) == 449
    assert [f for _, f in frames] == raw_frames(capture_30s)
    assert frames[0][0] == pytest.approx(1618678263.010785)
    recv = [ts for ts, _ in frames]
    assert recv == sorted(recv)  # receive times are monotonic


def test_trades_of_the_30s_capture(capture_30s: Path) -> None:
    trades = list(read_trades(capture_30s))
    assert len(trades) == 304
    assert Counter(t.market for t in trades) == {"KRW-LAMB": 299, "KRW-WAVES": 3, "BTC-ITAM": 2}
    assert [t.offset for t in trades] == list(range(304))
    assert {t.source for t in trades} == {TradeSource.CAPTURE}
    # sequential_id is unique per market only: KRW-LAMB and KRW-WAVES share three of them
    assert len({(t.market, t.seq) for t in trades}) == 304
    assert len({t.seq for t in trades}) == 301


def test_trades_of_the_2min_capture(capture_2min: Path) -> None:
    assert sum(1 for _ in read_frames(capture_2min)) == 1733
    trades = list(read_trades(capture_2min))
    assert Counter(t.market for t in trades) == {
        "KRW-DAWN": 321,
        "KRW-STX": 183,
        "KRW-ADA": 71,
        "KRW-ANKR": 55,
        "KRW-IQ": 31,
        "KRW-BAT": 9,
        "BTC-BASIC": 2,
    }
    assert [t.offset for t in trades] == list(range(672))


def test_out_of_order_delivery_is_preserved(capture_30s: Path) -> None:
    trades = list(read_trades(capture_30s))
    lamb = [t for t in trades if t.market == "KRW-LAMB"]
    # episodes where a trade from an earlier second arrived after one from a later second
    episodes = [(a, b) for a, b in itertools.pairwise(lamb) if b.ts_ms < a.ts_ms]
    assert len(episodes) == 6  # as PROVENANCE.md says
    first_late = episodes[0][1]
    assert (first_late.offset, first_late.ts_ms, first_late.seq) == (9, 1618678263000, 1618678263000005)
    assert trades[8].ts_ms == 1618678264000  # delivered before it, yet a second later
    # arrival order is kept: offsets follow the file, sequential ids do not
    assert [t.seq for t in lamb] != sorted(t.seq for t in lamb)


@pytest.mark.parametrize("start", [0, 1, 9, 150, 303, 304, 1000])
def test_start_offset_gives_the_suffix(capture_30s: Path, start: int) -> None:
    full = list(read_trades(capture_30s))
    assert list(read_trades(capture_30s, start_offset=start)) == full[start:]


def test_the_market_list_file_has_no_frames() -> None:
    path = BUNDLED_DATA_DIR / "upbit-markets-2021-04-17.capture"
    assert list(read_frames(path)) == []


def test_header_lines_may_recur_mid_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "configuration: {}",
        "wss://api.upbit.com/websocket/v1 <-> 1618678261.681707",
        'wss://api.upbit.com/websocket/v1 <- 1618678262.67: [{"ticket":"x"}]',
        f"1618678263.0: b'{GOOD_FRAME.decode()}'",
        "wss://api.upbit.com/websocket/v1 <-> 1618678270.0",
        "",
        f"1618678271.5: b'{GOOD_FRAME.decode()}'",
    )
    assert [ts for ts, _ in read_frames(path)] == [1618678263.0, 1618678271.5]
    assert [t.offset for t in read_trades(path)] == [0, 1]


def test_escaped_bytes_literal_is_decoded(tmp_path: Path) -> None:
    frame = GOOD_FRAME.replace(b'"st":"REALTIME"', b'"st":"REAL\\\\TIME\'s"')  # backslash and quote
    literal = repr(frame.replace(b"\\\\", b"\\"))
    path = _write(tmp_path, f"1.0: {literal}")
    ((_, decoded),) = list(read_frames(path))
    assert decoded == frame.replace(b"\\\\", b"\\")


def test_garbage_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "configuration: {}", f"1.0: b'{GOOD_FRAME.decode()}'", "this is not a capture line")
    with pytest.raises(CaptureError) as caught:
        list(read_frames(path))
    assert (caught.value.path, caught.value.line_no) == (path, 3)
    assert str(caught.value).startswith(f"{path}:3: not a capture line")


def test_malformed_trade_frame_names_file_line_and_field(tmp_path: Path) -> None:
    bad = GOOD_FRAME.replace(b'"tp":127.0,', b"")
    path = _write(tmp_path, f"1.0: b'{GOOD_FRAME.decode()}'", f"2.0: b'{bad.decode()}'")
    trades = read_trades(path)
    assert next(trades).offset == 0
    with pytest.raises(CaptureError, match=rf"{path}:2: bad Upbit trade frame: tp is missing"):
        next(trades)


def test_recorded_error_frame_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, """5.0: b'{"error":{"name":"NO_CODES","message":"x"}}'""")
    with pytest.raises(CaptureError, match=r":1: recorded error frame: Upbit WebSocket error NO_CODES"):
        list(read_trades(path))


def test_unterminated_bytes_literal(tmp_path: Path) -> None:
    path = _write(tmp_path, '1.0: b\'{"ty":"trade"}\\\'')
    with pytest.raises(CaptureError, match=":1: malformed bytes literal"):
        list(read_frames(path))


def test_negative_start_offset_is_rejected(capture_30s: Path) -> None:
    with pytest.raises(ValueError, match="start_offset"):
        list(read_trades(capture_30s, start_offset=-1))
