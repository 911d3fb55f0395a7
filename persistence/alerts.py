"""``alerts``: the alert outbox. Persisted first, marked sent only once delivered."""

from __future__ import annotations


import psycopg

from model.alerts import LEVELS, Alert
from persistence.notify import ALERTS



def enqueue(cur: psycopg.Cursor | psycopg.Connection, *, kind: str, level: str, text: str) -> None:
    """Add an alert (in the caller's transaction) and wake the notifier."""
    if level not in LEVELS:
        raise ValueError(f"alert level must be one of {LEVELS}, got {level!r}")
    cur.execute("INSERT INTO alerts (kind, level, text) VALUES (%s, %s, %s)", (kind, level, text))
    cur.execute(f"NOTIFY {ALERTS}")


def enqueue_many(cur: psycopg.Cursor, alerts: list[tuple[str, str, str]]) -> None:
    """Add several ``(kind, level, text)`` alerts in one round trip (caller's transaction), one NOTIFY."""
    if not alerts:
        return
    for _kind, level, _text in alerts:
        if level not in LEVELS:
            raise ValueError(f"alert level must be one of {LEVELS}, got {level!r}")
    if len(alerts) == 1:
        cur.execute("INSERT INTO alerts (kind, level, text) VALUES (%s, %s, %s)", alerts[0])
    else:
        cur.executemany("INSERT INTO alerts (kind, level, text) VALUES (%s, %s, %s)", alerts)
    cur.execute(f"NOTIFY {ALERTS}")


def unsent(conn: psycopg.Connection, limit: int = 100) -> list[Alert]:
    """Undelivered alerts, oldest first."""
    rows = conn.execute(
        "SELECT id, created_at, kind, level, text, attempts FROM alerts WHERE sent_at IS NULL ORDER BY id LIMIT %s",
        (limit,),
    ).fetchall()
    return [Alert(id=r[0], created_at=r[1], kind=r[2], level=r[3], text=r[4], attempts=r[5]) for r in rows]


def mark_sent(cur: psycopg.Cursor | psycopg.Connection, alert_id: int, channel: str) -> bool:
    """Mark delivered; False if it already was (then it must not be counted twice)."""
    result = cur.execute(
        "UPDATE alerts SET sent_at = now(), channel = %s, attempts = attempts + 1 WHERE id = %s AND sent_at IS NULL",
        (channel, alert_id),
    )
    return result.rowcount == 1


def mark_sent_many(cur: psycopg.Cursor | psycopg.Connection, alert_ids: tuple[int, ...], channel: str) -> int:
    """Mark several delivered at once; how many were still unsent."""
    result = cur.execute(
        "UPDATE alerts SET sent_at = now(), channel = %s, attempts = attempts + 1"
        " WHERE id = ANY(%s) AND sent_at IS NULL",
        (channel, list(alert_ids)),
    )
    return result.rowcount


def record_failure(cur: psycopg.Cursor | psycopg.Connection, alert_ids: tuple[int, ...], error: str) -> None:
    """Count a failed delivery attempt (the alerts stay unsent)."""
    cur.execute("UPDATE alerts SET attempts = attempts + 1, last_error = %s WHERE id = ANY(%s) AND sent_at IS NULL",
                (error[:500], list(alert_ids)))


def count_unsent(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM alerts WHERE sent_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def raise_alert(db_url: str, *, kind: str, level: str, text: str) -> None:
    """Enqueue one alert on a connection of its own (for rare events outside any transaction)."""
    from persistence.db import connect
    from persistence.errors import translated

    with connect(db_url, autocommit=True, application_name="alert") as conn, translated():
        enqueue(conn, kind=kind, level=level, text=text)
