"""A node's reporter thread: writes its actors' state to ``runtime_actors`` every second.

It reads the supervisor's child table (state, incarnation) and each running actor's own
published figures (mailbox depth, messages processed, last message time, counters). It owns its
connection; a database hiccup costs one report, never the node.
"""

from __future__ import annotations

import logging
import threading


import psycopg

from actors.board import StatusBoard
from persistence import runtime
from persistence.db import connect
from persistence.errors import DatabaseError, translated
from otp.core import Supervisor
from otp.errors import SupervisorError

log = logging.getLogger(__name__)


class StatusReporter:
    """Periodically upserts ``runtime_actors`` rows for one node."""

    def __init__(self, db_url: str, node: str, sup: Supervisor, board: StatusBoard, *, interval_s: float) -> None:
        self._url = db_url
        self._node = node
        self._sup = sup
        self._board = board
        self._interval = interval_s
        self._stop = threading.Event()
        self._last: list[runtime.ActorStatus] = []
        self._thread = threading.Thread(target=self._run, name=f"status-{node}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def report_stopped(self, state: str) -> None:
        """One last report once the node's actors are stopped (the supervisor is gone by then)."""
        rows = [runtime.ActorStatus(actor=s.actor, state=state, incarnation=s.incarnation, mailbox=0,
                                    processed=s.processed, last_message_at=s.last_message_at, counters=s.counters)
                for s in self._last]
        try:
            with connect(self._url, autocommit=True, application_name=f"{self._node}-status") as conn, translated():
                runtime.upsert_actors(conn, self._node, rows)
        except DatabaseError as exc:
            log.warning("final status report of node %s failed: %s", self._node, exc)

    def snapshot(self) -> list[runtime.ActorStatus]:
        rows = []
        for info in self._sup.which_children(timeout=5):
            if info.handle == "restarting":
                state = "restarting"
            elif info.handle is None:
                state = "down"
            else:
                state = "running"
            published = self._board.get(info.id)
            current = published is not None and published.incarnation == info.incarnation and state == "running"
            rows.append(runtime.ActorStatus(
                actor=info.id,
                state=state,
                incarnation=info.incarnation,
                mailbox=published.mailbox_depth() if current and published else 0,
                processed=published.processed() if current and published else 0,
                last_message_at=published.last_message_at() if current and published else None,
                counters=dict(published.counters) if published else {},
            ))
        self._last = rows
        return rows

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.wait(self._interval if conn is not None else 0):
            try:
                if conn is None or conn.closed:
                    conn = connect(self._url, autocommit=True, application_name=f"{self._node}-status")
                with translated():
                    runtime.upsert_actors(conn, self._node, self.snapshot())
            except SupervisorError:
                return  # the node's supervisor has terminated: nothing left to report on
            except DatabaseError as exc:
                log.warning("status report of node %s failed: %s", self._node, exc)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(self._interval)
            except Exception:  # noqa: BLE001 - a reporting bug must not take the node down; it is logged
                log.exception("status report of node %s failed", self._node)
                self._stop.wait(self._interval)
        if conn is not None:
            conn.close()


