"""Fakes for supervisor tests: an event recorder, controllable fake children, small test actors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otp.actor import SupervisedActor
from otp.child import ChildContext, StartFn
from otp.events import EventKind, SupervisorEvent
from otp.exits import ExitKind, ExitReason
from tests.helpers import MS


class EventRecorder:
    """An ``on_event`` sink that records events and lets tests wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[SupervisorEvent] = []

    def __call__(self, event: SupervisorEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    @property
    def events(self) -> list[SupervisorEvent]:
        with self._cond:
            return list(self._events)

    def of(
        self,
        kind: EventKind,
        child_id: str | None = None,
        *,
        supervisor: str | None = None,
    ) -> list[SupervisorEvent]:
        """Recorded events of ``kind`` (for ``child_id`` / ``supervisor`` if given), in order."""
        return [
            e
            for e in self.events
            if e.kind is kind
            and (child_id is None or e.child_id == child_id)
            and (supervisor is None or e.supervisor == supervisor)
        ]

    def wait_for(
        self,
        kind: EventKind,
        child_id: str | None = None,
        *,
        supervisor: str | None = None,
        incarnation: int | None = None,
        count: int = 1,
        timeout: float = 5000 * MS,
    ) -> list[SupervisorEvent]:
        """Block until ``count`` matching events were recorded; return them."""

        def matching() -> list[SupervisorEvent]:
            found = self.of(kind, child_id, supervisor=supervisor)
            return [e for e in found if incarnation is None or e.incarnation == incarnation]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                raise AssertionError(
                    f"no {count}x {kind.value} {child_id or ''}#{incarnation or '*'} within {timeout} s; "
                    f"saw {[(e.kind.value, e.child_id, e.incarnation) for e in self._events]}"
                )
            return matching()

    def trail(self, *kinds: EventKind) -> list[tuple[str, str | None, int | None]]:
        """Compact ``(kind, child_id, incarnation)`` list of the recorded events of ``kinds``."""
        return [(e.kind.value, e.child_id, e.incarnation) for e in self.events if not kinds or e.kind in kinds]


class Journal:
    """A thread-safe, ordered list of what test children did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str, int]] = []

    def add(self, what: str, child_id: str, incarnation: int) -> None:
        with self._lock:
            self._entries.append((what, child_id, incarnation))

    def entries(self, what: str | None = None) -> list[tuple[str, str, int]]:
        with self._lock:
            return [e for e in self._entries if what is None or e[0] == what]

    def ids(self, what: str) -> list[str]:
        return [child_id for _, child_id, _ in self.entries(what)]


# ---------------------------------------------------------------------- fake children


class FakeChild:
    """A ``ChildHandle`` whose behaviour the test controls (no threads)."""

    def __init__(self, ctx: ChildContext, *, obeys_stop: bool, killable: bool, journal: Journal | None) -> None:
        self.ctx = ctx
        self.obeys_stop = obeys_stop
        self.killable = killable
        self._journal = journal
        self.stop_calls = 0
        self.kill_calls = 0
        self._dead = threading.Event()
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return not self._dead.is_set()

    def stop(self) -> None:
        self.stop_calls += 1
        if self.obeys_stop:
            self._die(ExitReason.shutdown())

    def kill(self) -> bool:
        self.kill_calls += 1
        if self.killable:
            self._die(ExitReason.killed("SIGKILL"))
        return self.killable

    def wait(self, timeout: float | None) -> bool:
        return self._dead.wait(timeout)

    def describe(self) -> dict[str, Any]:
        return {"fake": self.ctx.child_id, "incarnation": self.ctx.incarnation}

    def exit(self, reason: ExitReason) -> None:
        """The child exits by itself with ``reason``."""
        self._die(reason)

    def report_exit_but_linger(self, reason: ExitReason) -> None:
        """Misbehave: report an exit but stay alive (wait() stays False)."""
        self.ctx.notify_exit(reason)

    def _die(self, reason: ExitReason) -> None:
        with self._lock:
            if self._dead.is_set():
                return
            self._dead.set()
        if self._journal is not None:
            self._journal.add("exit", self.ctx.child_id, self.ctx.incarnation)
        self.ctx.notify_exit(reason)


@dataclass
class FakeFactory:
    """Makes ``start`` functions for fake children and remembers every incarnation."""

    journal: Journal = field(default_factory=Journal)
    started: list[FakeChild] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)  # ids whose start currently fails (OTP's fail_start flag)
    start_attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(
        self, *, obeys_stop: bool = True, killable: bool = True, gate: threading.Semaphore | None = None
    ) -> StartFn:
        def start(ctx: ChildContext) -> FakeChild:
            if gate is not None and not gate.acquire(timeout=5000 * MS):
                raise TimeoutError("test gate never opened")
            with self._lock:
                self.start_attempts[ctx.child_id] = self.start_attempts.get(ctx.child_id, 0) + 1
                if ctx.child_id in self.failing:
                    raise RuntimeError(f"start of {ctx.child_id} fails (test switch)")
                child = FakeChild(ctx, obeys_stop=obeys_stop, killable=killable, journal=self.journal)
                self.started.append(child)
            self.journal.add("start", ctx.child_id, ctx.incarnation)
            return child

        return start

    def current(self, child_id: str) -> FakeChild:
        with self._lock:
            return [c for c in self.started if c.ctx.child_id == child_id][-1]

    def incarnations(self, child_id: str) -> list[FakeChild]:
        with self._lock:
            return [c for c in self.started if c.ctx.child_id == child_id]

    def live(self, child_id: str) -> list[FakeChild]:
        return [c for c in self.incarnations(child_id) if c.alive]


def failing_start(message: str = "boom") -> StartFn:
    """A start function that always raises."""

    def start(ctx: ChildContext) -> FakeChild:
        raise RuntimeError(f"{ctx.child_id}: {message}")

    return start


# ---------------------------------------------------------------------- test actors


@dataclass(frozen=True)
class Block:
    """Command to a ``Worker``: signal ``entered``, then block until ``release`` is set."""

    entered: threading.Event
    release: threading.Event


@dataclass(frozen=True)
class StopSelf:
    """Command to a ``Worker``: stop itself (a ``normal`` exit)."""


class Worker(SupervisedActor):
    """A small actor that journals its setup/cleanup and can be blocked or stopped by command."""

    def __init__(self, *, context: ChildContext, journal: Journal | None = None, fail_setup: bool = False) -> None:
        super().__init__(context=context)
        self._journal = journal
        self._fail_setup = fail_setup

    def setup(self) -> None:
        self._note("setup")
        if self._fail_setup:
            raise RuntimeError("setup failed on purpose")

    def handle(self, message: Any) -> Any:
        if isinstance(message, Block):
            message.entered.set()
            message.release.wait()
            return None
        if isinstance(message, StopSelf):
            self.stop()
            return None
        return message

    def cleanup(self) -> None:
        self._note("cleanup")

    def _note(self, what: str) -> None:
        if self._journal is not None:
            self._journal.add(what, self.context.child_id, self.context.incarnation)


def is_kind(kind: ExitKind) -> Callable[[SupervisorEvent], bool]:
    """Predicate: the event's reason has ``kind``."""
    return lambda e: e.reason is not None and e.reason.kind is kind
