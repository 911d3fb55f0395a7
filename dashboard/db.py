"""The dashboard's own database connections: a few, read-only, short statement timeouts.

The dashboard never shares a connection with the system it watches, so it keeps answering when
nodes are down, and it cannot write: every transaction it opens is ``READ ONLY``. Each request
takes one connection for one ``REPEATABLE READ`` snapshot (every figure on a page comes from the
same instant) and gives it back; a connection that failed is closed, never reused, and the next
request opens a fresh one, so a database outage ends by itself once the server is back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from persistence.db import connect
from persistence.errors import DatabaseError, DatabaseUnavailable, translated

STATEMENT_TIMEOUT_MS = 5_000
LOCK_TIMEOUT_MS = 2_000
WAIT_FOR_CONNECTION_S = 10.0


class ReadOnlyPool:
    """At most ``size`` connections, opened on demand, each used by one request at a time."""

    def __init__(self, url: str, *, size: int = 4, application_name: str = "dashboard") -> None:
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self._url = url
        self._name = application_name
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection] = []
        self._closed = False

    @contextmanager
    def snapshot(self) -> Iterator[psycopg.Connection]:
        """A connection inside a read-only repeatable-read transaction (errors as ``DatabaseError``)."""
        if not self._slots.acquire(timeout=WAIT_FOR_CONNECTION_S):
            raise DatabaseUnavailable("every dashboard database connection is busy")
        conn: psycopg.Connection | None = None
        try:
            conn = self._take()
            with translated(), conn.transaction():
                yield conn
        except DatabaseError:
            if conn is not None:
                conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                self._give_back(conn)
            self._slots.release()

    def close(self) -> None:
        """Close every idle connection; connections in use are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> psycopg.Connection:
        with self._lock:
            if self._closed:
                raise DatabaseUnavailable("the dashboard is stopping")
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        conn = connect(self._url, autocommit=True, application_name=self._name)
        try:
            with translated():
                conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
                conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        except DatabaseError:
            conn.close()
            raise
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        return conn

    def _give_back(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return
        conn.close()
