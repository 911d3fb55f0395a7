"""FeedActor: where trades enter the system — a paced replay of a recording, or the live feed.

Replay (the sandbox): on start it reads how far the bars are stored (``feed_offsets``) and
resumes the recording right after the oldest market's applied offset; the BarActor skips what
is already applied, so a restart neither loses nor double-counts a trade. The actor drives
itself with ``Pump`` messages: each delivers the trades that are due (``market.recording.
ReplayPacer``: N× real time, long holes compressed, or as fast as the pipeline takes them), then
schedules the next pump. It never blocks its mailbox for more than ``MAX_WAIT_S``, so a stop
request is served promptly. At ``--speed max`` it keeps at most ``MAX_IN_FLIGHT`` batches in
the BarActor's mailbox (back-pressure instead of an unbounded queue). At the end of the
recording it sends ``ReplayFinished`` and goes quiet.

Live (``FEED_SOURCE=upbit``) is ``actors.live_feed.LiveFeedActor``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from actors.node_actor import NodeActor
from actors.messages import Pump, ReplayFinished, TradesReceived
from model.market import Trade
from actors.peers import Peers
from market.recording import CANDLES_KRW_BTC_1M, CAPTURE_2021_04_05, CAPTURE_2021_04_17, Recording, ReplayPacer
from persistence import bars as bars_repo
from persistence.db import connect
from persistence.errors import translated

log = logging.getLogger(__name__)

RECORDINGS = {
    "candles": CANDLES_KRW_BTC_1M,
    "capture": CAPTURE_2021_04_17,
    "capture-long": CAPTURE_2021_04_05,
}
BATCH = 2_000
MAX_IN_FLIGHT = 4
DOWNSTREAM = ("bar", "strategy", "paper")  # every stage's mailbox is bounded, not only the first
MAX_WAIT_S = 0.05


def replay_feed_name(recording: str) -> str:
    """The ``feed_offsets`` key of a replayed recording (its file name)."""
    return f"replay:{recording}"


class ReplayFeedActor(NodeActor):
    """Replays a recording through the pipeline at a given speed."""

    def __init__(self, *, recording: Recording, feed: str, speed: float | None, max_gap_s: float, db_url: str,
                 peers: Peers, monotonic: Callable[[], float] = time.monotonic, **kw: Any) -> None:
        super().__init__(**kw)
        self.recording = recording
        self.feed = feed
        self.db_url = db_url
        self.peers = peers
        self.monotonic = monotonic
        self.pacer = ReplayPacer(speed=speed, max_gap_s=max_gap_s)
        self.trades: Iterator[Trade] | None = None
        self.pending: Trade | None = None
        self.pending_due = 0.0
        self.started = False
        self.replay_now_ms = 0
        self.last_offset = -1
        self.finished = False
        self.wakeup = threading.Event()  # only ever set to cut a wait short on stop
        self.counters.update(trades=0, offset=-1, finished=False)

    def setup(self) -> None:
        super().setup()
        with connect(self.db_url, application_name=f"{self.context.supervisor_name}-feed") as conn, translated():
            applied, _closed = bars_repo.load_offsets(conn, self.feed)
        start = min(applied.values()) + 1 if applied else 0
        self.last_offset = start - 1
        self.trades = self.recording.trades(start)
        self._advance()
        log.info("replaying %s from offset %d (%s)", self.recording.path.name, start, self.recording.source.value)
        self.actor_ref.tell(Pump())

    def handle(self, message: Any) -> None:
        if isinstance(message, Pump):
            self._pump()
        else:
            super().handle(message)

    def _advance(self) -> None:
        assert self.trades is not None
        self.pending = next(self.trades, None)
        if self.pending is None:
            return
        if not self.started:
            self.pacer.start(wall_s=self.monotonic(), ts_ms=self.pending.ts_ms)
            self.started = True
        self.pending_due = self.pacer.due(self.pending.ts_ms)

    def _pump(self) -> None:
        if self.finished:
            return
        if max(self.peers.mailbox_depth(stage) for stage in DOWNSTREAM) >= MAX_IN_FLIGHT:
            self.wakeup.wait(0.002)  # back-pressure: let the BarActor catch up
            self.actor_ref.tell(Pump())
            return
        if self.pacer.speed is None:
            self._deliver_unpaced()
        else:
            now = self.monotonic()
            batch: list[Trade] = []
            while self.pending is not None and self.pending_due <= now and len(batch) < BATCH:
                batch.append(self.pending)
                self._advance()
            if batch:
                self.peers.tell("bar", self._batch(batch))
        if self.pending is None:
            self.finished = True
            self.counters["finished"] = True
            log.info("recording exhausted at offset %d (run with --reset to replay it from the start)",
                     self.last_offset)
            self.peers.tell("bar", ReplayFinished(last_offset=self.last_offset))
            return
        delay = self.pending_due - self.monotonic()
        if delay > 0:
            self.wakeup.wait(min(delay, MAX_WAIT_S))
        self.actor_ref.tell(Pump())

    def _deliver_unpaced(self) -> None:
        """As fast as the pipeline takes them: every trade is due now, the next ``BATCH`` go at once."""
        assert self.trades is not None
        if self.pending is not None:
            batch = [self.pending]
            batch += islice(self.trades, BATCH - 1)
            self.pending = next(self.trades, None)
            self.peers.tell("bar", self._batch(batch))

    def _batch(self, batch: list[Trade]) -> TradesReceived:
        self.last_offset = batch[-1].offset
        self.replay_now_ms = max(self.replay_now_ms, max(t.ts_ms for t in batch))
        self.counters["trades"] += len(batch)
        self.counters["offset"] = self.last_offset
        return TradesReceived(trades=tuple(batch), replay_time_ms=self.replay_now_ms)

    def cleanup(self) -> None:
        self.wakeup.set()
