"""WokenActor: a busy actor's own re-wakes and the waker's NOTIFY wakes coalesce, so a stop is
handled after one more drain, not after a backlog of wakes that grows by one per drain."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import psycopg
import pykka
import pytest

from actors.woken import WokenActor
from otp.child import ChildContext
from tests.helpers import MS, eventually

CHANNEL = "woken_test"


class Gated(WokenActor):
    """Each drain reports how many messages wait behind it, then holds until the test lets it go,
    and always says there is more to do (like a notifier with a long backlog)."""

    channels = (CHANNEL,)

    def __init__(self, *, started: queue.Queue[int], gate: queue.Queue[None], **kw: Any) -> None:
        super().__init__(**kw)
        self.started = started
        self.gate = gate

    def drain(self, conn: psycopg.Connection) -> None:
        self.started.put(self.actor_inbox.qsize())
        self.gate.get(timeout=30)
        self.wake_again()


@pytest.fixture
def gated(db_url: str) -> Iterator[tuple[pykka.ActorRef[Any], queue.Queue[int], queue.Queue[None]]]:
    started: queue.Queue[int] = queue.Queue()
    gate: queue.Queue[None] = queue.Queue()
    ctx = ChildContext(supervisor_name="test", child_id="gated", incarnation=1, exit_sink=lambda _r: None)
    ref = Gated.start(context=ctx, db_url=db_url, poll_s=3600.0, started=started, gate=gate)
    yield ref, started, gate
    for _ in range(100):
        gate.put(None)  # whatever is still queued drains at once
    ref.stop(block=True, timeout=10_000 * MS)


def test_a_busy_actor_never_has_more_than_one_wake_waiting_and_stops_after_one_more_drain(
        db_url: str, gated: tuple[pykka.ActorRef[Any], queue.Queue[int], queue.Queue[None]]) -> None:
    ref, started, gate = gated
    waiting: list[int] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(8):
            waiting.append(started.get(timeout=10))
            for _n in range(3):  # a burst of notifications while the drain runs
                conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
            eventually(lambda: ref.actor_inbox.qsize() >= 1, timeout=10_000 * MS, interval=5 * MS,
                       what="the waker's wake queued behind the running drain")
            gate.put(None)
    assert max(waiting) <= 1, waiting  # before coalescing: 0, 1, 2, 3, … one more per drain

    stopped = ref.stop(block=False)
    drains_after_stop = 0
    while True:
        try:
            stopped.get(timeout=0.05)
            break
        except pykka.Timeout:
            pass
        try:
            started.get(timeout=0.05)
        except queue.Empty:
            continue
        drains_after_stop += 1
        gate.put(None)
    assert drains_after_stop <= 2, drains_after_stop
