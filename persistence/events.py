"""``supervisor_events``: the durable log of every start, exit, restart and escalation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg


def record(conn: psycopg.Connection, *, node: str, supervisor: str, kind: str, child_id: str | None,
           incarnation: int | None, reason: str | None, at: datetime, detail: dict[str, Any] | None = None) -> None:
    """Append one event (autocommit connection expected, or the caller commits)."""
    conn.execute(
        "INSERT INTO supervisor_events (at, node, supervisor, kind, child_id, incarnation, reason, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        (at, node, supervisor, kind, child_id, incarnation, reason, orjson.dumps(detail or {}).decode()),
    )
