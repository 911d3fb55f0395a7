"""The generic OTP supervisor: one thread, one queue, children started in order.

Everything that changes a supervisor's state runs on its mailbox thread, which consumes exit
notices, hang reports, restart retries, delayed restarts and API calls marshalled from other
threads. A restart delayed by a backoff is *scheduled* (a timer posts it back to the mailbox);
the mailbox thread never sleeps. The contract is in ``otp/__init__.py``; the
child-facing protocol is in ``otp/child.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from otp.child import ChildContext, ChildHandle, StartFn
from otp.children import RESTARTING, ChildCounts, ChildInfo, ChildRecord, ChildTable
from otp.clock import Clock, SystemClock
from otp.errors import AlreadyPresent, AlreadyStarted, ChildAbandoned, ChildRestarting, ChildRunning, StartFailed, SupervisorDataError, SupervisorNotRunning
from otp.events import EventEmitter, EventKind, EventSink
from otp.exits import ExitReason
from otp.intensity import RestartWindow
from otp.mailbox import Mailbox
from otp.shutdown import confirm_exit, stop_child
from otp.spec import INFINITY, Backoff, ChildSpec, Restart, SupervisorFlags, validate_specs

__all__ = [
    "RESTARTING",
    "Cancellable",
    "ChildContext",
    "ChildCounts",
    "ChildHandle",
    "ChildInfo",
    "Scheduler",
    "StartFn",
    "Supervisor",
    "SupervisorState",
    "thread_scheduler",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
ExitCallback = Callable[[ExitReason], None]


class Cancellable(Protocol):
    """A scheduled call that can still be called off."""

    def cancel(self) -> None:
        """Do not run the call (a no-op once it ran)."""
        ...


Scheduler = Callable[[float, Callable[[], None]], Cancellable]
"""``schedule(delay_s, fn)``: run ``fn`` once, on any thread, ``delay_s`` seconds from now."""


def thread_scheduler(delay_s: float, fn: Callable[[], None]) -> Cancellable:
    """The real scheduler: ``fn`` runs on a daemon timer thread after ``delay_s`` real seconds."""
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True
    timer.start()
    return timer


class SupervisorState(str, Enum):
    """Lifecycle of a supervisor."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    GAVE_UP = "gave_up"


_TERMINAL = frozenset({SupervisorState.STOPPED, SupervisorState.GAVE_UP})


@dataclass(frozen=True, slots=True)
class _ExitNotice:
    child_id: str
    incarnation: int
    reason: ExitReason


@dataclass(frozen=True, slots=True)
class _RetryRestart:
    child_id: str


@dataclass(frozen=True, slots=True)
class _DelayedRestart:
    child_id: str
    token: int


@dataclass(frozen=True, slots=True)
class _DependencyChecked:
    child_id: str
    token: int
    available: bool


Probe = Callable[[], bool]
"""True when an outside dependency (the database) answers; may block briefly; runs off the mailbox thread."""

DEPENDENCY_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class _HungNotice:
    child_id: str
    incarnation: int
    reason: ExitReason


@dataclass(slots=True)
class _BackoffState:
    """Per child id: consecutive restarts so far, and since when the current incarnation is up."""

    count: int = 0
    up_since: float | None = None


def _restarts(restart: Restart, reason: ExitReason) -> bool:
    return restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and reason.abnormal)


def _leaves_child_alive(exc: BaseException) -> bool:
    return isinstance(exc, ChildAbandoned) or (isinstance(exc, StartFailed) and exc.abandoned)


class Supervisor:
    """Starts, watches, restarts and stops children per OTP semantics (see the package doc)."""

    def __init__(  # noqa: PLR0913 - keyword collaborators, injected for testability
        self,
        name: str,
        flags: SupervisorFlags | None = None,
        specs: Sequence[ChildSpec] = (),
        *,
        clock: Clock | None = None,
        on_event: EventSink | None = None,
        on_exit: ExitCallback | None = None,
        call_timeout: float | None = 30.0,
        kill_wait: float = 5.0,
        exit_grace: float = 5.0,
        backoff: Backoff | None = None,
        scheduler: Scheduler | None = None,
        rng: random.Random | None = None,
        dependencies: dict[str, Probe] | None = None,
        assume_dependency: str | None = None,
    ) -> None:
        """Validate flags and specs (``SupervisorDataError``); nothing starts before ``start()``.

        ``on_event`` receives every ``SupervisorEvent``; ``on_exit`` is called once when the
        supervisor terminates after a successful start (give-up or stop), so a parent or the
        node process can escalate. Both run on the supervisor thread and must neither block
        nor call this supervisor's API. ``call_timeout`` is the default wait for API calls;
        ``kill_wait`` bounds the wait for a death after ``kill()``; ``exit_grace`` bounds the
        wait for a child that reported its own exit to be really gone.

        ``backoff`` is the restart delay policy of every child whose spec has none (None: every
        restart is immediate, as in OTP). Delayed restarts are handed to ``scheduler`` (default
        ``thread_scheduler``), their jitter drawn from ``rng``; uptimes for the backoff reset
        are read from ``clock``.

        ``dependencies`` names outside services by probe. When a child exits because one of
        them was unavailable (its exit reason ``waits_for`` it — or, with ``assume_dependency``,
        after any abnormal exit) and the probe confirms it is still down, the restart is held,
        not counted against the intensity: the group is stopped as usual, and started again once
        the probe answers (checked every ``DEPENDENCY_POLL_S`` off the mailbox thread). A
        database outage therefore parks the affected children instead of exhausting every
        supervisor's intensity in a crash loop; a child that keeps failing while the dependency
        is up is still counted and escalated as before.
        """
        self.name = name
        self.flags = flags if flags is not None else SupervisorFlags()
        if not isinstance(self.flags, SupervisorFlags):
            raise SupervisorDataError(f"flags must be SupervisorFlags, got {self.flags!r}")
        self._initial_specs = validate_specs(specs)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._emit = EventEmitter(name, self._clock, on_event)
        self._on_exit = on_exit
        self._call_timeout = call_timeout
        self._kill_wait = kill_wait
        self._exit_grace = exit_grace
        self._window = RestartWindow(self.flags.intensity, self.flags.period)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise SupervisorDataError(f"backoff must be a Backoff or None, got {backoff!r}")
        self._backoff = backoff
        self._schedule: Scheduler = scheduler if scheduler is not None else thread_scheduler
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not cryptography
        self._backoffs: dict[str, _BackoffState] = {}
        self._pending: dict[str, tuple[int, Cancellable]] = {}  # child id → (token, timer) of a delayed restart
        self._dependencies = dict(dependencies or {})
        self._assume = assume_dependency
        self._waiting_for: dict[str, str] = {}  # child id → the dependency its held restart waits for
        self._tokens = 0
        self._state = SupervisorState.NEW
        self._children = ChildTable(name)
        self._mailbox = Mailbox(name, self._handle, lambda: self._state in _TERMINAL, self._crashed)

    # ------------------------------------------------------------------ public API (any thread)

    @property
    def state(self) -> SupervisorState:
        """Current lifecycle state."""
        return self._state

    def start(self, *, timeout: float | None = None) -> None:
        """Start every child in spec order, each ready before the next (S5).

        If a child fails to start, the ones already started are stopped in reverse order and
        ``StartFailed`` is raised (S6). ``timeout=None`` waits for the whole start.
        """
        if self._state is not SupervisorState.NEW:
            raise SupervisorNotRunning(f"supervisor {self.name!r} was already started")
        self._state = SupervisorState.STARTING
        self._mailbox.start()
        self._mailbox.call(self._do_start, timeout)

    def stop(self, reason: ExitReason | None = None, *, timeout: float | None = None) -> None:
        """Stop all children in reverse start order per their shutdown specs, then exit.

        Idempotent. ``reason`` (default ``shutdown``) is passed to ``on_exit``.
        ``timeout=None`` waits for the whole stop.
        """
        reason = reason if reason is not None else ExitReason.shutdown("stop requested")
        if self._stop_unstarted(reason) or self._state in _TERMINAL:
            return
        try:
            self._mailbox.call(functools.partial(self._do_stop, reason), timeout)
        except SupervisorNotRunning:
            return

    def request_stop(self, reason: ExitReason | None = None) -> None:
        """Like ``stop()`` but returns at once; use ``wait_stopped`` to wait."""
        reason = reason if reason is not None else ExitReason.shutdown("stop requested")
        if self._stop_unstarted(reason):
            return
        try:
            self._mailbox.submit(functools.partial(self._do_stop, reason))
        except SupervisorNotRunning:
            return

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """True once the supervisor has terminated (stopped, gave up, or failed to start)."""
        return self._mailbox.wait_finished(timeout)

    def which_children(self, *, timeout: float | None = None) -> list[ChildInfo]:
        """Every child in start order: ``(id, handle | None | "restarting", type, incarnation)``."""
        return self._call(self._children.rows, timeout)

    def count_children(self, *, timeout: float | None = None) -> ChildCounts:
        """Counts of specs, running children, supervisors and workers."""
        return self._call(self._children.counts, timeout)

    def start_child(self, spec: ChildSpec, *, timeout: float | None = None) -> ChildHandle:
        """Start a new child and append it to the start order (S8).

        Raises ``AlreadyStarted`` / ``AlreadyPresent`` if the id exists, ``StartFailed`` (no
        spec stored) if the start fails.
        """
        if not isinstance(spec, ChildSpec):
            raise SupervisorDataError(f"not a ChildSpec: {spec!r}")
        return self._call(functools.partial(self._do_start_child, spec), timeout)

    def terminate_child(self, child_id: str, *, timeout: float | None = None) -> None:
        """Stop a child per its shutdown spec without restarting it; idempotent (S30)."""
        self._call(functools.partial(self._do_terminate_child, child_id), timeout)

    def restart_child(self, child_id: str, *, timeout: float | None = None) -> ChildHandle:
        """Start a stopped child again (not counted by the restart intensity)."""
        return self._call(functools.partial(self._do_restart_child, child_id), timeout)

    def delete_child(self, child_id: str, *, timeout: float | None = None) -> None:
        """Forget the spec of a child that is not running."""
        self._call(functools.partial(self._do_delete_child, child_id), timeout)

    def lookup(self, child_id: str) -> ChildHandle | None:
        """The handle of the child's *current* incarnation, or None; never blocks (S46)."""
        return self._children.lookup(child_id)

    def queue_depth(self) -> int:
        """Exit notices, retries and calls waiting for the supervisor thread."""
        return self._mailbox.depth()

    def abandoned_children(self) -> tuple[str, ...]:
        """Ids of children left behind while possibly alive, and still not proven dead."""
        return self._children.abandoned()

    def report_hung(self, child_id: str, incarnation: int, reason: ExitReason) -> None:
        """A watchdog found this incarnation stuck (``reason``: ``hung``); any thread, never blocks.

        A child that can be killed is killed and then restarted per its restart type, like any
        abnormal exit. One that cannot (a thread actor) is abandoned and the supervisor gives
        up, so the OS process is restarted instead and no second incarnation runs beside the
        stuck one (S13). Reports about an incarnation that is no longer current are ignored.
        """
        self._mailbox.post(_HungNotice(child_id, incarnation, reason))

    def _call(self, fn: Callable[[], T], timeout: float | None) -> T:
        return self._mailbox.call(fn, self._call_timeout if timeout is None else timeout)

    def _stop_unstarted(self, reason: ExitReason) -> bool:
        if not self._mailbox.close_unstarted():
            return False
        self._state = SupervisorState.STOPPED
        self._emit(EventKind.STOPPED, reason=reason)
        return True

    def _post_exit(self, child_id: str, incarnation: int, reason: ExitReason) -> None:
        """The exit sink given to every ``ChildContext``: any thread, never blocks."""
        self._mailbox.post(_ExitNotice(child_id, incarnation, reason))

    # ------------------------------------------------------------------ handlers (mailbox thread)

    def _handle(self, item: object) -> None:
        if isinstance(item, _ExitNotice):
            self._handle_exit(item)
        elif isinstance(item, _RetryRestart):
            record = self._children.get(item.child_id)
            if record is not None and record.restarting and item.child_id not in self._pending:
                self._restart(record, record.last_failure or ExitReason.error("restart retry"))
        elif isinstance(item, _DelayedRestart):
            self._handle_delayed_restart(item)
        elif isinstance(item, _DependencyChecked):
            self._handle_dependency_checked(item)
        elif isinstance(item, _HungNotice):
            self._handle_hung(item)

    def _crashed(self, exc: Exception) -> None:
        if self._state not in _TERMINAL:
            self._give_up(f"internal error: {type(exc).__name__}: {exc}")

    def _do_start(self) -> None:
        for spec in self._initial_specs:
            self._children.add(ChildRecord(spec))
        for record in self._children.in_start_order():
            error = self._start_record(record)
            if error is None:
                continue
            clean = self._stop_children(f"start of {record.id!r} failed")
            abandoned = not clean or _leaves_child_alive(error)
            reason = ExitReason.shutdown(f"failed_to_start_child {record.id!r}: {error}", abandoned=abandoned)
            self._terminate_self(SupervisorState.STOPPED, reason, notify=False)
            raise StartFailed(record.id, error, abandoned=abandoned)
        self._state = SupervisorState.RUNNING
        self._emit(EventKind.STARTED)

    def _do_stop(self, reason: ExitReason) -> None:
        if self._state in _TERMINAL:
            return
        self._state = SupervisorState.STOPPING
        clean = self._stop_children("supervisor stopping")
        if not clean or self._children.has_abandoned():
            reason = dataclasses.replace(reason, abandoned=True)
        self._terminate_self(SupervisorState.STOPPED, reason)

    def _do_start_child(self, spec: ChildSpec) -> ChildHandle:
        existing = self._children.get(spec.id)
        if existing is not None and existing.handle is not None:
            raise AlreadyStarted(spec.id, existing.handle)
        if existing is not None:
            raise AlreadyPresent(f"child {spec.id!r} is already present (not running)")
        record = ChildRecord(spec)
        handle = self._start_or_raise(record)
        self._children.add(record)
        return handle

    def _do_terminate_child(self, child_id: str) -> None:
        record = self._children.find(child_id)
        record.restarting = False  # ends a restart loop (S24), or calls off a delayed restart
        self._cancel_pending(child_id)
        if record.handle is None:
            if record.spec.restart is Restart.TEMPORARY:
                self._forget(record)
        elif not self._terminate(record, "terminate_child"):
            self._give_up(f"child {child_id!r} could not be stopped", abandoned=True)
            raise ChildAbandoned(f"child {child_id!r} ignored its stop and cannot be killed")

    def _do_restart_child(self, child_id: str) -> ChildHandle:
        record = self._children.find(child_id)
        if record.restarting:
            raise ChildRestarting(f"child {child_id!r} is restarting")
        if record.handle is not None:
            raise ChildRunning(f"child {child_id!r} is running")
        return self._start_or_raise(record)

    def _do_delete_child(self, child_id: str) -> None:
        record = self._children.find(child_id)
        if record.restarting:
            raise ChildRestarting(f"child {child_id!r} is restarting")
        if record.handle is not None:
            raise ChildRunning(f"child {child_id!r} is running")
        self._forget(record)

    def _handle_exit(self, notice: _ExitNotice) -> None:
        record = self._children.get(notice.child_id)
        if record is None or record.handle is None or record.incarnation != notice.incarnation:
            log.debug("%s: ignoring exit notice of a stale incarnation: %s", self.name, notice)
            return
        handle = record.handle
        self._children.set_handle(record, None)
        self._emit(EventKind.EXITED, record.id, record.incarnation, notice.reason)
        if notice.reason.abandoned or not confirm_exit(handle, grace=self._exit_grace, kill_wait=self._kill_wait):
            self._abandon(record, handle, "exited but could not be proven dead (with all its descendants)")
            self._give_up(f"child {record.id!r} could not be proven dead", abandoned=True)
        elif _restarts(record.spec.restart, notice.reason):
            self._restart(record, notice.reason)
        elif record.spec.restart is Restart.TEMPORARY:
            self._forget(record)

    def _handle_hung(self, notice: _HungNotice) -> None:
        record = self._children.get(notice.child_id)
        if record is None or record.handle is None or record.incarnation != notice.incarnation:
            log.debug("%s: ignoring a hang report about a stale incarnation: %s", self.name, notice)
            return
        handle = record.handle
        self._children.set_handle(record, None)
        if handle.kill() and handle.wait(self._kill_wait):
            self._emit(EventKind.EXITED, record.id, record.incarnation, notice.reason)
            if _restarts(record.spec.restart, notice.reason):
                self._restart(record, notice.reason)
            elif record.spec.restart is Restart.TEMPORARY:
                self._forget(record)
            return
        handle.stop()  # queued behind the stuck message: should it ever return, it stops there
        self._children.abandon(record.id, handle)
        log.critical("%s: child %r #%d %s: it cannot be killed, escalating", self.name, record.id,
                     record.incarnation, notice.reason)
        self._emit(EventKind.ABANDONED, record.id, record.incarnation, notice.reason)
        self._give_up(f"child {record.id!r} {notice.reason}", abandoned=True)

    # ------------------------------------------------------------------ restarts

    def _restart(self, record: ChildRecord, cause: ExitReason) -> None:
        """One restart attempt for ``record`` under the strategy (S14–S19, S23, S36, S37).

        The attempt is counted against the intensity now, and the group is stopped now; only
        the starts wait for the child's backoff delay, if it has one.
        """
        dependency = cause.waits_for or (self._assume if cause.abnormal else None)
        if dependency in self._dependencies and not self._dependencies[dependency]():
            self._hold_for(record, cause, dependency)
            return
        now = self._clock.monotonic()
        if not self._window.record(now):
            record.restarting = False
            log.error("%s: reached_max_restart_intensity after %r exited: %s", self.name, record.id, cause)
            self._give_up(f"reached_max_restart_intensity after {record.id!r} exited: {cause}")
            return
        delay = self._next_delay(record, now)
        if delay > 0:
            cause = dataclasses.replace(cause, detail=f"{cause.detail}; restart delayed {delay:.2f} s by backoff")
        self._emit(EventKind.RESTARTING, record.id, record.incarnation, cause)
        group = self._children.restart_group(record, self.flags.strategy)
        why = f"{self.flags.strategy.value} restart of {record.id!r}"
        for other in reversed(group):
            if other is not record and other.handle is not None and not self._terminate(other, why):
                self._give_up(f"child {other.id!r} could not be stopped", abandoned=True)
                return
        if delay > 0:
            record.restarting = True
            self._schedule_restart(record.id, delay)
            return
        self._start_group(group)

    def _hold_for(self, record: ChildRecord, cause: ExitReason, dependency: str) -> None:
        """Stop ``record``'s restart group and start it again once ``dependency`` is back."""
        log.warning("%s: %r exited while the %s is unavailable: its restart waits for it (not counted)",
                    self.name, record.id, dependency)
        held = dataclasses.replace(cause, detail=f"{cause.detail}; restart held until the {dependency} is back")
        self._emit(EventKind.RESTARTING, record.id, record.incarnation, held)
        group = self._children.restart_group(record, self.flags.strategy)
        why = f"{self.flags.strategy.value} restart of {record.id!r} (waiting for the {dependency})"
        for other in reversed(group):
            if other is not record and other.handle is not None and not self._terminate(other, why):
                self._give_up(f"child {other.id!r} could not be stopped", abandoned=True)
                return
        record.restarting = True
        self._check_dependency(record.id, dependency, DEPENDENCY_POLL_S)

    def _check_dependency(self, child_id: str, dependency: str, delay: float) -> None:
        self._cancel_pending(child_id)
        self._tokens += 1
        token = self._tokens
        probe = self._dependencies[dependency]

        def check() -> None:  # on the scheduler's thread: the probe may block
            try:
                available = bool(probe())
            except Exception:  # noqa: BLE001 - a probe that fails says "not available"
                available = False
            self._mailbox.post(_DependencyChecked(child_id, token, available))

        self._pending[child_id] = (token, self._schedule(delay, check))
        self._waiting_for[child_id] = dependency

    def _handle_dependency_checked(self, item: _DependencyChecked) -> None:
        pending = self._pending.get(item.child_id)
        if pending is None or pending[0] != item.token or self._state is not SupervisorState.RUNNING:
            return  # called off or superseded
        record = self._children.get(item.child_id)
        if record is None or not record.restarting or record.handle is not None:
            del self._pending[item.child_id]
            return
        dependency = self._waiting_for.get(item.child_id, "dependency")
        if not item.available:
            self._check_dependency(item.child_id, dependency, DEPENDENCY_POLL_S)
            return
        del self._pending[item.child_id]
        log.info("%s: the %s is back: restarting %r", self.name, dependency, item.child_id)
        self._start_group(self._children.restart_group(record, self.flags.strategy))

    def _next_delay(self, record: ChildRecord, now: float) -> float:
        """The backoff delay of this restart of ``record`` (0: at once); counts the restart."""
        backoff = record.spec.backoff if record.spec.backoff is not None else self._backoff
        if backoff is None:
            return 0.0
        state = self._backoffs.setdefault(record.id, _BackoffState())
        if state.up_since is not None and now - state.up_since >= backoff.reset_after_s:
            state.count = 0  # it was up long enough: this failure starts a new series
        state.up_since = None
        delay = backoff.delay(state.count, self._rng.random() if state.count > 0 else 0.0)
        state.count += 1
        return delay

    def _schedule_restart(self, child_id: str, delay: float) -> None:
        self._cancel_pending(child_id)
        self._tokens += 1
        token = self._tokens
        log.warning("%s: restart of %r delayed %.2f s by its backoff", self.name, child_id, delay)
        timer = self._schedule(delay, functools.partial(self._mailbox.post, _DelayedRestart(child_id, token)))
        self._pending[child_id] = (token, timer)

    def _cancel_pending(self, child_id: str | None = None) -> None:
        """Call off the delayed restart of ``child_id`` (None: of every child)."""
        ids = list(self._pending) if child_id is None else [child_id]
        for key in ids:
            pending = self._pending.pop(key, None)
            if pending is not None:
                pending[1].cancel()

    def _handle_delayed_restart(self, item: _DelayedRestart) -> None:
        pending = self._pending.get(item.child_id)
        if pending is None or pending[0] != item.token or self._state is not SupervisorState.RUNNING:
            return  # called off (terminate_child, a stop) or superseded
        del self._pending[item.child_id]
        record = self._children.get(item.child_id)
        if record is None or not record.restarting or record.handle is not None:
            return
        self._start_group(self._children.restart_group(record, self.flags.strategy))

    def _start_group(self, group: list[ChildRecord]) -> None:
        """Start every member of a restart group that is not running, in start order."""
        for member in group:
            if self._children.get(member.id) is not member or member.handle is not None:
                continue  # a temporary bystander was dropped
            error = self._start_record(member)
            if error is None:
                continue
            if _leaves_child_alive(error):
                self._give_up(f"start of {member.id!r} left a child alive", abandoned=True)
                return
            member.restarting = True
            self._mailbox.post(_RetryRestart(member.id))
            return

    def _start_record(self, record: ChildRecord) -> Exception | None:
        """Start one incarnation; on failure return the error (nothing is raised)."""
        incarnation = self._children.next_incarnation(record.id)
        ctx = ChildContext(
            supervisor_name=self.name,
            child_id=record.id,
            incarnation=incarnation,
            exit_sink=functools.partial(self._post_exit, record.id, incarnation),
        )
        try:
            handle = record.spec.start(ctx)
            if not isinstance(handle, ChildHandle):
                raise TypeError(f"start returned {handle!r}, not a ChildHandle (ignore is not supported)")  # noqa: TRY301
        except Exception as exc:  # noqa: BLE001 - a child's start is foreign code; its failure feeds the strategy
            record.last_failure = ExitReason.from_exception(exc, during="start")
            log.exception("%s: child %r #%d failed to start", self.name, record.id, incarnation)
            self._emit(EventKind.START_FAILED, record.id, incarnation, record.last_failure)
            return exc
        record.incarnation = incarnation
        record.restarting = False
        self._cancel_pending(record.id)
        state = self._backoffs.get(record.id)
        if state is not None:
            state.up_since = self._clock.monotonic()
        self._children.set_handle(record, handle)
        self._emit(EventKind.STARTED, record.id, incarnation)
        return None

    def _start_or_raise(self, record: ChildRecord) -> ChildHandle:
        error = self._start_record(record)
        if error is None and record.handle is not None:
            return record.handle
        if error is None:
            error = RuntimeError("child exited during its start")
        if _leaves_child_alive(error):
            self._give_up(f"start of {record.id!r} left a child alive", abandoned=True)
            raise StartFailed(record.id, error, abandoned=True)
        raise StartFailed(record.id, error)

    # ------------------------------------------------------------------ stopping

    def _terminate(self, record: ChildRecord, why: str) -> bool:
        """Stop one running child per its shutdown spec; False if it had to be abandoned."""
        handle = record.handle
        if handle is None:
            return True
        shutdown = INFINITY if record.spec.shutdown is None else record.spec.shutdown
        reason = stop_child(handle, shutdown, kill_wait=self._kill_wait)
        self._children.set_handle(record, None)
        if reason is None:
            self._abandon(record, handle, f"ignored its stop ({why}) and cannot be killed")
            return False
        if reason == ExitReason.shutdown():
            reason = ExitReason.shutdown(why)
        self._emit(EventKind.EXITED, record.id, record.incarnation, reason)
        if record.spec.restart is Restart.TEMPORARY:
            self._forget(record)
        return True

    def _forget(self, record: ChildRecord) -> None:
        """Drop a child's spec, and with it its backoff history."""
        self._children.remove(record)
        self._backoffs.pop(record.id, None)
        self._cancel_pending(record.id)

    def _stop_children(self, why: str) -> bool:
        """Terminate every running child in reverse start order; True if all proven dead."""
        clean = True
        for record in reversed(self._children.in_start_order()):
            record.restarting = False
            clean = self._terminate(record, why) and clean
        return clean

    def _abandon(self, record: ChildRecord, handle: ChildHandle, what: str) -> None:
        self._children.abandon(record.id, handle)
        log.critical("%s: child %r #%d %s: abandoned, escalating", self.name, record.id, record.incarnation, what)
        self._emit(EventKind.ABANDONED, record.id, record.incarnation, ExitReason.killed(what))

    def _give_up(self, detail: str, *, abandoned: bool = False) -> None:
        """Stop all children in reverse order and exit with reason ``shutdown`` (S20)."""
        self._state = SupervisorState.STOPPING
        clean = self._stop_children("supervisor giving up")
        abandoned = abandoned or not clean or self._children.has_abandoned()
        self._terminate_self(SupervisorState.GAVE_UP, ExitReason.shutdown(detail, abandoned=abandoned))

    def _terminate_self(self, state: SupervisorState, reason: ExitReason, *, notify: bool = True) -> None:
        self._cancel_pending()
        self._state = state
        self._emit(EventKind.GAVE_UP if state is SupervisorState.GAVE_UP else EventKind.STOPPED, reason=reason)
        if notify and self._on_exit is not None:
            try:
                self._on_exit(reason)
            except Exception:  # noqa: BLE001 - on_exit is foreign code; termination must still complete
                log.exception("%s: on_exit callback failed", self.name)
