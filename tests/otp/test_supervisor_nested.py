"""Supervision trees: confinement, escalation, S21 and S22; mirrors ``otp/nested.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from otp.actor import Crash
from otp.actor_child import ActorHandle, actor_child
from model.clock import FakeClock
from otp.core import Supervisor, SupervisorState
from otp.events import EventKind
from otp.exits import ExitKind, ExitReason
from otp.nested import SupervisorHandle, supervisor_child
from otp.spec import INFINITY, ChildSpec, ChildType, Restart, Strategy, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp.conftest import ExitLog, MakeSup
from tests.fakes.children import Block, EventRecorder, FakeFactory, Worker

ERROR = ExitReason.error("RuntimeError: boom")


def _sub_spec(
    fakes: FakeFactory,
    clock: FakeClock,
    recorder: EventRecorder,
    *,
    restart: Restart = Restart.PERMANENT,
) -> ChildSpec:
    start = supervisor_child(
        "sub",
        SupervisorFlags(intensity=1, period=5.0),
        [ChildSpec(id="x", start=fakes.start()), ChildSpec(id="y", start=fakes.start())],
        clock=clock,
        on_event=recorder,
        kill_wait=200 * MS,
    )
    return ChildSpec(id="sub", start=start, type=ChildType.SUPERVISOR, restart=restart)


def _sub(root: Supervisor) -> Supervisor:
    handle = root.lookup("sub")
    assert isinstance(handle, SupervisorHandle)
    return handle.supervisor


def _crash_x_until_sub_gives_up(fakes: FakeFactory, recorder: EventRecorder) -> None:
    fakes.current("x").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "x", supervisor="sub", incarnation=2)
    fakes.current("x").exit(ERROR)  # second restart within the period: intensity 1 exceeded
    recorder.wait_for(EventKind.GAVE_UP, supervisor="sub")


def test_supervisor_spec_defaults_to_infinity_shutdown(
    fakes: FakeFactory, clock: FakeClock, recorder: EventRecorder
) -> None:
    assert _sub_spec(fakes, clock, recorder).shutdown is INFINITY


def test_tree_failure_confined_to_subtree(
    make_sup: MakeSup, fakes: FakeFactory, clock: FakeClock, recorder: EventRecorder
) -> None:
    specs = [
        ChildSpec(id="w1", start=fakes.start()),
        _sub_spec(fakes, clock, recorder),
        ChildSpec(id="w2", start=fakes.start()),
    ]
    root = make_sup(specs, SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=5), name="root")
    root.start()
    w1, w2, sub = fakes.current("w1"), fakes.current("w2"), root.lookup("sub")

    fakes.current("x").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "x", supervisor="sub", incarnation=2)

    assert fakes.current("w1") is w1 and w1.alive
    assert fakes.current("w2") is w2 and w2.alive
    assert root.lookup("sub") is sub
    assert recorder.of(EventKind.RESTARTING, supervisor="root") == []
    assert [(r.id, r.incarnation) for r in _sub(root).which_children()] == [("x", 2), ("y", 1)]


def test_subtree_give_up_restarts_parent_group_and_drops_dynamic_children(
    make_sup: MakeSup, fakes: FakeFactory, clock: FakeClock, recorder: EventRecorder
) -> None:
    specs = [
        ChildSpec(id="w1", start=fakes.start()),
        _sub_spec(fakes, clock, recorder),
        ChildSpec(id="w2", start=fakes.start()),
    ]
    root = make_sup(specs, SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=5), name="root")
    root.start()
    old_sub = _sub(root)
    old_sub.start_child(ChildSpec(id="dynamic", start=fakes.start()))

    _crash_x_until_sub_gives_up(fakes, recorder)
    recorder.wait_for(EventKind.STARTED, "w2", supervisor="root", incarnation=2)

    exited = recorder.of(EventKind.EXITED, "sub", supervisor="root")
    assert [e.reason.kind for e in exited] == [ExitKind.SHUTDOWN]  # type: ignore[union-attr]
    assert [(r.id, r.incarnation) for r in root.which_children()] == [("w1", 2), ("sub", 2), ("w2", 2)]
    assert old_sub.state is SupervisorState.GAVE_UP
    new_sub = _sub(root)
    assert new_sub is not old_sub
    assert [(r.id, r.incarnation) for r in new_sub.which_children()] == [("x", 1), ("y", 1)]  # no "dynamic" (S22)
    assert all(len(fakes.live(i)) == 1 for i in ("w1", "w2", "x", "y"))
    assert fakes.live("dynamic") == []


def test_transient_child_supervisor_not_restarted_after_give_up(
    make_sup: MakeSup, fakes: FakeFactory, clock: FakeClock, recorder: EventRecorder, exits: ExitLog
) -> None:
    root = make_sup([_sub_spec(fakes, clock, recorder, restart=Restart.TRANSIENT)], name="root")
    root.start()

    _crash_x_until_sub_gives_up(fakes, recorder)
    recorder.wait_for(EventKind.EXITED, "sub", supervisor="root")
    root.which_children()  # barrier: the exit has been fully handled

    # the give-up exit reason is `shutdown`, which is not abnormal: the trap of S21
    assert [(r.id, r.handle) for r in root.which_children()] == [("sub", None)]
    assert recorder.of(EventKind.RESTARTING, supervisor="root") == []
    assert root.state is SupervisorState.RUNNING
    assert exits.reasons == []


def test_permanent_child_supervisor_give_up_counts_against_parent_intensity(
    make_sup: MakeSup, fakes: FakeFactory, clock: FakeClock, recorder: EventRecorder, exits: ExitLog
) -> None:
    root = make_sup([_sub_spec(fakes, clock, recorder)], SupervisorFlags(intensity=0), name="root")
    root.start()

    _crash_x_until_sub_gives_up(fakes, recorder)
    recorder.wait_for(EventKind.GAVE_UP, supervisor="root")

    assert root.state is SupervisorState.GAVE_UP
    assert [r.kind for r in exits.reasons] == [ExitKind.SHUTDOWN]


def test_root_stop_stops_the_tree_depth_first_in_reverse(
    make_sup: MakeSup, fakes: FakeFactory, clock: FakeClock, recorder: EventRecorder
) -> None:
    specs = [
        ChildSpec(id="w1", start=fakes.start()),
        _sub_spec(fakes, clock, recorder),
        ChildSpec(id="w2", start=fakes.start()),
    ]
    root = make_sup(specs, name="root")
    root.start()
    sub = _sub(root)

    root.stop()

    assert fakes.journal.ids("exit") == ["w2", "y", "x", "w1"]
    assert sub.state is SupervisorState.STOPPED
    assert [e.supervisor for e in recorder.of(EventKind.STOPPED)] == ["sub", "root"]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_abandoned_grandchild_escalates_to_the_root_without_restarts(
    make_sup: MakeSup, clock: FakeClock, recorder: EventRecorder, exits: ExitLog, release: threading.Event
) -> None:
    start_sub = supervisor_child(
        "sub",
        SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=5),
        [
            ChildSpec(id="orders", start=actor_child(Worker), shutdown=0.1),
            ChildSpec(id="feed", start=actor_child(Worker)),
        ],
        clock=clock,
        on_event=recorder,
        kill_wait=100 * MS,
    )
    root = make_sup(
        [ChildSpec(id="sub", start=start_sub, type=ChildType.SUPERVISOR)], SupervisorFlags(intensity=5), name="root"
    )
    root.start()
    sub = _sub(root)
    orders = sub.lookup("orders")
    assert isinstance(orders, ActorHandle)
    entered = threading.Event()
    orders.ref.tell(Block(entered=entered, release=release))
    assert entered.wait(5000 * MS)

    sub.lookup("feed").ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.GAVE_UP, supervisor="root")

    assert recorder.of(EventKind.RESTARTING, supervisor="root") == []  # a permanent sub, yet not restarted
    assert [e.incarnation for e in recorder.of(EventKind.STARTED, "orders")] == [1]
    assert exits.reasons[-1].abandoned
    assert root.abandoned_children() == ("sub",)

    release.set()
    eventually(lambda: root.abandoned_children() == ())
