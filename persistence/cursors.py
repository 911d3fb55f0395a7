"""``consumer_cursors``: a table consumer's read position, moved with its effects."""

from __future__ import annotations

import psycopg


def get(conn: psycopg.Connection, consumer: str) -> int:
    """The consumer's position (0 before it has read anything)."""
    row = conn.execute("SELECT position FROM consumer_cursors WHERE consumer = %s", (consumer,)).fetchone()
    return int(row[0]) if row else 0


ADVANCE = ("INSERT INTO consumer_cursors (consumer, position) VALUES (%s, %s)"
           " ON CONFLICT (consumer) DO UPDATE SET position = GREATEST(consumer_cursors.position, EXCLUDED.position),"
           " updated_at = now()")
"""Move ``consumer`` (first parameter) to ``position`` (second), never back."""


def advance(cur: psycopg.Cursor | psycopg.Connection, consumer: str, position: int) -> None:
    """Move the position forward (never back) inside the caller's transaction (or, on an autocommit
    connection, as a transaction of its own)."""
    cur.execute(ADVANCE, (consumer, position))
