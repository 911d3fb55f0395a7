"""``runtime_nodes`` / ``runtime_actors`` and the one-system-per-database lock.

The root holds a session-level advisory lock on a connection of its own for its whole life:
a second system on the same database is refused, and ``ctl`` knows the system is running exactly
when that lock is held (PostgreSQL releases it the moment the root's connection dies, whatever
killed it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

SYSTEM_LOCK_KEY = 0x7570_5379_73  # "upSys"


def try_lock_system(conn: psycopg.Connection) -> bool:
    """Take the system lock on ``conn`` (autocommit); False if another system holds it."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (SYSTEM_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def system_lock_holder(conn: psycopg.Connection) -> int | None:
    """Backend pid of the connection that holds the system lock, or None if no system runs."""
    row = conn.execute(
        "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
        (SYSTEM_LOCK_KEY,),
    ).fetchone()
    return int(row[0]) if row else None


def upsert_node(conn: psycopg.Connection, *, node: str, pid: int | None, state: str, incarnation: int,
                restarts: int, started_at: datetime | None, detail: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO runtime_nodes (node, pid, state, incarnation, restarts, started_at, heartbeat_at, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, now(), %s::jsonb)"
        " ON CONFLICT (node) DO UPDATE SET pid = EXCLUDED.pid, state = EXCLUDED.state,"
        " incarnation = EXCLUDED.incarnation, restarts = EXCLUDED.restarts, started_at = EXCLUDED.started_at,"
        " heartbeat_at = now(), detail = EXCLUDED.detail",
        (node, pid, state, incarnation, restarts, started_at, orjson.dumps(detail or {}).decode()),
    )


def clear(conn: psycopg.Connection) -> None:
    """Forget the previous run's runtime rows (the root does this once it holds the lock)."""
    conn.execute("DELETE FROM runtime_actors")
    conn.execute("DELETE FROM runtime_nodes")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorStatus:
    """One actor's state as its node reports it."""

    actor: str
    state: str
    incarnation: int
    mailbox: int
    processed: int
    last_message_at: datetime | None
    counters: dict[str, Any]


def upsert_actors(conn: psycopg.Connection, node: str, actors: list[ActorStatus]) -> None:
    conn.cursor().executemany(
        "INSERT INTO runtime_actors (node, actor, state, incarnation, mailbox, processed, last_message_at, counters,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, now())"
        " ON CONFLICT (node, actor) DO UPDATE SET state = EXCLUDED.state, incarnation = EXCLUDED.incarnation,"
        " mailbox = EXCLUDED.mailbox, processed = EXCLUDED.processed, last_message_at = EXCLUDED.last_message_at,"
        " counters = EXCLUDED.counters, updated_at = now()",
        [(node, a.actor, a.state, a.incarnation, a.mailbox, a.processed, a.last_message_at,
          orjson.dumps(a.counters).decode()) for a in actors],
    )


def read_nodes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT node, pid, state, incarnation, restarts, started_at, heartbeat_at, detail FROM runtime_nodes"
        " ORDER BY CASE node WHEN 'root' THEN 0 ELSE 1 END, started_at NULLS LAST, node"
    )
    cols = [c.name for c in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def read_actors(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT node, actor, state, incarnation, mailbox, processed, last_message_at, counters, updated_at"
        " FROM runtime_actors ORDER BY node, actor"
    )
    cols = [c.name for c in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
