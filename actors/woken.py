"""``WokenActor``: a NodeActor that owns a database connection and is woken to read a table.

Subclasses name their LISTEN channels and implement ``drain()`` — read whatever is new, act, and
commit. ``drain`` runs on every ``Wake``: sent by the ``Waker`` thread on NOTIFY, every
``poll_s`` anyway, and once right after start (so rows written while the actor was down are
picked up at once). A drain that leaves work behind asks for the next one with
``wake_again``, coalesced with the waker's, so a busy actor's mailbox never fills with wakes.
"""

from __future__ import annotations

from typing import Any

import psycopg

from actors.messages import Wake
from actors.node_actor import NodeActor
from actors.waker import Waker
from persistence.db import connect


class WokenActor(NodeActor):
    """Connection + waker lifecycle shared by the table-reading actors."""

    channels: tuple[str, ...] = ()
    autocommit = False

    def __init__(self, *, db_url: str, poll_s: float = 1.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.db_url = db_url
        self.poll_s = poll_s
        self.conn: psycopg.Connection | None = None
        self.waker: Waker | None = None

    def setup(self) -> None:
        super().setup()
        name = f"{self.context.supervisor_name}-{self.context.child_id}"
        self.conn = connect(self.db_url, autocommit=self.autocommit, application_name=name)
        self.prepare(self.conn)
        self.waker = Waker(self.db_url, self.channels, self.actor_ref, interval_s=self.poll_s,
                           name=self.context.child_id)
        self.waker.start()

    def prepare(self, conn: psycopg.Connection) -> None:
        """Read start-up state (cursor, …) once the connection is open."""

    def drain(self, conn: psycopg.Connection) -> None:
        """Process everything new in the table."""
        raise NotImplementedError

    def wake_again(self) -> None:
        """Drain once more soon: one ``Wake`` behind whatever is queued (a stop request included),
        never a second one while one is waiting (see ``Waker.wake``)."""
        if self.waker is not None:
            self.waker.wake("more")
        else:  # not set up (yet): nothing to coalesce with
            self.actor_ref.tell(Wake(channel="more"))

    def handle(self, message: Any) -> None:
        if isinstance(message, Wake):
            if self.waker is not None:
                self.waker.ack()
            assert self.conn is not None
            self.drain(self.conn)
        else:
            super().handle(message)

    def cleanup(self) -> None:
        if self.waker is not None:
            self.waker.stop()
            self.waker = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
