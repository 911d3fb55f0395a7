"""Start, init failure and child administration (S5, S6, S8, S30, S44, S46)."""

from __future__ import annotations

import pytest

from otp.actor_child import ActorHandle, ActorStartError, actor_child, current_ref
from otp.core import SupervisorState
from otp.errors import AlreadyPresent, AlreadyStarted, ChildNotFound, ChildRunning, StartFailed, SupervisorNotRunning
from otp.events import EventKind
from otp.exits import ExitKind
from otp.spec import ChildSpec, ChildType, Restart
from tests.otp.conftest import ExitLog, MakeSup
from tests.fakes.children import EventRecorder, FakeFactory, Journal, StopSelf, Worker, failing_start


def _workers(journal: Journal, *ids: str, **kwargs: object) -> list[ChildSpec]:
    return [ChildSpec(id=i, start=actor_child(Worker, journal=journal), **kwargs) for i in ids]  # type: ignore[arg-type]


def test_start_normal_and_shutdown(
    make_sup: MakeSup, journal: Journal, recorder: EventRecorder, exits: ExitLog
) -> None:
    sup = make_sup(_workers(journal, "a", "b"))

    sup.start()

    assert sup.state is SupervisorState.RUNNING
    rows = sup.which_children()
    assert [(r.id, r.type, r.incarnation) for r in rows] == [("a", ChildType.WORKER, 1), ("b", ChildType.WORKER, 1)]
    handles = [r.handle for r in rows]
    assert all(isinstance(h, ActorHandle) and h.ref.is_alive() for h in handles)
    assert sup.count_children() == (2, 2, 0, 2)

    sup.stop()

    assert sup.state in {SupervisorState.STOPPED}  # (a set: mypy narrowed state above)
    assert sup.wait_stopped(0)
    assert not any(isinstance(h, ActorHandle) and h.ref.is_alive() for h in handles)
    exited = [(e.child_id, e.reason and e.reason.kind) for e in recorder.of(EventKind.EXITED)]
    assert exited == [("b", ExitKind.SHUTDOWN), ("a", ExitKind.SHUTDOWN)]
    assert [r.kind for r in exits.reasons] == [ExitKind.SHUTDOWN]
    sup.stop()  # idempotent
    with pytest.raises(SupervisorNotRunning):
        sup.which_children()


def test_each_child_is_ready_before_the_next_starts(make_sup: MakeSup, journal: Journal) -> None:
    sup = make_sup(_workers(journal, "a", "b", "c"))

    sup.start()

    # setup() of each actor ran (and was acknowledged) before the next start began
    assert journal.entries("setup") == [("setup", "a", 1), ("setup", "b", 1), ("setup", "c", 1)]


def test_init_raises_start_fails_with_the_reason(make_sup: MakeSup, exits: ExitLog) -> None:
    sup = make_sup([ChildSpec(id="bad", start=failing_start("no database"))])

    with pytest.raises(StartFailed) as info:
        sup.start()

    assert info.value.child_id == "bad"
    assert "no database" in str(info.value.cause)
    assert sup.state is SupervisorState.STOPPED
    assert sup.wait_stopped(0)
    assert exits.reasons == []  # a failed start is reported by raising, not through on_exit


def test_actor_setup_failure_is_a_start_failure(make_sup: MakeSup, journal: Journal) -> None:
    sup = make_sup([ChildSpec(id="bad", start=actor_child(Worker, journal=journal, fail_setup=True))])

    with pytest.raises(StartFailed) as info:
        sup.start()

    assert isinstance(info.value.cause, ActorStartError)
    assert "setup failed on purpose" in str(info.value.cause)
    assert journal.entries() == [("setup", "bad", 1), ("cleanup", "bad", 1)]


def test_init_partial_start_failure_rolls_back_in_reverse(
    make_sup: MakeSup, journal: Journal, recorder: EventRecorder
) -> None:
    specs = [
        *_workers(journal, "a", "b", "c"),
        ChildSpec(id="d", start=failing_start()),
        *_workers(journal, "e"),
    ]
    sup = make_sup(specs)

    with pytest.raises(StartFailed, match="'d'"):
        sup.start()

    assert journal.ids("setup") == ["a", "b", "c"]  # e never started
    assert journal.ids("cleanup") == ["c", "b", "a"]
    assert [e.child_id for e in recorder.of(EventKind.START_FAILED)] == ["d"]


def test_child_adm(make_sup: MakeSup, fakes: FakeFactory) -> None:
    sup = make_sup([])
    sup.start()
    spec = ChildSpec(id="c", start=fakes.start())

    first = sup.start_child(spec)
    with pytest.raises(AlreadyStarted) as already:
        sup.start_child(spec)
    assert already.value.handle is first
    with pytest.raises(ChildNotFound):
        sup.terminate_child("nope")
    with pytest.raises(ChildNotFound):
        sup.restart_child("nope")

    sup.terminate_child("c")
    sup.terminate_child("c")  # idempotent
    assert fakes.current("c").stop_calls == 1
    assert sup.which_children()[0].handle is None
    with pytest.raises(AlreadyPresent):
        sup.start_child(spec)

    second = sup.restart_child("c")
    assert second is not first
    assert sup.which_children()[0].incarnation == 2
    with pytest.raises(ChildRunning):
        sup.restart_child("c")
    with pytest.raises(ChildRunning):
        sup.delete_child("c")

    sup.terminate_child("c")
    sup.delete_child("c")
    assert sup.which_children() == []
    with pytest.raises(ChildNotFound):
        sup.delete_child("c")
    sup.start_child(spec)
    assert sup.count_children() == (1, 1, 0, 1)


def test_start_child_returns_error_stores_nothing(make_sup: MakeSup, recorder: EventRecorder) -> None:
    sup = make_sup([])
    sup.start()

    with pytest.raises(StartFailed):
        sup.start_child(ChildSpec(id="x", start=failing_start()))

    assert sup.which_children() == []
    assert sup.state is SupervisorState.RUNNING
    assert len(recorder.of(EventKind.START_FAILED, "x")) == 1


def test_restart_child_when_start_fails_keeps_spec_without_handle(make_sup: MakeSup, fakes: FakeFactory) -> None:
    sup = make_sup([ChildSpec(id="c", start=fakes.start(), restart=Restart.TRANSIENT)])
    sup.start()
    sup.terminate_child("c")
    fakes.failing.add("c")

    with pytest.raises(StartFailed):
        sup.restart_child("c")

    assert [(r.id, r.handle) for r in sup.which_children()] == [("c", None)]


def test_lookup_resolves_the_current_incarnation(make_sup: MakeSup, journal: Journal, recorder: EventRecorder) -> None:
    sup = make_sup(_workers(journal, "a"))
    sup.start()
    old = current_ref(sup, "a")
    assert old is not None

    old.tell(StopSelf())
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)

    new = current_ref(sup, "a")
    assert new is not None
    assert new.actor_urn != old.actor_urn
    assert new.is_alive()
    assert not old.is_alive()
    assert current_ref(sup, "missing") is None


def test_api_calls_from_the_event_callback_are_refused(make_sup: MakeSup, fakes: FakeFactory) -> None:
    errors: list[BaseException] = []
    holder: list[object] = []

    def reenter(event: object) -> None:
        try:
            holder[0].which_children()  # type: ignore[attr-defined]
        except RuntimeError as exc:
            errors.append(exc)

    sup = make_sup([ChildSpec(id="a", start=fakes.start())], on_event=reenter)
    holder.append(sup)
    sup.start()

    assert errors  # refused instead of deadlocking the supervisor thread
    assert sup.state is SupervisorState.RUNNING


def test_api_before_start_is_refused_and_stop_before_start_is_final(make_sup: MakeSup, fakes: FakeFactory) -> None:
    sup = make_sup([ChildSpec(id="a", start=fakes.start())])
    with pytest.raises(SupervisorNotRunning):
        sup.which_children()

    sup.stop()

    assert sup.state is SupervisorState.STOPPED
    assert sup.wait_stopped(0)
    with pytest.raises(SupervisorNotRunning):
        sup.start()
    assert fakes.start_attempts == {}
