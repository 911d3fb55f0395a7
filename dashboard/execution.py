"""Execution, alerts and supervisor events as the dashboard shows them.

``order_attempts`` is read as written: the latest attempts with their status and blocked
reasons, the last 24 hours counted per status (every status of the schema is present, zero
included, so the page's layout does not jump), and the most frequent blocked reasons.
A blocked reason is a JSON string, or an object whose ``reason``/``code`` names it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

STATUSES = ("logged", "blocked", "throttled", "test_ok", "submitted", "done", "cancelled", "unknown", "error")
RECENT_ATTEMPTS = 25
TOP_REASONS = 8
RECENT_ALERTS = 20
RECENT_EVENTS = 30
DAY = timedelta(hours=24)

_REASON = ("CASE jsonb_typeof(r) WHEN 'string' THEN r #>> '{}'"
           " ELSE coalesce(r ->> 'reason', r ->> 'code', r::text) END")


def read_execution(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Mode, latest attempts, 24-hour counts per status and the top blocked reasons."""
    since = now - DAY
    attempts = []
    for (aid, created, trade_id, attempt, ident, mode, status, market, side, request, reasons, error) in conn.execute(
            "SELECT id, created_at, paper_trade_id, attempt, identifier, mode, status, market, side, request,"
            " blocked_reasons, error FROM order_attempts ORDER BY id DESC LIMIT %s", (RECENT_ATTEMPTS,)).fetchall():
        req = request if isinstance(request, dict) else {}
        attempts.append({
            "id": aid, "created_at": created, "paper_trade_id": trade_id, "attempt": attempt, "identifier": ident,
            "mode": mode, "status": status, "market": market, "side": side, "ord_type": req.get("ord_type"),
            "price": req.get("price"), "volume": req.get("volume"),
            "blocked_reasons": [_reason_text(r) for r in reasons] if isinstance(reasons, list) else [],
            "error": error,
        })
    counts = dict.fromkeys(STATUSES, 0)
    modes: dict[str, int] = {}
    for mode, status, n in conn.execute(
            "SELECT mode, status, count(*) FROM order_attempts WHERE created_at > %s GROUP BY mode, status",
            (since,)).fetchall():
        counts[status] = counts.get(status, 0) + int(n)
        modes[mode] = modes.get(mode, 0) + int(n)
    reasons = [{"reason": reason, "count": int(n)} for reason, n in conn.execute(
        f"SELECT {_REASON} AS reason, count(*) FROM order_attempts a, jsonb_array_elements(a.blocked_reasons) r"
        " WHERE a.created_at > %s AND jsonb_typeof(a.blocked_reasons) = 'array'"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s", (since, TOP_REASONS)).fetchall()]
    return {
        "mode": attempts[0]["mode"] if attempts else None,
        "modes_24h": modes,
        "attempts": attempts,
        "counts_24h": counts,
        "total_24h": sum(counts.values()),
        "blocked_reasons_24h": reasons,
    }


def read_alerts(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Recent alerts, whether each was delivered (and where), and the undelivered backlog."""
    recent = [{"id": aid, "created_at": created, "kind": kind, "level": level, "text": text,
               "delivered": sent is not None, "sent_at": sent, "channel": channel, "attempts": attempts,
               "last_error": last_error}
              for aid, created, kind, level, text, sent, channel, attempts, last_error in conn.execute(
                  "SELECT id, created_at, kind, level, text, sent_at, channel, attempts, last_error FROM alerts"
                  " ORDER BY id DESC LIMIT %s", (RECENT_ALERTS,)).fetchall()]
    row = conn.execute("SELECT count(*), min(created_at) FROM alerts WHERE sent_at IS NULL").fetchone()
    unsent, oldest = (int(row[0]), row[1]) if row else (0, None)
    return {"recent": recent, "unsent": unsent,
            "oldest_unsent_age_s": None if oldest is None else max(0.0, (now - oldest).total_seconds())}


def read_events(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The latest supervisor events, newest first."""
    return [{"id": eid, "at": at, "node": node, "supervisor": sup, "kind": kind, "child_id": child,
             "incarnation": inc, "reason": reason}
            for eid, at, node, sup, kind, child, inc, reason in conn.execute(
                "SELECT id, at, node, supervisor, kind, child_id, incarnation, reason FROM supervisor_events"
                " ORDER BY id DESC LIMIT %s", (RECENT_EVENTS,)).fetchall()]


def _reason_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("reason", "code"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return str(value)
