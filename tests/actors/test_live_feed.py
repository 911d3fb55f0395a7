"""LiveFeedActor against a loopback Upbit WebSocket: trades are handed on as they arrive."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from actors.live_feed import LiveFeedActor
from actors.messages import ClockTicked, TradesReceived
from actors.peers import Peers
from market.recording import CAPTURE_2021_04_17
from otp.child import ChildContext
from tests.fakes.stand_in_actor import StandIn, Told
from tests.helpers import MS
from tests.fakes.upbit_ws import FakeUpbitServer
from tests.market.recorded_frames import raw_trade_frames


def _feed(db_url: str, url: str, bar: pykka.ActorRef[Any], tick_s: float) -> pykka.ActorRef[Any]:
    peers = Peers()
    peers.bind(lambda name: bar if name == "bar" else None)
    ctx = ChildContext(supervisor_name="test", child_id="feed", incarnation=1, exit_sink=lambda _r: None)
    return LiveFeedActor.start(context=ctx, url=url, markets=("KRW-LAMB",), peers=peers, db_url=db_url, rest=None,
                               tick_s=tick_s)


def test_trades_are_handed_on_while_the_clock_waits_for_its_next_tick(db_url: str) -> None:
    """With an hour between clock ticks, every recorded trade still reaches the bar stage at once: the
    actor never waits in its own thread (a wait there would hold each batch back until the next tick)."""
    frames = raw_trade_frames(CAPTURE_2021_04_17)
    lamb = sum(1 for f in frames if b'"KRW-LAMB"' in f)
    trades, ticks = Told(TradesReceived), Told(ClockTicked)
    bar = StandIn.start(trades, ticks)
    with FakeUpbitServer(frames) as server:
        feed = _feed(db_url, server.url, bar, tick_s=3600)
        try:
            assert trades.wait_for(lambda got: sum(len(m.trades) for m in got) >= lamb, 10_000 * MS), trades.messages
            assert len(ticks.messages) == 1  # the one tick at start; the next is an hour away
        finally:
            feed.stop(block=True, timeout=10_000 * MS)
            bar.stop()


def test_the_wall_clock_ticks_every_tick_s_and_stops_with_the_actor(db_url: str) -> None:
    ticks = Told(ClockTicked)
    bar = StandIn.start(ticks)
    with FakeUpbitServer([]) as server:
        feed = _feed(db_url, server.url, bar, tick_s=0.01)
        try:
            assert ticks.wait_for(lambda got: len(got) >= 5, 10_000 * MS), len(ticks.messages)
        finally:
            feed.stop(block=True, timeout=10_000 * MS)
        threads = {t.name for t in threading.enumerate()}
        assert "upbit-ws-ticker" not in threads and "upbit-ws" not in threads
        bar.stop()
