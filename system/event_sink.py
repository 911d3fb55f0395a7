"""Where supervisor events go: the ``supervisor_events`` table (the supervisor logs them itself).

The sink owns one autocommit connection (opened lazily, re-opened after a failure). A database
that is down must not stop supervision: the event is then logged with the failure, and the sink
tries again with the next event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from persistence import events
from persistence.db import connect
from persistence.errors import DatabaseError, translated
from otp.events import SupervisorEvent

log = logging.getLogger("otp.events")

EventHook = Callable[[psycopg.Connection, SupervisorEvent], None]


class EventSink:
    """Log and persist supervisor events of one node (thread-safe)."""

    def __init__(self, db_url: str, *, node: str, hook: EventHook | None = None) -> None:
        self._url = db_url
        self._node = node
        self._hook = hook
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def record(self, event: SupervisorEvent) -> None:
        """Persist one event (the supervisor itself logs it)."""
        with self._lock:
            try:
                conn = self._connection()
                with translated():
                    events.record(conn, node=self._node, supervisor=event.supervisor, kind=event.kind.value,
                                  child_id=event.child_id, incarnation=event.incarnation,
                                  reason=None if event.reason is None else str(event.reason), at=event.at)
                    if self._hook is not None:
                        self._hook(conn, event)
            except DatabaseError as exc:
                log.error("could not persist supervisor event %s of %s: %s", event.kind, event.child_id, exc)
                self._reset()

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url, autocommit=True, application_name=f"{self._node}-events")
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None
