"""Restart types, strategies, intensity and give-up (S9–S11, S14–S20, S23, S24)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from otp.actor import Crash
from otp.actor_child import actor_child
from otp.children import RESTARTING
from model.clock import FakeClock
from otp.core import SupervisorState
from otp.errors import AlreadyPresent, AlreadyStarted
from otp.events import EventKind
from otp.exits import ExitKind, ExitReason
from otp.spec import ChildSpec, Restart, Strategy, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp.conftest import ExitLog, MakeSup
from tests.fakes.children import EventRecorder, FakeFactory, Journal, StopSelf, Worker

REASONS = {
    "normal": ExitReason.normal(),
    "shutdown": ExitReason.shutdown("by someone else"),
    "error": ExitReason.error("RuntimeError: boom"),
    "killed": ExitReason.killed("SIGKILL"),
}


def _fake_specs(fakes: FakeFactory, *ids: str, restart: Restart = Restart.PERMANENT) -> list[ChildSpec]:
    return [ChildSpec(id=i, start=fakes.start(), restart=restart) for i in ids]


# ---------------------------------------------------------------------- restart types


@pytest.mark.parametrize("why", sorted(REASONS))
def test_permanent_restarted_on_every_reason(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, why: str
) -> None:
    sup = make_sup(_fake_specs(fakes, "p"), SupervisorFlags(intensity=5))
    sup.start()

    fakes.current("p").exit(REASONS[why])

    recorder.wait_for(EventKind.STARTED, "p", incarnation=2)
    assert len(fakes.live("p")) == 1
    assert sup.which_children()[0].incarnation == 2


def test_permanent_actor_restarted_after_crash_and_after_normal_exit(
    make_sup: MakeSup, journal: Journal, recorder: EventRecorder
) -> None:
    sup = make_sup([ChildSpec(id="a", start=actor_child(Worker, journal=journal))], SupervisorFlags(intensity=5))
    sup.start()

    sup.lookup("a").ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)
    sup.lookup("a").ref.tell(StopSelf())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.STARTED, "a", incarnation=3)

    reasons = [e.reason.kind for e in recorder.of(EventKind.EXITED, "a")]  # type: ignore[union-attr]
    assert reasons == [ExitKind.ERROR, ExitKind.NORMAL]
    assert journal.entries("cleanup") == [("cleanup", "a", 1), ("cleanup", "a", 2)]


@pytest.mark.parametrize("why", ["normal", "shutdown"])
def test_transient_not_restarted_on_normal_or_shutdown(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, why: str
) -> None:
    sup = make_sup(_fake_specs(fakes, "t", restart=Restart.TRANSIENT))
    sup.start()

    fakes.current("t").exit(REASONS[why])
    recorder.wait_for(EventKind.EXITED, "t")

    assert [(r.id, r.handle) for r in sup.which_children()] == [("t", None)]
    assert recorder.of(EventKind.RESTARTING) == []
    sup.restart_child("t")  # the spec was kept
    assert sup.which_children()[0].incarnation == 2


@pytest.mark.parametrize("why", ["error", "killed"])
def test_transient_restarted_on_abnormal(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, why: str
) -> None:
    sup = make_sup(_fake_specs(fakes, "t", restart=Restart.TRANSIENT))
    sup.start()

    fakes.current("t").exit(REASONS[why])

    recorder.wait_for(EventKind.STARTED, "t", incarnation=2)


@pytest.mark.parametrize("why", sorted(REASONS))
def test_temporary_never_restarted_spec_removed(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, why: str
) -> None:
    sup = make_sup([*_fake_specs(fakes, "keep"), *_fake_specs(fakes, "tmp", restart=Restart.TEMPORARY)])
    sup.start()

    fakes.current("tmp").exit(REASONS[why])
    recorder.wait_for(EventKind.EXITED, "tmp")

    assert [r.id for r in sup.which_children()] == ["keep"]
    assert fakes.start_attempts["tmp"] == 1


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_temporary_bystander_not_restarted_supervisor_survives(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, strategy: Strategy
) -> None:
    specs = [*_fake_specs(fakes, "a"), *_fake_specs(fakes, "tmp", restart=Restart.TEMPORARY), *_fake_specs(fakes, "b")]
    sup = make_sup(specs, SupervisorFlags(strategy=strategy, intensity=1))
    sup.start()

    fakes.current("a").exit(REASONS["error"])
    recorder.wait_for(EventKind.STARTED, "b", incarnation=2)

    assert [(r.id, r.incarnation) for r in sup.which_children()] == [("a", 2), ("b", 2)]
    assert fakes.start_attempts["tmp"] == 1
    assert sup.state is SupervisorState.RUNNING


def test_spec_retention_by_type(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    perm, trans, temp = (
        ChildSpec(id="perm", start=fakes.start()),
        ChildSpec(id="trans", start=fakes.start(), restart=Restart.TRANSIENT),
        ChildSpec(id="temp", start=fakes.start(), restart=Restart.TEMPORARY),
    )
    sup = make_sup([perm, trans, temp], SupervisorFlags(intensity=5))
    sup.start()

    for child_id in ("perm", "trans", "temp"):
        fakes.current(child_id).exit(REASONS["normal"])
    recorder.wait_for(EventKind.EXITED, "temp")
    recorder.wait_for(EventKind.STARTED, "perm", incarnation=2)

    with pytest.raises(AlreadyStarted):
        sup.start_child(perm)
    with pytest.raises(AlreadyPresent):
        sup.start_child(trans)
    sup.start_child(temp)
    assert [r.id for r in sup.which_children()] == ["perm", "trans", "temp"]


def test_stale_exit_notice_is_ignored_and_not_counted(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder
) -> None:
    sup = make_sup(_fake_specs(fakes, "a"), SupervisorFlags(intensity=1))
    sup.start()
    first = fakes.current("a")
    first.exit(REASONS["error"])
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)

    first.ctx.notify_exit(REASONS["error"])  # a second notice from the dead incarnation

    sup.which_children()  # a barrier: the notice was handled before this call
    assert sup.state is SupervisorState.RUNNING  # not counted: one more restart would exceed intensity 1
    assert len(recorder.of(EventKind.RESTARTING)) == 1


# ---------------------------------------------------------------------- strategies and intensity


def test_one_for_one_restarts_only_failed_then_third_restart_gives_up(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, exits: ExitLog
) -> None:
    sup = make_sup(_fake_specs(fakes, "a", "b"), SupervisorFlags(intensity=2, period=5.0))
    sup.start()
    b = fakes.current("b")

    for incarnation in (1, 2):
        fakes.current("a").exit(REASONS["error"])
        recorder.wait_for(EventKind.STARTED, "a", incarnation=incarnation + 1)
        assert fakes.current("b") is b and b.alive

    fakes.current("a").exit(REASONS["error"])
    recorder.wait_for(EventKind.GAVE_UP)

    assert sup.state is SupervisorState.GAVE_UP
    assert not b.alive
    assert [r.kind for r in exits.reasons] == [ExitKind.SHUTDOWN]
    assert fakes.start_attempts["a"] == 3


def test_one_for_all_restarts_all_no_old_handles_alive_then_limit(
    make_sup: MakeSup, journal: Journal, recorder: EventRecorder
) -> None:
    specs = [ChildSpec(id=i, start=actor_child(Worker, journal=journal)) for i in ("a", "b", "c")]
    sup = make_sup(specs, SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=1))
    sup.start()
    old = [sup.lookup(i) for i in ("a", "b", "c")]

    old[1].ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.STARTED, "c", incarnation=2)

    assert not any(h.ref.is_alive() for h in old)  # type: ignore[union-attr]
    assert journal.ids("cleanup") == ["b", "c", "a"]  # b crashed; then others in reverse start order
    assert [e[1:] for e in journal.entries("setup")[3:]] == [("a", 2), ("b", 2), ("c", 2)]

    sup.lookup("a").ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.GAVE_UP)
    assert sup.state is SupervisorState.GAVE_UP


def test_rest_for_one_restarts_failed_and_later_only(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder
) -> None:
    ids = ("c1", "c2", "c3", "c4", "c5")
    sup = make_sup(_fake_specs(fakes, *ids), SupervisorFlags(strategy=Strategy.REST_FOR_ONE, intensity=1))
    sup.start()
    earlier = [fakes.current("c1"), fakes.current("c2")]

    fakes.current("c3").exit(REASONS["error"])
    recorder.wait_for(EventKind.STARTED, "c5", incarnation=2)

    assert [fakes.current("c1"), fakes.current("c2")] == earlier and all(c.alive for c in earlier)
    assert fakes.journal.entries()[5:] == [
        ("exit", "c3", 1),
        ("exit", "c5", 1),
        ("exit", "c4", 1),
        ("start", "c3", 2),
        ("start", "c4", 2),
        ("start", "c5", 2),
    ]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_escalation_when_restart_start_keeps_failing(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, exits: ExitLog, strategy: Strategy
) -> None:
    sup = make_sup(_fake_specs(fakes, "a", "b"), SupervisorFlags(strategy=strategy, intensity=3))
    sup.start()
    sibling = fakes.current("a")

    fakes.failing.add("b")
    fakes.current("b").exit(REASONS["error"])
    recorder.wait_for(EventKind.GAVE_UP)

    # three restart attempts were admitted (each failed and was retried via the queue), the 4th gave up
    assert len(recorder.of(EventKind.RESTARTING, "b")) == 3
    assert len(recorder.of(EventKind.START_FAILED, "b")) == 3
    assert not sibling.alive
    assert [r.kind for r in exits.reasons] == [ExitKind.SHUTDOWN]
    assert "reached_max_restart_intensity" in exits.reasons[0].detail


def _gated_pair(make_sup: MakeSup, fakes: FakeFactory, strategy: Strategy) -> threading.Semaphore:
    """Children a and b; every start of b waits for a permit; b's next start fails."""
    gate = threading.Semaphore(1)  # the initial start of b
    specs = [ChildSpec(id="a", start=fakes.start()), ChildSpec(id="b", start=fakes.start(gate=gate))]
    make_sup(specs, SupervisorFlags(strategy=strategy, intensity=5)).start()
    fakes.failing.add("b")
    return gate


def test_one_for_all_other_child_fails_restart(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    gate = _gated_pair(make_sup, fakes, Strategy.ONE_FOR_ALL)

    fakes.current("a").exit(REASONS["error"])
    gate.release()
    recorder.wait_for(EventKind.START_FAILED, "b", incarnation=2)
    fakes.failing.discard("b")
    gate.release()  # the queued retry may now start b
    recorder.wait_for(EventKind.STARTED, "b", incarnation=3)

    # the retry re-ran one_for_all: a#2, restarted in the failed round, was stopped with shutdown
    a_exits = [(e.incarnation, e.reason.kind) for e in recorder.of(EventKind.EXITED, "a")]  # type: ignore[union-attr]
    assert a_exits == [(1, ExitKind.ERROR), (2, ExitKind.SHUTDOWN)]
    assert [c.ctx.incarnation for c in fakes.live("a")] == [3]
    assert [c.ctx.incarnation for c in fakes.live("b")] == [3]


def test_rest_for_one_other_child_fails_restart(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    gate = _gated_pair(make_sup, fakes, Strategy.REST_FOR_ONE)

    fakes.current("a").exit(REASONS["error"])
    gate.release()
    recorder.wait_for(EventKind.START_FAILED, "b", incarnation=2)
    a2 = fakes.current("a")
    fakes.failing.discard("b")
    gate.release()
    recorder.wait_for(EventKind.STARTED, "b", incarnation=3)

    assert fakes.current("a") is a2 and a2.alive  # the earlier child is not restarted again
    assert a2.ctx.incarnation == 2
    assert [(e.child_id, e.incarnation) for e in recorder.of(EventKind.EXITED)] == [("a", 1), ("b", 1)]


def test_sliding_window_spaced_failures_never_trip(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, clock: FakeClock
) -> None:
    sup = make_sup(_fake_specs(fakes, "a"), SupervisorFlags(intensity=1, period=1.0))
    sup.start()

    for incarnation in range(1, 6):
        clock.advance(2.1)
        fakes.current("a").exit(REASONS["error"])
        recorder.wait_for(EventKind.STARTED, "a", incarnation=incarnation + 1)

    assert sup.state is SupervisorState.RUNNING


def test_intensity_zero_first_failure_gives_up(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    sup = make_sup(_fake_specs(fakes, "a"), SupervisorFlags(intensity=0))
    sup.start()

    fakes.current("a").exit(REASONS["error"])
    recorder.wait_for(EventKind.GAVE_UP)

    assert fakes.start_attempts["a"] == 1


@pytest.mark.parametrize(("gap", "survives"), [(5.0, False), (5.001, True)])
def test_boundary_inclusive(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, clock: FakeClock, gap: float, survives: bool
) -> None:
    sup = make_sup(_fake_specs(fakes, "a"), SupervisorFlags(intensity=1, period=5.0))
    sup.start()
    fakes.current("a").exit(REASONS["error"])
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)

    clock.advance(gap)
    fakes.current("a").exit(REASONS["error"])

    if survives:
        recorder.wait_for(EventKind.STARTED, "a", incarnation=3)
        assert sup.state is SupervisorState.RUNNING
    else:
        recorder.wait_for(EventKind.GAVE_UP)


def test_give_up_exit_reason_is_shutdown_and_children_stopped_reverse(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, exits: ExitLog
) -> None:
    sup = make_sup(_fake_specs(fakes, "a", "b", "c"), SupervisorFlags(intensity=0))
    sup.start()

    fakes.current("b").exit(REASONS["error"])
    gave_up = recorder.wait_for(EventKind.GAVE_UP)[0]

    assert fakes.journal.entries("exit") == [("exit", "b", 1), ("exit", "c", 1), ("exit", "a", 1)]
    assert gave_up.reason is not None and gave_up.reason.kind is ExitKind.SHUTDOWN
    assert exits.reasons == [gave_up.reason]
    assert not gave_up.reason.abandoned
    assert sup.wait_stopped(1000 * MS)
    assert sup.state is SupervisorState.GAVE_UP
    assert recorder.trail(EventKind.EXITED)[-2:] == [("exited", "c", 1), ("exited", "a", 1)]


# ---------------------------------------------------------------------- restarting state (S23, S24)


def test_failed_restart_is_retried_via_the_queue_and_api_is_served_between_attempts(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder
) -> None:
    gate = threading.Semaphore(0)  # each start of b waits for one permit
    specs = [ChildSpec(id="a", start=fakes.start()), ChildSpec(id="b", start=fakes.start(gate=gate))]
    sup = make_sup(specs, SupervisorFlags(intensity=100))
    gate.release()
    sup.start()
    fakes.failing.add("b")

    def queued(n: int) -> None:
        eventually(lambda: sup.queue_depth() == n, what=f"{n} items queued")

    with ThreadPoolExecutor(max_workers=3) as pool:
        fakes.current("b").exit(REASONS["error"])
        gate.release()  # attempt 1 fails; attempt 2 is queued, dequeued, and blocks on the gate
        recorder.wait_for(EventKind.START_FAILED, "b", count=1)
        queued(0)
        rows = pool.submit(sup.which_children)
        queued(1)
        counts = pool.submit(sup.count_children)
        queued(2)
        gate.release()  # attempt 2 fails; attempt 3 is queued *behind* our two calls
        assert [r.handle for r in rows.result(5000 * MS)] == [fakes.current("a"), RESTARTING]
        assert counts.result(5000 * MS) == (2, 1, 0, 2)  # b is not active while restarting

        queued(0)  # attempt 3 is blocked on the gate
        terminate = pool.submit(sup.terminate_child, "b")
        queued(1)
        gate.release()  # attempt 3 fails; the queued terminate_child then ends the loop
        terminate.result(5000 * MS)

    assert [(r.id, r.handle is None) for r in sup.which_children()] == [("a", False), ("b", True)]
    assert fakes.start_attempts["b"] == 4  # the initial start and 3 failed attempts, no more
    assert len(recorder.of(EventKind.RESTARTING, "b")) == 3  # every attempt went through the intensity check
    assert sup.state is SupervisorState.RUNNING


def test_stop_during_restart_loop_finishes(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    gate = threading.Semaphore(1)
    specs = [ChildSpec(id="a", start=fakes.start()), ChildSpec(id="b", start=fakes.start(gate=gate))]
    sup = make_sup(specs, SupervisorFlags(intensity=100))
    sup.start()
    fakes.failing.add("b")

    with ThreadPoolExecutor(max_workers=1) as pool:
        fakes.current("b").exit(REASONS["error"])
        gate.release()  # attempt 1 fails; attempt 2 blocks on the gate
        recorder.wait_for(EventKind.START_FAILED, "b")
        eventually(lambda: sup.queue_depth() == 0)
        stopping = pool.submit(sup.stop)
        eventually(lambda: sup.queue_depth() == 1)
        gate.release()  # attempt 2 fails; the stop queued before attempt 3 ends the loop
        stopping.result(5000 * MS)

    assert sup.state is SupervisorState.STOPPED
    assert fakes.start_attempts["b"] == 3
    assert fakes.live("a") == []


def test_one_for_all_also_restarts_a_child_stopped_with_terminate_child(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder
) -> None:
    # OTP parity (S22 quirk): a group restart starts every non-temporary child of the group.
    sup = make_sup(_fake_specs(fakes, "a", "b", "c"), SupervisorFlags(strategy=Strategy.ONE_FOR_ALL, intensity=5))
    sup.start()
    sup.terminate_child("c")

    fakes.current("a").exit(REASONS["error"])
    recorder.wait_for(EventKind.STARTED, "c", incarnation=2)

    assert [(r.id, r.incarnation, r.handle is not None) for r in sup.which_children()] == [
        ("a", 2, True),
        ("b", 2, True),
        ("c", 2, True),
    ]
