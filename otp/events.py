"""Supervisor events (S45): an ordered, immutable record of everything a supervisor did."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from otp.clock import Clock
from otp.exits import ExitReason

log = logging.getLogger(__name__)


class EventKind(str, Enum):
    """What happened. Child-level events carry ``child_id``; supervisor-level ones do not."""

    STARTED = "started"  # a child incarnation started (child_id None: the supervisor started)
    EXITED = "exited"  # a child incarnation ended, with its reason
    RESTARTING = "restarting"  # a restart attempt was admitted by the intensity limit
    START_FAILED = "start_failed"  # a child's start function failed
    ABANDONED = "abandoned"  # a child could not be proven dead and was left behind (S13)
    GAVE_UP = "gave_up"  # the supervisor reached its restart intensity (or must escalate)
    STOPPED = "stopped"  # the supervisor finished an orderly stop


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorEvent:
    """Event raised when a supervisor or one of its children changed state."""

    kind: EventKind
    supervisor: str
    child_id: str | None
    incarnation: int | None
    reason: ExitReason | None
    at: datetime


EventSink = Callable[[SupervisorEvent], None]


_LOG_LEVELS = {
    EventKind.RESTARTING: logging.WARNING,
    EventKind.START_FAILED: logging.ERROR,
    EventKind.ABANDONED: logging.CRITICAL,
    EventKind.GAVE_UP: logging.ERROR,
}


class EventEmitter:
    """Stamps, logs and forwards a supervisor's events; a failing sink never disturbs it."""

    def __init__(self, supervisor: str, clock: Clock, sink: EventSink | None) -> None:
        """Emit events of ``supervisor`` stamped by ``clock`` to ``sink`` (may be None)."""
        self._supervisor = supervisor
        self._clock = clock
        self._sink = sink

    def __call__(
        self,
        kind: EventKind,
        child_id: str | None = None,
        incarnation: int | None = None,
        reason: ExitReason | None = None,
    ) -> SupervisorEvent:
        """Build the event, log it (abnormal exits at WARNING) and hand it to the sink."""
        event = SupervisorEvent(
            kind=kind,
            supervisor=self._supervisor,
            child_id=child_id,
            incarnation=incarnation,
            reason=reason,
            at=self._clock.now(),
        )
        level = _LOG_LEVELS.get(kind, logging.INFO)
        if kind is EventKind.EXITED and reason is not None and reason.abnormal:
            level = logging.WARNING
        log.log(
            level, "%s: %s %s#%s %s", self._supervisor, kind.value, child_id or "-", incarnation or "-", reason or ""
        )
        if self._sink is not None:
            try:
                self._sink(event)
            except Exception:  # noqa: BLE001 - an event sink failure must never disturb supervision
                log.exception("%s: on_event callback failed for %s", self._supervisor, event)
        return event
