"""``control_commands`` and ``system_flags``: the operator's commands, durable and audited.

A command is a row: who issued it, when, what, until when it may be carried out, and — once
handled — the result and who handled it. Issuers (``ctl``, the Telegram command actor) insert and
NOTIFY; the root handles pending commands in id order (``FOR UPDATE SKIP LOCKED``, so two handlers
never take the same one) and writes the outcome in the same transaction as its effect.

Deadlines: every command carries ``expires_at`` = issue time + the issuer's acknowledgement
timeout, both on the database clock (``issue``). :func:`take_pending` takes a command only while
``clock_timestamp() < expires_at`` — the database's clock, in the transaction that carries the
command out — so neither a slow or frozen root nor an issuer and a root that disagree about the
time can make a stale command run; :func:`expire_overdue` marks overdue ones ``expired``. Once a
handler holds a command's row lock the decision to carry it out is made: an issuer expiring it
at that moment (:func:`expire`) waits for the lock and then finds it handled, and says so. An
issuer that gives up (timeout, Ctrl-C) marks its command ``expired`` itself, so the audit trail
never shows a command hanging. Rows from before deadlines existed have ``expires_at`` NULL and are
never pending (migration 0008).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from persistence.notify import CONTROL

MAX_TIMEOUT_S = 3600.0
"""The longest acknowledgement timeout (and so deadline) an issuer may give a command."""

_COLUMNS = "id, issued_at, issuer, command, args, status, result, expires_at"


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
    expires_at: datetime | None  # None only for rows handled before deadlines existed


def issue(conn: psycopg.Connection, *, issuer: str, command: str, timeout_s: float,
          args: dict[str, Any] | None = None) -> int:
    """Insert a pending command that may be carried out for ``timeout_s`` seconds, and wake the handler.

    The deadline is the database's ``now()`` + ``timeout_s`` (autocommit connection expected, or
    the caller's transaction: then it counts from that transaction's start).
    """
    if not (0 < timeout_s <= MAX_TIMEOUT_S):  # also refuses NaN
        raise ValueError(f"a control command's timeout must be > 0 and <= {MAX_TIMEOUT_S:g} s, got {timeout_s!r}")
    row = conn.execute(
        "INSERT INTO control_commands (issuer, command, args, expires_at)"
        " VALUES (%s, %s, %s::jsonb, now() + make_interval(secs => %s)) RETURNING id",
        (issuer, command, orjson.dumps(args or {}).decode(), timeout_s),
    ).fetchone()
    conn.execute(f"NOTIFY {CONTROL}")
    assert row is not None
    return int(row[0])


def get(conn: psycopg.Connection, command_id: int) -> Command | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM control_commands WHERE id = %s", (command_id,)).fetchone()
    return None if row is None else _command(row)


def expire(conn: psycopg.Connection, command_id: int, why: str) -> bool:
    """Mark a still-pending command expired; False if it was handled meanwhile."""
    result = conn.execute(
        "UPDATE control_commands SET status = 'expired', result = %s, handled_at = now(), handled_by = 'issuer'"
        " WHERE id = %s AND status = 'pending'",
        (why, command_id),
    )
    return result.rowcount == 1


OVERDUE = "not carried out: its deadline passed before the system took it"


def expire_overdue(cur: psycopg.Cursor, *, handled_by: str) -> list[Command]:
    """Mark every pending command past its deadline ``expired`` (the handler's transaction); those."""
    rows = cur.execute(
        "UPDATE control_commands SET status = 'expired', result = %s, handled_at = now(), handled_by = %s"
        " WHERE id IN (SELECT id FROM control_commands WHERE status = 'pending'"
        " AND (expires_at IS NULL OR expires_at <= clock_timestamp()) FOR UPDATE SKIP LOCKED)"
        f" RETURNING {_COLUMNS}",
        (OVERDUE, handled_by),
    ).fetchall()
    return sorted((_command(row) for row in rows), key=lambda c: c.id)


def take_pending(cur: psycopg.Cursor) -> Command | None:
    """Lock the oldest pending command still within its deadline (inside the handler's transaction).

    The deadline is compared with the database's clock here, under the row lock the handler keeps
    until it has written the outcome: a command taken is carried out, and one past its deadline
    never is (a NULL deadline never qualifies).
    """
    row = cur.execute(
        f"SELECT {_COLUMNS} FROM control_commands"
        " WHERE status = 'pending' AND expires_at > clock_timestamp() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
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


def discard_runtime_mode(cur: psycopg.Cursor | psycopg.Connection) -> tuple[Any, str, datetime] | None:
    """Drop the execution mode requested at run time (``ctl mode`` / Telegram ``/mode``), at system
    start: the configured ``TRADE_MODE`` governs every start, and a runtime mode lasts only until
    the next one. Returns what was discarded (value, who set it, when), or ``None``."""
    row = cur.execute("DELETE FROM system_flags WHERE name = 'mode' RETURNING value, updated_by, updated_at"
                      ).fetchone()
    return None if row is None else (row[0], str(row[1]), row[2])


FLAGS = "SELECT name, value FROM system_flags"


def flags(conn: psycopg.Connection) -> dict[str, Any]:
    return {name: value for name, value in conn.execute(FLAGS).fetchall()}


def _command(row: tuple) -> Command:
    return Command(id=row[0], issued_at=row[1], issuer=row[2], command=row[3], args=row[4], status=row[5],
                   result=row[6], expires_at=row[7])
