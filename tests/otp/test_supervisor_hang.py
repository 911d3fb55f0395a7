"""Hung children in one process: the busy probe, the watchdog check, and ``report_hung`` (S13, S41).

The process-level drills (a node exiting hung, a SIGSTOPped node) are in ``test_node_liveness``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from otp.actor import SupervisedActor
from otp.actor_child import ActorHandle, actor_child
from otp.child import ChildContext
from model.clock import FakeClock
from otp.core import SupervisorState
from otp.events import EventKind
from otp.exits import ExitKind, ExitReason
from system.node import Hang, NodeWatchdog, find_hang
from otp.spec import ChildSpec, Strategy, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp.conftest import ExitLog, MakeSup
from tests.fakes.children import Block, EventRecorder, FakeFactory, Worker

HUNG = ExitReason.hung("node/a busy 31.2 s in Block")


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Released at teardown, so a blocked actor always ends (even if the test failed)."""
    event = threading.Event()
    yield event
    event.set()


def _block(handle: Any, release: threading.Event) -> None:
    entered = threading.Event()
    handle.ref.tell(Block(entered=entered, release=release))
    assert entered.wait(5000 * MS)


class Clocked(SupervisedActor):
    """An actor on an injected clock, for exact busy times."""

    def __init__(self, *, context: ChildContext, clock: FakeClock) -> None:
        super().__init__(context=context, clock=clock)

    def handle(self, message: Any) -> Any:
        if isinstance(message, Block):
            message.entered.set()
            message.release.wait()
        return None


# ---------------------------------------------------------------------- the busy probe


def test_busy_says_since_when_and_on_what_and_is_cleared_after_the_message(
    make_sup: MakeSup, clock: FakeClock, release: threading.Event
) -> None:
    sup = make_sup([ChildSpec(id="a", start=actor_child(Clocked, clock=clock))])
    sup.start()
    handle = sup.lookup("a")
    assert isinstance(handle, ActorHandle)
    assert handle.busy() is None

    clock.advance(12.5)
    _block(handle, release)
    assert handle.busy() == (12.5, "Block")

    release.set()
    eventually(lambda: handle.busy() is None, what="idle again")


def test_find_hang_reports_only_an_actor_over_its_limit(
    make_sup: MakeSup, clock: FakeClock, release: threading.Event
) -> None:
    specs = [ChildSpec(id=i, start=actor_child(Clocked, clock=clock)) for i in ("idle", "busy", "unlimited")]
    sup = make_sup(specs)
    sup.start()
    _block(sup.lookup("busy"), release)
    _block(sup.lookup("unlimited"), release)
    limits = {"idle": 1.0, "busy": 30.0, "unlimited": None, "unknown": 1.0}

    assert find_hang(sup, limits, now=30.0) is None  # exactly at the limit: long but finite work is fine
    assert find_hang(sup, limits, now=31.2) == Hang(child_id="busy", incarnation=1, busy_s=31.2, message="Block",
                                                    limit_s=30.0)
    assert find_hang(sup, limits, now=31.2).detail("market") == "market/busy busy 31.2 s in Block"  # type: ignore[union-attr]


class FakeChannel:
    """What the watchdog sends to the root."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, *message: Any) -> None:
        self.sent.append(message)


def test_watchdog_heartbeats_and_reports_the_first_hang_once(
    make_sup: MakeSup, clock: FakeClock, release: threading.Event
) -> None:
    sup = make_sup([ChildSpec(id="a", start=actor_child(Clocked, clock=clock), hang_timeout_s=5.0)])
    sup.start()
    channel, hangs = FakeChannel(), []
    watchdog = NodeWatchdog(sup, channel, {"a": 5.0}, on_hang=hangs.append, interval_s=10 * MS,  # type: ignore[arg-type]
                            monotonic=clock.monotonic)
    _block(sup.lookup("a"), release)

    watchdog.start()
    try:
        eventually(lambda: len(channel.sent) >= 3, what="heartbeats")
        assert hangs == []
        clock.advance(5.1)
        eventually(lambda: hangs, what="the hang reported")
        beats = len(channel.sent)
        eventually(lambda: len(channel.sent) > beats + 2, what="heartbeats go on after the report")
    finally:
        watchdog.stop()
    assert [h.child_id for h in hangs] == ["a"]
    assert set(channel.sent) == {("heartbeat",)}


# ---------------------------------------------------------------------- report_hung


def test_a_hung_actor_is_abandoned_and_the_supervisor_gives_up_without_a_second_incarnation(
    make_sup: MakeSup, recorder: EventRecorder, exits: ExitLog, release: threading.Event
) -> None:
    specs = [ChildSpec(id="before", start=actor_child(Worker)), ChildSpec(id="a", start=actor_child(Worker)),
             ChildSpec(id="after", start=actor_child(Worker))]
    sup = make_sup(specs, SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=10))
    sup.start()
    _block(sup.lookup("a"), release)

    sup.report_hung("a", 1, HUNG)
    recorder.wait_for(EventKind.GAVE_UP)

    abandoned = recorder.of(EventKind.ABANDONED)
    assert [(e.child_id, e.reason) for e in abandoned] == [("a", HUNG)]
    assert recorder.trail(EventKind.EXITED) == [("exited", "after", 1), ("exited", "before", 1)]  # the others, reversed
    assert [e.incarnation for e in recorder.of(EventKind.STARTED, "a")] == [1]
    assert recorder.of(EventKind.RESTARTING) == []
    assert len([r for r in pykka.ActorRegistry.get_by_class(Worker) if r.is_alive()]) == 1  # only the stuck one
    assert sup.state is SupervisorState.GAVE_UP
    assert exits.reasons[-1].abandoned and "hung(node/a busy 31.2 s in Block)" in exits.reasons[-1].detail
    assert sup.abandoned_children() == ("a",)

    release.set()  # it returns from its message and takes the stop it was sent
    eventually(lambda: sup.abandoned_children() == ())


def test_a_hung_child_that_can_be_killed_is_killed_and_restarted(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder
) -> None:
    sup = make_sup([ChildSpec(id="p", start=fakes.start())], SupervisorFlags(intensity=5))
    sup.start()
    first = fakes.current("p")

    sup.report_hung("p", 1, HUNG)
    recorder.wait_for(EventKind.STARTED, "p", incarnation=2)

    assert (first.kill_calls, first.alive) == (1, False)
    assert [(e.incarnation, e.reason) for e in recorder.of(EventKind.EXITED, "p")] == [(1, HUNG)]
    assert HUNG.kind is ExitKind.HUNG and HUNG.abnormal
    assert sup.state is SupervisorState.RUNNING


def test_a_hang_report_about_a_stale_incarnation_is_ignored(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder
) -> None:
    sup = make_sup([ChildSpec(id="p", start=fakes.start())], SupervisorFlags(intensity=5))
    sup.start()

    sup.report_hung("p", 7, HUNG)
    sup.report_hung("nobody", 1, HUNG)
    sup.which_children()  # barrier: both reports were handled

    assert fakes.current("p").kill_calls == 0
    assert recorder.of(EventKind.EXITED) == []
    assert sup.state is SupervisorState.RUNNING
