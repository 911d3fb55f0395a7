"""LiveFeedActor against a loopback Upbit WebSocket: trades are handed on as they arrive."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from actors.live_feed import LiveFeedActor
from actors.messages import ClockTicked, TradesReceived
from actors.peers import Peers
from market.recording import CAPTURE_2021_04_17
from supervisor.child import ChildContext
from tests.helpers import MS
from tests.market.fake_upbit_ws import FakeUpbitServer
from tests.market.recorded_frames import raw_trade_frames


class Seen:
    """What the stand-in bar stage was told."""

    def __init__(self) -> None:
        self.trades = 0
        self.ticks = 0
        self.changed = threading.Condition()


class Recorder(pykka.ThreadingActor):
    """Stands in for the BarActor: counts what it is told."""

    def __init__(self, seen: Seen) -> None:
        super().__init__()
        self.seen = seen

    def on_receive(self, message: Any) -> None:
        with self.seen.changed:
            if isinstance(message, TradesReceived):
                self.seen.trades += len(message.trades)
            elif isinstance(message, ClockTicked):
                self.seen.ticks += 1
            self.seen.changed.notify_all()


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
    recorder = Seen()
    bar = Recorder.start(recorder)
    with FakeUpbitServer(frames) as server:
        feed = _feed(db_url, server.url, bar, tick_s=3600)
        try:
            with recorder.changed:
                assert recorder.changed.wait_for(lambda: recorder.trades >= lamb, 10_000 * MS), recorder.trades
                assert recorder.ticks == 1  # the one tick at start; the next is an hour away
        finally:
            feed.stop(block=True, timeout=10_000 * MS)
            bar.stop()


def test_the_wall_clock_ticks_every_tick_s_and_stops_with_the_actor(db_url: str) -> None:
    recorder = Seen()
    bar = Recorder.start(recorder)
    with FakeUpbitServer([]) as server:
        feed = _feed(db_url, server.url, bar, tick_s=0.01)
        try:
            with recorder.changed:
                assert recorder.changed.wait_for(lambda: recorder.ticks >= 5, 10_000 * MS), recorder.ticks
        finally:
            feed.stop(block=True, timeout=10_000 * MS)
        threads = {t.name for t in threading.enumerate()}
        assert "upbit-ws-ticker" not in threads and "upbit-ws" not in threads
        bar.stop()
