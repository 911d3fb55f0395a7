"""``actor_child`` and ``ActorHandle``: startup handshake, monitor, kill/wait semantics."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pykka
import pytest

from otp.actor import SupervisedActor
from otp.actor_child import ActorHandle, ActorStartError, actor_child
from otp.child import ChildContext, ChildHandle
from otp.errors import ChildAbandoned
from otp.exits import ExitKind, ExitReason
from tests.helpers import MS, eventually
from tests.fakes.children import Worker


class Reports:
    """Exit sink: the reports of one incarnation."""

    def __init__(self) -> None:
        self.reasons: list[ExitReason] = []

    def __call__(self, reason: ExitReason) -> None:
        self.reasons.append(reason)


def _ctx(reports: Reports, child_id: str = "c") -> ChildContext:
    return ChildContext(supervisor_name="test", child_id=child_id, incarnation=1, exit_sink=reports)


def _watchers(child_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"watch:{child_id}#1"]


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


class SlowSetup(SupervisedActor):
    """An actor whose setup blocks until the test opens the gate."""

    def __init__(self, *, context: ChildContext, gate: threading.Event) -> None:
        super().__init__(context=context)
        self._gate = gate

    def setup(self) -> None:
        self._gate.wait()


class Mute(Worker):
    """A broken actor that never reports its exit (only the monitor can notice it died)."""

    def _report_exit(self, reason: ExitReason) -> None:
        del reason


def test_handle_is_a_child_handle_that_cannot_kill() -> None:
    handle = actor_child(Worker)(_ctx(Reports()))

    assert isinstance(handle, ChildHandle)
    assert handle.kill() is False
    assert handle.ref.is_alive()
    assert handle.describe()["actor"] == "Worker"
    assert handle.wait(0) is False
    handle.stop()


def test_wait_is_true_once_stopped_reported_and_thread_ended() -> None:
    reports = Reports()
    handle = actor_child(Worker)(_ctx(reports))

    handle.stop()

    assert handle.wait(5000 * MS)
    assert not handle.ref.is_alive()
    assert reports.reasons == [ExitReason.shutdown("stopped by its supervisor")]
    assert handle.exit_reason == reports.reasons[0]


def test_monitor_thread_ends_with_the_actor() -> None:
    handle = actor_child(Worker)(_ctx(Reports(), "m"))
    assert len(_watchers("m")) == 1

    handle.stop()

    eventually(lambda: not _watchers("m"), what="the monitor thread has ended")


def test_monitor_reports_an_actor_that_died_without_a_report() -> None:
    reports = Reports()
    handle = actor_child(Mute)(_ctx(reports))

    handle.ref.tell("anything")
    handle.ref.stop(block=False)

    eventually(lambda: reports.reasons)
    assert reports.reasons == [ExitReason.error("actor thread ended without an exit report")]
    assert handle.wait(5000 * MS)


def test_setup_failure_raises_actor_start_error() -> None:
    reports = Reports()

    with pytest.raises(ActorStartError, match="setup failed on purpose"):
        actor_child(Worker, fail_setup=True)(_ctx(reports))

    assert [r.kind for r in reports.reasons] == [ExitKind.ERROR]
    eventually(lambda: not pykka.ActorRegistry.get_by_class(Worker))


def test_start_timeout_abandons_the_half_started_actor(gate: threading.Event) -> None:
    reports = Reports()

    with pytest.raises(ChildAbandoned, match="did not finish setup"):
        actor_child(SlowSetup, gate=gate, start_timeout=0.05)(_ctx(reports))

    assert pykka.ActorRegistry.get_by_class(SlowSetup)  # still alive: it could not be killed
    gate.set()  # setup finishes; the stop queued by the start function then takes effect
    eventually(lambda: not pykka.ActorRegistry.get_by_class(SlowSetup))
    eventually(lambda: reports.reasons == [ExitReason.shutdown("stopped by its supervisor")])


def test_actor_child_rejects_classes_that_are_not_supervised() -> None:
    with pytest.raises(TypeError):
        actor_child(pykka.ThreadingActor)  # type: ignore[type-var]


def test_handles_are_per_incarnation() -> None:
    first: ActorHandle = actor_child(Worker)(_ctx(Reports()))
    first.stop()
    assert first.wait(5000 * MS)

    second = actor_child(Worker)(ChildContext(supervisor_name="t", child_id="c", incarnation=2, exit_sink=Reports()))

    assert second.ref.actor_urn != first.ref.actor_urn
    assert first.ref.is_alive() is False and second.ref.is_alive()
    second.stop()
