"""The supervisor's child table: specs in start order, current handles, incarnation counters.

Only the supervisor thread mutates records. The few reads other threads need (``lookup`` and
``abandoned``) go through a lock-protected snapshot, so they never wait for the supervisor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from otp.child import ChildHandle
from otp.errors import ChildNotFound
from otp.exits import ExitReason
from otp.spec import ChildSpec, ChildType, Strategy

RESTARTING: Final = "restarting"


class ChildInfo(NamedTuple):
    """One row of ``which_children()`` (unpacks like OTP's ``{Id, Child, Type}``, plus more)."""

    id: str
    handle: ChildHandle | Literal["restarting"] | None
    type: ChildType
    incarnation: int


class ChildCounts(NamedTuple):
    """``count_children()``: specs, running children, supervisors and workers (S44)."""

    specs: int
    active: int
    supervisors: int
    workers: int


@dataclass(slots=True)
class ChildRecord:
    """A child spec and the state of its current incarnation."""

    spec: ChildSpec
    handle: ChildHandle | None = None
    incarnation: int = 0  # of the current (or last successfully started) incarnation
    restarting: bool = False  # a failed restart is queued for retry (S23)
    last_failure: ExitReason | None = None

    @property
    def id(self) -> str:
        """The child id."""
        return self.spec.id


class ChildTable:
    """Children of one supervisor, in start order."""

    def __init__(self, owner: str) -> None:
        """An empty table for the supervisor named ``owner``."""
        self._owner = owner
        self._order: list[str] = []
        self._records: dict[str, ChildRecord] = {}
        self._incarnations: dict[str, int] = {}  # survives delete: stale notices stay stale
        self._lock = threading.Lock()
        self._live: dict[str, ChildHandle] = {}
        self._abandoned: list[tuple[str, ChildHandle]] = []

    def add(self, record: ChildRecord) -> None:
        """Append ``record`` at the end of the start order."""
        self._records[record.id] = record
        self._order.append(record.id)
        if record.handle is not None:
            self.set_handle(record, record.handle)

    def get(self, child_id: str) -> ChildRecord | None:
        """The record for ``child_id``, or None."""
        return self._records.get(child_id)

    def find(self, child_id: str) -> ChildRecord:
        """The record for ``child_id``; ``ChildNotFound`` if there is none."""
        record = self._records.get(child_id)
        if record is None:
            raise ChildNotFound(f"no child {child_id!r} in supervisor {self._owner!r}")
        return record

    def remove(self, record: ChildRecord) -> None:
        """Forget ``record`` (its incarnation counter is kept)."""
        if self._records.pop(record.id, None) is not None:
            self._order.remove(record.id)
        with self._lock:
            self._live.pop(record.id, None)

    def in_start_order(self) -> list[ChildRecord]:
        """All records, first started first."""
        return [self._records[i] for i in self._order]

    def restart_group(self, record: ChildRecord, strategy: Strategy) -> list[ChildRecord]:
        """The children restarted together with ``record``, in start order (S14–S16)."""
        if strategy is Strategy.ONE_FOR_ONE:
            return [record]
        if strategy is Strategy.ONE_FOR_ALL:
            return self.in_start_order()
        return [self._records[i] for i in self._order[self._order.index(record.id) :]]

    def next_incarnation(self, child_id: str) -> int:
        """Reserve the next incarnation number for ``child_id`` (1, 2, 3, …)."""
        incarnation = self._incarnations.get(child_id, 0) + 1
        self._incarnations[child_id] = incarnation
        return incarnation

    def set_handle(self, record: ChildRecord, handle: ChildHandle | None) -> None:
        """Record the current handle (None: not running) and publish it to ``lookup``."""
        record.handle = handle
        with self._lock:
            if handle is None:
                self._live.pop(record.id, None)
            elif record.id in self._records:
                self._live[record.id] = handle

    def lookup(self, child_id: str) -> ChildHandle | None:
        """Thread-safe: the current handle of ``child_id``, or None."""
        with self._lock:
            return self._live.get(child_id)

    def abandon(self, child_id: str, handle: ChildHandle) -> None:
        """Remember a handle that could not be proven dead."""
        with self._lock:
            self._abandoned.append((child_id, handle))

    def has_abandoned(self) -> bool:
        """True once any child was abandoned (even if it died later)."""
        with self._lock:
            return bool(self._abandoned)

    def abandoned(self) -> tuple[str, ...]:
        """Thread-safe: ids of abandoned children that are still not proven dead."""
        with self._lock:
            entries = list(self._abandoned)
        return tuple(child_id for child_id, handle in entries if not handle.wait(0))

    def rows(self) -> list[ChildInfo]:
        """``which_children()`` rows."""
        return [
            ChildInfo(r.id, RESTARTING if r.restarting else r.handle, r.spec.type, r.incarnation)
            for r in self.in_start_order()
        ]

    def counts(self) -> ChildCounts:
        """``count_children()``; a child between restart attempts is not active (S24)."""
        records = self.in_start_order()
        supervisors = sum(1 for r in records if r.spec.type is ChildType.SUPERVISOR)
        active = sum(1 for r in records if r.handle is not None)
        return ChildCounts(len(records), active, supervisors, len(records) - supervisors)
