"""A LISTEN thread that wakes a table-reading actor: on NOTIFY, and every ``interval_s`` anyway.

The notification is only a nudge — the actor always reads the table itself — so a missed
notification costs at most one interval. Wake-ups are coalesced: while one ``Wake`` is waiting
in the actor's mailbox no second one is sent (the actor calls ``ack`` when it handles it), so a
burst of thousands of NOTIFYs costs one read, not thousands.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pykka

from actors.messages import Wake
from persistence.db import connect
from persistence.errors import DatabaseError, translated

log = logging.getLogger(__name__)

LISTEN_SLICE_S = 0.2  # how long one wait for a notification lasts: bounds how long a stop takes


class Waker:
    """Owned by one actor; started in its ``setup``, stopped in its cleanup."""

    def __init__(self, db_url: str, channels: tuple[str, ...], target: pykka.ActorRef, *, interval_s: float,
                 name: str) -> None:
        self._url = db_url
        self._channels = channels
        self._target = target
        self._interval = interval_s
        self._stop = threading.Event()
        self._pending = threading.Event()
        self._lock = threading.Lock()  # the actor's own wake_again races this thread's wakes
        self._thread = threading.Thread(target=self._run, name=f"waker-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def ack(self) -> None:
        """The actor is handling a ``Wake``: the next NOTIFY may send another."""
        self._pending.clear()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=LISTEN_SLICE_S + 5)

    def wake(self, channel: str) -> bool:
        """Send a ``Wake`` unless one is already waiting in the mailbox; False if the actor is gone.

        The actor asks for its own next drain through here too (``WokenActor.wake_again``): a
        busy actor then has at most one ``Wake`` waiting, whoever asked, and a stop request
        queued behind it is handled after one more drain, not after a backlog of them.
        """
        with self._lock:
            if self._pending.is_set():
                return True
            self._pending.set()
        try:
            self._target.tell(Wake(channel=channel))
        except pykka.ActorDeadError:
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url, autocommit=True, application_name=f"{self._thread.name}") as conn:
                    with translated():
                        for channel in self._channels:
                            conn.execute(f"LISTEN {channel}")
                    self.wake("")  # whatever arrived while nobody listened
                    next_poll = time.monotonic() + self._interval
                    while not self._stop.is_set():
                        got = None
                        with translated():
                            for note in conn.notifies(timeout=LISTEN_SLICE_S, stop_after=1):
                                got = note.channel
                        if got is None and time.monotonic() < next_poll:
                            continue
                        next_poll = time.monotonic() + self._interval
                        if not self.wake(got or ""):
                            return  # the actor is gone; so is this thread's purpose
            except (DatabaseError, psycopg.Error) as exc:
                log.warning("%s lost its database connection (%s); retrying", self._thread.name, exc)
                self._stop.wait(min(self._interval, 1.0))
