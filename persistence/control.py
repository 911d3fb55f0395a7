"""``control_commands`` and ``system_flags``: the operator's commands, durable and audited.

A command is a row: who issued it, when, what, and — once handled — the result and who handled
it. Issuers (``ctl``, the Telegram command actor) insert and NOTIFY; the root handles pending
commands in id order (``FOR UPDATE SKIP LOCKED``, so two handlers never take the same one) and
writes the outcome in the same transaction as its effect. A command nobody handled within its
deadline is marked ``expired`` by the issuer, so the audit trail never shows a command hanging.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from persistence.notify import CONTROL


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One control command row."""

    id: int
    issued_at: datetime
    issuer: str
    command: str
    args: dict[str, Any]
    status: str
    result: str | None


def issue(conn: psycopg.Connection, *, issuer: str, command: str, args: dict[str, Any] | None = None) -> int:
    """Insert a pending command and wake the handler (autocommit connection expected)."""
    row = conn.execute(
        "INSERT INTO control_commands (issuer, command, args) VALUES (%s, %s, %s::jsonb) RETURNING id",
        (issuer, command, orjson.dumps(args or {}).decode()),
    ).fetchone()
    conn.execute(f"NOTIFY {CONTROL}")
    assert row is not None
    return int(row[0])


def get(conn: psycopg.Connection, command_id: int) -> Command | None:
    row = conn.execute(
        "SELECT id, issued_at, issuer, command, args, status, result FROM control_commands WHERE id = %s",
        (command_id,),
    ).fetchone()
    return None if row is None else _command(row)


def expire(conn: psycopg.Connection, command_id: int, why: str) -> bool:
    """Mark a still-pending command expired; False if it was handled meanwhile."""
    result = conn.execute(
        "UPDATE control_commands SET status = 'expired', result = %s, handled_at = now(), handled_by = 'issuer'"
        " WHERE id = %s AND status = 'pending'",
        (why, command_id),
    )
    return result.rowcount == 1


def take_pending(cur: psycopg.Cursor) -> Command | None:
    """Lock the oldest pending command for handling (inside the handler's transaction)."""
    row = cur.execute(
        "SELECT id, issued_at, issuer, command, args, status, result FROM control_commands"
        " WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    ).fetchone()
    return None if row is None else _command(row)


def finish(cur: psycopg.Cursor, command_id: int, *, ok: bool, result: str, handled_by: str) -> None:
    cur.execute(
        "UPDATE control_commands SET status = %s, result = %s, handled_at = now(), handled_by = %s WHERE id = %s",
        ("done" if ok else "failed", result, handled_by, command_id),
    )


def set_flag(cur: psycopg.Cursor | psycopg.Connection, name: str, value: Any, by: str) -> None:
    cur.execute(
        "INSERT INTO system_flags (name, value, updated_by) VALUES (%s, %s::jsonb, %s)"
        " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by",
        (name, orjson.dumps(value).decode(), by),
    )


FLAGS = "SELECT name, value FROM system_flags"


def flags(conn: psycopg.Connection) -> dict[str, Any]:
    return {name: value for name, value in conn.execute(FLAGS).fetchall()}


def _command(row: tuple) -> Command:
    return Command(id=row[0], issued_at=row[1], issuer=row[2], command=row[3], args=row[4], status=row[5],
                   result=row[6])
