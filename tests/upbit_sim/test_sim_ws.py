"""upbit_sim.ws, .subscription, .wire: Upbit's WebSocket protocol on loopback, and the WS faults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from model.market import Side
from market.frames import FrameError, decode_trade, subscription_message
from tests.helpers import MS, eventually
from tests.upbit_sim.conftest import ACCESS, SECRET, MakeSim
from tests.upbit_sim.sim_client import SignedClient, make_token
from upbit_sim import SimServer

RECV = 2000 * MS
QUIET = 150 * MS


@contextmanager
def _ws(sim: SimServer, path: str = "", **kw: Any) -> Iterator[ClientConnection]:
    with connect(sim.ws_url + path, open_timeout=RECV, close_timeout=RECV, **kw) as ws:
        yield ws


def _recv(ws: ClientConnection) -> Any:
    frame = ws.recv(timeout=RECV)
    assert isinstance(frame, bytes), "Upbit sends binary frames"
    return orjson.loads(frame)


def _quiet(ws: ClientConnection) -> bool:
    try:
        ws.recv(timeout=QUIET)
    except TimeoutError:
        return True
    return False


def _subscribe(ws: ClientConnection, *types: dict[str, Any], fmt: str = "DEFAULT") -> None:
    ws.send(orjson.dumps([{"ticket": "t-1"}, *types, {"format": fmt}]).decode())


def _sync(ws: ClientConnection) -> None:
    """Wait until the server has handled everything sent so far (it answers a PING in order)."""
    ws.send("PING")
    assert _recv(ws) == {"status": "UP"}


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE"])
def test_trades_stream_in_both_formats_and_decode_with_market_frames(sim: SimServer, fmt: str) -> None:
    with _ws(sim) as ws:
        ws.send(subscription_message(["KRW-BTC"], "ticket-1", fmt, only_realtime=True).decode())  # type: ignore[arg-type]
        _sync(ws)  # is_only_realtime: no snapshot came before the PING's answer
        sim.print_trade("KRW-BTC", "100123000", "0.12345678", side="ASK")
        sim.print_trade("KRW-ETH", "3000000", "1")  # not subscribed
        sim.print_trade("KRW-BTC", "100124000", "0.5")
        frames = [ws.recv(timeout=RECV), ws.recv(timeout=RECV)]
    trades = [decode_trade(frame) for frame in frames]
    assert [(t.market, t.price, t.volume, t.side) for t in trades if t is not None] == [
        ("KRW-BTC", D("100123000"), D("0.12345678"), Side.ASK),
        ("KRW-BTC", D("100124000"), D("0.5"), Side.BID),
    ]
    message = orjson.loads(frames[0])
    if fmt == "DEFAULT":
        assert message["type"] == "trade" and message["stream_type"] == "REALTIME"
        assert {"prev_closing_price", "change", "best_ask_price", "best_bid_size", "trade_date"} <= set(message)
    else:
        assert message["ty"] == "trade" and message["st"] == "REALTIME" and message["ab"] == "ASK"
        assert {"tp", "tv", "pcp", "c", "cp", "td", "ttm", "ttms", "tms", "sid", "bap", "bas", "bbp", "bbs"} <= set(message)


def test_snapshot_first_unless_only_realtime_and_nothing_more_with_only_snapshot(sim: SimServer) -> None:
    with _ws(sim) as ws:
        _subscribe(ws, {"type": "trade", "codes": ["KRW-BTC"]})
        snapshot = _recv(ws)
        assert snapshot["stream_type"] == "SNAPSHOT" and snapshot["trade_price"] == 100000000
        sim.print_trade("KRW-BTC", "100001000")
        assert _recv(ws)["stream_type"] == "REALTIME"
    with _ws(sim) as ws:
        _subscribe(ws, {"type": "trade", "codes": ["KRW-BTC"], "is_only_snapshot": True})
        assert _recv(ws)["stream_type"] == "SNAPSHOT"
        sim.print_trade("KRW-BTC", "100002000")
        assert _quiet(ws)


def test_ticker_and_orderbook_messages(sim: SimServer) -> None:
    with _ws(sim) as ws:
        _subscribe(ws, {"type": "ticker", "codes": ["KRW-BTC"], "is_only_realtime": True},
                   {"type": "orderbook", "codes": ["KRW-BTC.5"], "is_only_realtime": True}, fmt="SIMPLE")
        _sync(ws)
        sim.print_trade("KRW-BTC", "101000000", "2")
        messages = {m["ty"]: m for m in (_recv(ws), _recv(ws))}
    ticker, book = messages["ticker"], messages["orderbook"]
    assert ticker["tp"] == 101000000 and ticker["pcp"] == 100000000 and ticker["c"] == "RISE"
    assert ticker["scp"] == 1000000 and ticker["atv"] == 3 and ticker["tdt"].isdigit()
    assert len(book["obu"]) == 5 and book["obu"][0]["ap"] == 101001000 and book["obu"][0]["bp"] == 101000000
    assert all(unit["ap"] - unit["bp"] > 0 for unit in book["obu"])


def test_list_formats_wrap_messages_in_arrays(sim: SimServer) -> None:
    with _ws(sim) as ws:
        _subscribe(ws, {"type": "trade", "codes": ["KRW-BTC"]}, fmt="SIMPLE_LIST")
        (message,) = _recv(ws)
        assert message["ty"] == "trade"


def test_ping_is_answered_and_the_status_repeats(make_sim: MakeSim) -> None:
    sim = make_sim(ws_status_interval_s=0.05)
    with _ws(sim) as ws:
        ws.send("PING")
        assert _recv(ws) == {"status": "UP"}
        assert _recv(ws) == {"status": "UP"}  # repeated while the connection lives


def test_an_idle_connection_is_closed_by_the_server(make_sim: MakeSim) -> None:
    sim = make_sim(ws_idle_timeout_s=0.2)
    with _ws(sim) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=RECV)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
        assert info.value.rcvd.reason == "idle timeout"
    assert eventually(lambda: sim.status()["ws_connections"] == 0)


def test_traffic_keeps_a_connection_open(make_sim: MakeSim) -> None:
    sim = make_sim(ws_idle_timeout_s=0.3, ws_status_interval_s=0.05)
    with _ws(sim) as ws:
        ws.send("PING")
        for _ in range(12):  # 0.6 s of status frames: twice the idle timeout
            assert _recv(ws) == {"status": "UP"}


@pytest.mark.parametrize(
    ("request_", "name"),
    [
        ("not json", "WRONG_FORMAT"),
        ('{"ticket":"x"}', "WRONG_FORMAT"),
        ('[{"type":"trade","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":"x"},{"format":"SIMPLE"}]', "NO_TYPE"),
        ('[{"ticket":"x"},{"type":"trade"}]', "NO_CODES"),
        ('[{"ticket":"x"},{"type":"trade","codes":[]}]', "NO_CODES"),
        ('[{"ticket":"x"},{"type":"trade","codes":["krw-btc"]}]', "INVALID_PARAM"),
        ('[{"ticket":"x"},{"type":"candle.1m","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        ('[{"ticket":"x"},{"type":"myOrder"}]', "INVALID_PARAM"),  # private types need the private endpoint
        ('[{"ticket":"x"},{"type":"trade","codes":["KRW-BTC"]},{"format":"XML"}]', "WRONG_FORMAT"),
    ],
)
def test_bad_requests_get_an_error_frame_and_are_closed(sim: SimServer, request_: str, name: str) -> None:
    with _ws(sim) as ws:
        ws.send(request_)
        assert _recv(ws)["error"]["name"] == name
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=RECV)


def test_unknown_path_and_connect_budget(make_sim: MakeSim) -> None:
    sim = make_sim()
    with pytest.raises(InvalidStatus) as info, connect(sim.ws_url.replace("/websocket/v1", "/nope"), open_timeout=RECV):
        pass
    assert info.value.response.status_code == 404
    for _ in range(4):  # 5 per second per IP (the fake clock does not move): the 404 counted nothing
        with _ws(sim):
            pass
    with _ws(sim):
        pass
    with pytest.raises(InvalidStatus) as info, _ws(sim):
        pass
    assert info.value.response.status_code == 429


def test_ws_drop_cuts_every_connection(sim: SimServer) -> None:
    with _ws(sim) as first, _ws(sim) as second:
        _subscribe(first, {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True})
        _sync(first)
        _sync(second)
        sim.faults.ws_drop()
        for ws in (first, second):
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=RECV)
            assert info.value.rcvd is None  # no closing handshake
    with _ws(sim) as again:  # new connections are served as before
        again.send("PING")
        assert _recv(again) == {"status": "UP"}


def test_ws_stall_holds_frames_back_then_delivers_them(sim: SimServer) -> None:
    with _ws(sim) as ws:
        _subscribe(ws, {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True})
        _sync(ws)
        sim.faults.ws_stall(600 * MS)
        sim.print_trade("KRW-BTC", "100001000")
        ws.send("PING")
        assert _quiet(ws)  # neither the trade nor the PING answer
        assert _recv(ws)["trade_price"] == 100001000
        assert _recv(ws) == {"status": "UP"}


def test_ws_corrupt_next_sends_invalid_json_then_recovers(sim: SimServer) -> None:
    with _ws(sim) as ws:
        _subscribe(ws, {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True}, fmt="SIMPLE")
        _sync(ws)
        sim.faults.ws_corrupt_next(1)
        sim.print_trade("KRW-BTC", "100001000")
        sim.print_trade("KRW-BTC", "100002000")
        with pytest.raises(FrameError):
            decode_trade(ws.recv(timeout=RECV))
        trade = decode_trade(ws.recv(timeout=RECV))
        assert trade is not None and trade.price == D("100002000")


# --- the private endpoint ---------------------------------------------------------------------------


def test_private_endpoint_needs_a_valid_token(sim: SimServer) -> None:
    with pytest.raises(InvalidStatus) as info, _ws(sim, "/private"):
        pass
    assert info.value.response.status_code == 401
    assert orjson.loads(info.value.response.body)["error"]["name"] == "INVALID_AUTH"


def test_my_order_and_my_asset_follow_an_order(sim: SimServer, client: SignedClient) -> None:
    token = make_token(ACCESS, SECRET)
    with _ws(sim, "/private", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        _subscribe(ws, {"type": "myOrder", "codes": ["KRW-BTC"]})
        _sync(ws)
        order = client.order(market="KRW-BTC", side="bid", ord_type="limit", price="99000000", volume="0.01")
        placed = _recv(ws)
        assert (placed["type"], placed["uuid"], placed["state"], placed["ask_bid"]) == (
            "myOrder", order["uuid"], "wait", "BID")
        sim.print_trade("KRW-BTC", "98000000", "1")
        trade, done = _recv(ws), _recv(ws)
        assert trade["state"] == "trade" and trade["price"] == 99000000 and trade["trade_uuid"]
        assert done["state"] == "done" and done["executed_volume"] == 0.01 and done["avg_price"] == 99000000
        _subscribe(ws, {"type": "myAsset"})
        _sync(ws)
        client.order(market="KRW-BTC", side="ask", ord_type="limit", price="120000000", volume="0.01")
        asset = _recv(ws)
        assert asset["type"] == "myAsset"
        assert {a["currency"]: a["locked"] for a in asset["assets"]} == {"KRW": 0, "BTC": 0.01}
