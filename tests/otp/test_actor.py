"""``SupervisedActor`` (``otp/actor.py``), and the pykka behaviour it is built on (docs/supervision.md, checklist J)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka
import pytest

from otp.actor import SupervisedActor
from otp.actor import Crash
from otp.actor_child import actor_child
from otp.child import ChildContext
from model.clock import FakeClock
from otp.exits import ExitKind, ExitReason
from tests.helpers import MS, eventually, new_threads


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """Stop every actor the test left behind; no thread it started may survive."""
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=2000 * MS)
    eventually(lambda: not new_threads(before), 3000 * MS, what=f"threads left behind: {new_threads(before)}")


class ExitSink:
    """Records the exit reports of one incarnation."""

    def __init__(self) -> None:
        self.reasons: list[ExitReason] = []
        self._cond = threading.Condition()

    def __call__(self, reason: ExitReason) -> None:
        with self._cond:
            self.reasons.append(reason)
            self._cond.notify_all()

    def wait(self) -> ExitReason:
        with self._cond:
            assert self._cond.wait_for(lambda: self.reasons, 5000 * MS), "no exit reported"
            return self.reasons[0]


def _context(sink: ExitSink, child_id: str = "probe") -> ChildContext:
    return ChildContext(supervisor_name="test", child_id=child_id, incarnation=1, exit_sink=sink)


@dataclass(frozen=True)
class Hold:
    """Command to ``Probe``: signal ``entered``, wait for ``release``, then note the mailbox depth."""

    entered: threading.Event
    release: threading.Event
    depths: list[int] = field(default_factory=list)


class Probe(SupervisedActor):
    """A test actor whose setup, handling and cleanup can be made to fail."""

    def __init__(
        self,
        *,
        context: ChildContext,
        clock: FakeClock | None = None,
        fail_setup: Exception | None = None,
        fail_cleanup: bool = False,
        calls: list[str] | None = None,
    ) -> None:
        super().__init__(context=context, clock=clock)
        self.calls: list[str] = calls if calls is not None else []
        self._fail_setup = fail_setup
        self._fail_cleanup = fail_cleanup

    def setup(self) -> None:
        self.calls.append("setup")
        if self._fail_setup is not None:
            raise self._fail_setup

    def handle(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("bad value")
        if message == "exit":
            raise SystemExit(3)
        if message == "stop":
            self.stop()
            return None
        if message == "stats":
            return self.messages_processed, self.last_message_at
        if isinstance(message, Hold):
            message.entered.set()
            message.release.wait()
            message.depths.append(self.mailbox_depth())
            return None
        return ("echo", message)

    def cleanup(self) -> None:
        self.calls.append("cleanup")
        if self._fail_cleanup:
            raise OSError("close failed")


def _start(sink: ExitSink, calls: list[str] | None = None, **kwargs: Any) -> pykka.ActorRef[Probe]:
    return Probe.start(context=_context(sink), calls=calls, **kwargs)


# ---------------------------------------------------------------------- SupervisedActor


def test_tell_failure_reports_error_once_with_type_and_message() -> None:
    sink, calls = ExitSink(), list[str]()
    ref = _start(sink, calls)

    ref.tell("boom")

    reason = sink.wait()
    assert reason.kind is ExitKind.ERROR
    assert reason.detail == "ValueError: bad value"
    eventually(lambda: not ref.is_alive() and not [t for t in threading.enumerate() if t.name.startswith("Probe-")])
    assert sink.reasons == [reason]  # exactly once
    assert calls == ["setup", "cleanup"]  # the shared cleanup ran once


def test_crash_command_raises_injected_crash() -> None:
    sink = ExitSink()
    ref = _start(sink)

    ref.tell(Crash(note="drill"))

    assert sink.wait() == ExitReason.error("InjectedCrash: drill")


def test_ask_failure_goes_to_caller_and_actor_keeps_running() -> None:
    sink = ExitSink()
    ref = _start(sink)

    with pytest.raises(ValueError, match="bad value"):
        ref.ask("boom", timeout=5000 * MS)

    assert ref.is_alive()
    assert ref.ask("hi", timeout=5000 * MS) == ("echo", "hi")
    assert sink.reasons == []


def test_self_stop_reports_normal() -> None:
    sink, calls = ExitSink(), list[str]()
    ref = _start(sink, calls)

    ref.tell("stop")

    assert sink.wait().kind is ExitKind.NORMAL
    assert calls == ["setup", "cleanup"]


def test_stop_by_supervisor_reports_shutdown() -> None:
    sink = ExitSink()
    handle = actor_child(Probe)(_context(sink))

    handle.stop()

    assert handle.wait(5000 * MS)
    assert sink.reasons == [ExitReason.shutdown("stopped by its supervisor")]


def test_setup_failure_cleans_up_and_reports_error() -> None:
    sink, calls = ExitSink(), list[str]()
    ref = _start(sink, calls, fail_setup=RuntimeError("no socket"))

    assert sink.wait() == ExitReason.error("RuntimeError in setup: no socket")
    assert ref.actor_stopped.wait(5000 * MS)
    assert calls == ["setup", "cleanup"]
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("hi")


def test_cleanup_failure_turns_a_normal_exit_into_error() -> None:
    sink = ExitSink()
    ref = _start(sink, fail_cleanup=True)

    ref.tell("stop")

    assert sink.wait() == ExitReason.error("OSError in cleanup: close failed")


def test_stats_are_recorded_before_dispatch() -> None:
    clock = FakeClock()
    handle = actor_child(Probe, clock=clock)(_context(ExitSink()))
    ref = handle.ref

    assert ref.ask("stats", timeout=5000 * MS) == (1, clock.now())  # the startup probe is not counted
    clock.advance(3)
    ref.tell("x")
    assert ref.ask("stats", timeout=5000 * MS) == (3, clock.now())


def test_mailbox_depth_counts_queued_messages() -> None:
    ref = _start(ExitSink())
    hold = Hold(entered=threading.Event(), release=threading.Event())
    ref.tell(hold)
    assert hold.entered.wait(5000 * MS)

    for message in ("a", "b", "c"):
        ref.tell(message)
    hold.release.set()

    eventually(lambda: hold.depths == [3])


@pytest.mark.parametrize("hook", ["on_start", "on_stop", "on_failure", "on_receive"])
def test_overriding_pykka_hooks_is_refused(hook: str) -> None:
    with pytest.raises(TypeError, match=hook):
        type("Bad", (SupervisedActor,), {hook: lambda self, *args: None})


def test_base_exception_reports_error_and_stops_every_actor() -> None:
    doomed, bystander = ExitSink(), ExitSink()
    ref = _start(doomed)
    other = Probe.start(context=_context(bystander, "other"))

    ref.tell("exit")

    assert doomed.wait() == ExitReason.error("SystemExit in handle: 3")
    assert bystander.wait().kind is ExitKind.NORMAL  # stopped by pykka's stop_all, not by a supervisor
    eventually(lambda: not ref.is_alive() and not other.is_alive())


# ---------------------------------------------------------------------- pykka contract (J52–J56)


class Plain(pykka.ThreadingActor):
    """A bare pykka actor that records which hooks ran (and the state during ``on_failure``)."""

    def __init__(self, hooks: list[str], fail_start: bool = False) -> None:
        super().__init__()
        self.hooks = hooks
        self._fail_start = fail_start

    def on_start(self) -> None:
        if self._fail_start:
            raise RuntimeError("start failed")

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if message == "exit":
            raise SystemExit(1)
        if isinstance(message, Hold):
            message.entered.set()
            message.release.wait()
        return message

    def on_stop(self) -> None:
        self.hooks.append("on_stop")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stopped = self.actor_stopped.is_set()
        registered = pykka.ActorRegistry.get_by_urn(self.actor_urn) is not None
        self.hooks.append(
            f"on_failure:{getattr(exception_type, '__name__', None)} stopped={stopped} registered={registered}"
        )


def test_pykka_ask_exception_goes_to_caller_actor_stays_alive() -> None:
    hooks: list[str] = []
    ref = Plain.start(hooks)

    with pytest.raises(ValueError, match="boom"):
        ref.ask("boom", timeout=5000 * MS)

    assert ref.is_alive()
    assert hooks == []


def test_pykka_tell_exception_stops_actor_calls_on_failure_not_on_stop() -> None:
    hooks: list[str] = []
    ref = Plain.start(hooks)

    ref.tell("boom")

    eventually(lambda: not [t for t in threading.enumerate() if t.name.startswith("Plain-")])
    # on_failure runs after the actor was marked stopped and unregistered; on_stop never runs
    assert hooks == ["on_failure:ValueError stopped=True registered=False"]
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("again")


def test_pykka_on_start_failure_stops_actor_without_on_failure_or_on_stop() -> None:
    hooks: list[str] = []
    ref = Plain.start(hooks, fail_start=True)

    assert ref.actor_stopped.wait(5000 * MS)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("hi", timeout=5000 * MS)
    eventually(lambda: not [t for t in threading.enumerate() if t.name.startswith("Plain-")])
    assert hooks == []


def test_pykka_queued_asks_fail_and_queued_stops_resolve_after_stop() -> None:
    hooks: list[str] = []
    ref = Plain.start(hooks)
    hold = Hold(entered=threading.Event(), release=threading.Event())
    ref.tell(hold)
    assert hold.entered.wait(5000 * MS)  # busy: what follows queues up behind "hold"

    first_stop = ref.stop(block=False)
    late_ask = ref.ask("late", block=False)
    second_stop = ref.stop(block=False)
    ref.tell("dropped")  # queued tells are silently dropped
    hold.release.set()

    assert first_stop.get(timeout=5000 * MS) is True
    with pytest.raises(pykka.ActorDeadError):
        late_ask.get(timeout=5000 * MS)
    assert second_stop.get(timeout=5000 * MS) is True
    assert hooks == ["on_stop"]


def test_pykka_base_exception_stops_all_actors() -> None:
    hooks: list[list[str]] = [[], [], []]
    refs = [Plain.start(h) for h in hooks]

    refs[0].tell("exit")

    eventually(lambda: not any(r.is_alive() for r in refs))
    assert pykka.ActorRegistry.get_all() == []
    assert hooks == [["on_stop"], ["on_stop"], ["on_stop"]]
