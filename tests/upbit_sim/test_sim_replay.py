"""upbit_sim.replay: recorded trades reach the tape, the venue and the WebSocket in recording order."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import orjson
import pytest
from websockets.sync.client import connect

from market.frames import decode_trade
from market.recording import CANDLES_KRW_BTC_1M, CAPTURE_2021_04_17, Recording
from tests.helpers import MS, eventually
from tests.upbit_sim.conftest import MakeSim
from tests.upbit_sim.sim_client import SignedClient

CAPTURE = Recording.capture(CAPTURE_2021_04_17)


def _key(trade: object) -> tuple[object, ...]:
    return (trade.market, trade.ts_ms, trade.price, trade.volume, trade.side, trade.seq)  # type: ignore[attr-defined]


def test_manual_replay_streams_the_recording_in_order(make_sim: MakeSim) -> None:
    sim = make_sim(recording=CAPTURE, autoplay=False)
    expected = list(CAPTURE.trades())[:40]
    codes = sorted({t.market for t in expected})
    with connect(sim.ws_url, open_timeout=2) as ws:
        ws.send(orjson.dumps([{"ticket": "r"}, {"type": "trade", "codes": codes, "is_only_realtime": True},
                              {"format": "SIMPLE"}]).decode())
        ws.send("PING")
        assert orjson.loads(ws.recv(timeout=2)) == {"status": "UP"}
        assert sim.advance(40) == 40
        received = [decode_trade(ws.recv(timeout=2)) for _ in range(40)]
    assert [_key(t) for t in received] == [_key(t) for t in expected]
    assert sim.replayed == 40


def test_replayed_state_answers_quotation_and_fills_orders(make_sim: MakeSim) -> None:
    sim = make_sim(recording=CAPTURE, autoplay=False)
    trades = list(CAPTURE.trades())
    assert {t.market for t in trades} <= {m.market for m in sim.markets}
    sim.advance(1)
    client = SignedClient(sim.rest_url)
    first = trades[0]
    (ticker,) = client.public("/v1/ticker", {"markets": first.market}).json()
    assert D(repr(ticker["trade_price"])) == first.price
    low = min(t.price for t in trades[1:] if t.market == first.market)
    order = client.order(market=first.market, side="bid", ord_type="limit", price=str(low), volume="100")
    assert sim.advance(len(trades)) == len(trades) - 1  # to the end
    assert sim.replay_finished.is_set()
    done = client.fetch(order["uuid"])
    assert done["executed_volume"] != "0" and {t["price"] for t in done["trades"]} == {format(low.normalize(), "f")}
    client.close()


def test_autoplay_at_full_speed_replays_everything(make_sim: MakeSim) -> None:
    sim = make_sim(recording=CAPTURE, speed=None)
    assert sim.replay_finished.wait(5000 * MS)
    assert sim.replayed == CAPTURE.total() == 304
    with pytest.raises(RuntimeError, match="autoplay=False"):
        sim.advance(1)


def test_paced_autoplay_is_stopped_cleanly_midway(make_sim: MakeSim) -> None:
    sim = make_sim(recording=CAPTURE, speed=1.0)  # 30 s of recording at real time
    eventually(lambda: sim.replayed > 0, what="the first trade is replayed at once")
    assert not sim.replay_finished.is_set()
    sim.stop()  # the fixture checks that the replay thread ended


def test_no_recording_seeds_one_real_krw_btc_candle(make_sim: MakeSim) -> None:
    sim = make_sim(seed=True)
    seeded = list(itertools.islice(Recording.candles(CANDLES_KRW_BTC_1M).trades(), 4))
    client = SignedClient(sim.rest_url)
    ticks = client.public("/v1/trades/ticks", {"market": "KRW-BTC", "count": 10}).json()
    assert [t["sequential_id"] for t in ticks] == [t.seq for t in reversed(seeded)]
    assert [D(repr(t["trade_price"])) for t in ticks] == [t.price for t in reversed(seeded)]
    assert sim.replay_finished.is_set() and sim.replayed == 0
    client.close()
