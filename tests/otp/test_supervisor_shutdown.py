"""Shutdown specs, stop order, and "at most one live incarnation" (S13, S25–S30)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pykka
import pytest

from otp.actor import Crash
from otp.actor_child import ActorHandle, actor_child
from otp.core import SupervisorState
from otp.events import EventKind
from otp.exits import ExitKind, ExitReason
from otp.spec import BRUTAL_KILL, INFINITY, ChildSpec, Restart, Strategy, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp.conftest import ExitLog, MakeSup
from tests.fakes.children import Block, EventRecorder, FakeFactory, Journal, Worker


def _exit_kinds(recorder: EventRecorder) -> dict[str, ExitKind]:
    return {e.child_id: e.reason.kind for e in recorder.of(EventKind.EXITED) if e.child_id and e.reason}


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Released at teardown, so a blocked actor always ends (even if the test failed)."""
    event = threading.Event()
    yield event
    event.set()


def _block(handle: ActorHandle, release: threading.Event) -> None:
    entered = threading.Event()
    handle.ref.tell(Block(entered=entered, release=release))
    assert entered.wait(5000 * MS)


def test_stop_infinity_children_exit_shutdown(make_sup: MakeSup, journal: Journal, recorder: EventRecorder) -> None:
    specs = [ChildSpec(id=i, start=actor_child(Worker, journal=journal), shutdown=INFINITY) for i in ("a", "b")]
    sup = make_sup(specs)
    sup.start()

    sup.stop()

    assert _exit_kinds(recorder) == {"a": ExitKind.SHUTDOWN, "b": ExitKind.SHUTDOWN}
    assert journal.ids("cleanup") == ["b", "a"]


def test_stop_timeout_escalates_to_kill(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    specs = [
        ChildSpec(id="polite", start=fakes.start(), shutdown=1.0),
        ChildSpec(id="deaf", start=fakes.start(obeys_stop=False, killable=True), shutdown=0.05),
    ]
    sup = make_sup(specs)
    sup.start()

    sup.stop()

    deaf = fakes.current("deaf")
    assert (deaf.stop_calls, deaf.kill_calls, deaf.alive) == (1, 1, False)
    assert _exit_kinds(recorder) == {"deaf": ExitKind.KILLED, "polite": ExitKind.SHUTDOWN}
    assert fakes.current("polite").kill_calls == 0


def test_stop_brutal_kill(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    sup = make_sup([ChildSpec(id="k", start=fakes.start(), shutdown=BRUTAL_KILL)])
    sup.start()

    sup.stop()

    child = fakes.current("k")
    assert (child.stop_calls, child.kill_calls, child.alive) == (0, 1, False)
    assert _exit_kinds(recorder) == {"k": ExitKind.KILLED}


def test_brutal_kill_on_a_thread_actor_abandons_it(make_sup: MakeSup, recorder: EventRecorder, exits: ExitLog) -> None:
    sup = make_sup([ChildSpec(id="a", start=actor_child(Worker), shutdown=BRUTAL_KILL)])
    sup.start()
    handle = sup.lookup("a")

    sup.stop()

    assert [e.child_id for e in recorder.of(EventKind.ABANDONED)] == ["a"]
    assert exits.reasons[-1].abandoned
    assert sup.abandoned_children() == ("a",)
    handle.stop()  # type: ignore[union-attr]  # tidy up: the actor itself was never asked to stop
    eventually(lambda: sup.abandoned_children() == ())


def test_shutdown_order_reverse_of_start(make_sup: MakeSup, journal: Journal) -> None:
    ids = ["c1", "c2", "c3", "c4", "c5"]
    sup = make_sup([ChildSpec(id=i, start=actor_child(Worker, journal=journal)) for i in ids])
    sup.start()

    sup.stop()

    assert journal.ids("setup") == ids
    assert journal.ids("cleanup") == list(reversed(ids))


def test_misbehaving_child_cannot_hang_supervisor(
    make_sup: MakeSup, recorder: EventRecorder, exits: ExitLog, release: threading.Event
) -> None:
    specs = [
        ChildSpec(id="ok", start=actor_child(Worker), shutdown=1.0),
        ChildSpec(id="stuck", start=actor_child(Worker), shutdown=0.1),
    ]
    sup = make_sup(specs)
    sup.start()
    _block(sup.lookup("stuck"), release)  # type: ignore[arg-type]

    began = time.monotonic()
    sup.stop()
    elapsed = time.monotonic() - began

    assert elapsed < 2.0  # delayed by the 0.1 s timeout (+ bounded waits), never forever
    assert sup.state is SupervisorState.STOPPED
    assert _exit_kinds(recorder) == {"ok": ExitKind.SHUTDOWN}
    assert [e.child_id for e in recorder.of(EventKind.ABANDONED)] == ["stuck"]
    assert exits.reasons[-1].abandoned
    assert sup.abandoned_children() == ("stuck",)

    release.set()  # the actor finishes its message, then processes the queued stop
    eventually(lambda: sup.abandoned_children() == ())


def test_thread_child_not_stopping_escalates_instead_of_duplicate(
    make_sup: MakeSup, recorder: EventRecorder, exits: ExitLog, release: threading.Event
) -> None:
    specs = [
        ChildSpec(id="orders", start=actor_child(Worker), shutdown=0.1),
        ChildSpec(id="feed", start=actor_child(Worker)),
    ]
    sup = make_sup(specs, SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=10))
    sup.start()
    _block(sup.lookup("orders"), release)  # type: ignore[arg-type]

    sup.lookup("feed").ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.GAVE_UP)

    # orders ignored its stop and cannot be killed: it is abandoned, never started a second time
    assert [e.incarnation for e in recorder.of(EventKind.STARTED, "orders")] == [1]
    assert len([r for r in pykka.ActorRegistry.get_by_class(Worker) if r.is_alive()]) == 1
    assert sup.state is SupervisorState.GAVE_UP
    assert exits.reasons[-1].kind is ExitKind.SHUTDOWN
    assert exits.reasons[-1].abandoned
    release.set()


def test_child_that_reports_exit_but_lingers_is_not_restarted(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, exits: ExitLog
) -> None:
    specs = [ChildSpec(id="z", start=fakes.start(obeys_stop=False, killable=False))]
    sup = make_sup(specs, SupervisorFlags(intensity=5), exit_grace=100 * MS)
    sup.start()

    fakes.current("z").report_exit_but_linger(ExitReason.error("said it died"))
    recorder.wait_for(EventKind.GAVE_UP)

    assert fakes.start_attempts["z"] == 1
    assert [e.child_id for e in recorder.of(EventKind.ABANDONED)] == ["z"]
    assert exits.reasons[-1].abandoned


def test_terminate_child_does_not_restart(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    sup = make_sup([ChildSpec(id="p", start=fakes.start(), restart=Restart.PERMANENT)], SupervisorFlags(intensity=5))
    sup.start()

    sup.terminate_child("p")
    sup.which_children()  # barrier: the stale exit notice has been handled

    assert fakes.start_attempts["p"] == 1
    assert recorder.of(EventKind.RESTARTING) == []
    assert _exit_kinds(recorder) == {"p": ExitKind.SHUTDOWN}
