"""Execution's guards as the dashboard shows them: breakers, mode and switches, throttling.

- **Breakers** are the execution actor's own report (``runtime_actors.counters['breakers']``:
  endpoint group → ``closed`` | ``open`` | ``half-open``), written every second by its node. Once
  the actor is not running they are its last word, shown as such (``current`` false) and left out
  of ``/metrics``: a restarted client starts with closed breakers.
- **Guards**: the effective mode against the requested one and why it was downgraded (the same
  report), the operator switches (``system_flags``), the latest audited ``execution_events``, and
  the blocked reasons of the latest attempts, each classed as a mode downgrade (the attempt still
  ran, in a lower mode) or a stop (nothing was sent), as ``model.reasons`` defines them.
- **Throttling**: attempts whose status is ``throttled`` or that carry the ``THROTTLED`` reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from dashboard.scrub import detail_text, scrub
from model.reasons import Flag, Reason, Status

RECENT_EVENTS = 20
REASON_ATTEMPTS = 500  # the blocked reasons of this many latest attempts
TOP_REASONS = 10
THROTTLE_WINDOW = timedelta(hours=24)
RECENT_THROTTLED = 20
SWITCHES = (Flag.PAUSED, Flag.KILLSWITCH, Flag.RECONCILE_HALT, Flag.MODE)
DOWNGRADES = frozenset({Reason.KEYS_MISSING, Reason.TEST_DISABLED, Reason.AUTO_TEST_DISABLED,
                        Reason.PAPER_PROFILE_MISMATCH, Reason.LIVE_DISABLED, Reason.LIVE_UNCONFIRMED,
                        Reason.READ_ONLY})
BREAKER_STATES = ("closed", "half-open", "open")
_REASONS = frozenset(r.value for r in Reason)

# A blocked reason is a JSON string, or an object whose ``reason``/``code`` names it.
_REASON = ("CASE jsonb_typeof(r) WHEN 'string' THEN r #>> '{}'"
           " ELSE coalesce(r ->> 'reason', r ->> 'code', r::text) END")
_THROTTLED = ("(status = %(status)s OR blocked_reasons @> %(as_text)s::jsonb"
              " OR blocked_reasons @> %(as_reason)s::jsonb OR blocked_reasons @> %(as_code)s::jsonb)")
_THROTTLED_ARGS = {"status": Status.THROTTLED.value, "as_text": f'["{Reason.THROTTLED.value}"]',
                   "as_reason": f'[{{"reason": "{Reason.THROTTLED.value}"}}]',
                   "as_code": f'[{{"code": "{Reason.THROTTLED.value}"}}]'}


def find_actor(actors: list[dict[str, Any]], name: str = "execution") -> dict[str, Any] | None:
    """The actor ``name`` of the tree (the one on the ``execution`` node first)."""
    found = [a for a in actors if a["actor"] == name]
    return next((a for a in found if a.get("node") == "execution"), found[0] if found else None)


def current_breakers(actors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``[(group, state)]`` while the execution actor runs; empty otherwise (for ``/metrics``)."""
    view = read_breakers(actors)
    return [(b["group"], b["state"]) for b in view["breakers"]] if view["current"] else []


def read_breakers(actors: list[dict[str, Any]]) -> dict[str, Any]:
    """The breaker of each endpoint group as the execution actor last reported it."""
    actor = find_actor(actors)
    if actor is None:
        return {"actor_state": None, "current": False, "report_age_s": None, "breakers": [], "open": [],
                "note": "the execution actor has not reported yet"}
    raw = actor["counters"].get("breakers")
    breakers = [{"group": str(g), "state": str(s)} for g, s in sorted(raw.items())] if isinstance(raw, dict) else []
    current = actor["state"] == "running"
    if not breakers:
        note = "no breaker reported: execution has no exchange client (no API keys), so it calls no endpoint"
    elif not current:
        note = f"as last reported by the execution actor, which is {actor['state']} now: may be out of date"
    else:
        note = ""
    return {"actor_state": actor["state"], "current": current, "report_age_s": actor["report_age_s"],
            "breakers": breakers, "open": [b["group"] for b in breakers if b["state"] != "closed"], "note": note}


def read_guards(conn: psycopg.Connection, actors: list[dict[str, Any]],
                switches: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Effective and requested mode, the switches (``read_switches``), the latest execution events, blocked
    reasons."""
    actor = find_actor(actors)
    counters = actor["counters"] if actor else {}
    reasons = counters.get("mode_reasons")
    reasons = [str(r) for r in reasons] if isinstance(reasons, list) else []
    mode, requested = counters.get("mode"), counters.get("requested_mode")
    return {
        "actor_state": actor["state"] if actor else None,
        "mode": mode,
        "requested_mode": requested,
        "mode_reasons": reasons,
        "downgraded": bool(reasons) or (requested is not None and mode != requested),
        "switches": read_switches(conn) if switches is None else switches,
        "events": read_execution_events(conn),
        **_blocked_reasons(conn),
    }


def read_switches(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The execution switches in ``SWITCHES`` order, set or not."""
    rows = {name: (value, at, by) for name, value, at, by in conn.execute(
        "SELECT name, value, updated_at, updated_by FROM system_flags WHERE name = ANY(%s)",
        ([f.value for f in SWITCHES],)).fetchall()}
    out = []
    for flag in SWITCHES:
        value, at, by = rows.get(flag.value, (None, None, None))
        out.append({"name": flag.value, "set": flag.value in rows, "active": _active(flag, value),
                    "value": scrub(value), "text": _switch_text(flag, value), "updated_at": at, "updated_by": by})
    return out


def read_execution_events(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The latest ``execution_events``, newest first, details scrubbed and summarised."""
    return [{"id": eid, "at": at, "kind": kind, "detail": scrub(detail), "text": detail_text(detail)}
            for eid, at, kind, detail in conn.execute(
                "SELECT id, at, kind, detail FROM execution_events ORDER BY id DESC LIMIT %s",
                (RECENT_EVENTS,)).fetchall()]


def read_throttling(conn: psycopg.Connection, now: datetime) -> dict[str, Any]:
    """Throttled attempts of the last 24 hours: counts, the latest ones; "no throttling" when none."""
    since = now - THROTTLE_WINDOW
    args = _THROTTLED_ARGS | {"since": since, "hour": now - timedelta(hours=1), "limit": RECENT_THROTTLED}
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE created_at > %(hour)s), count(*), max(created_at) FROM order_attempts"
        f" WHERE created_at > %(since)s AND {_THROTTLED}", args).fetchone()
    last_hour, last_day, last_at = (int(row[0]), int(row[1]), row[2]) if row else (0, 0, None)
    recent = [{"id": aid, "created_at": created, "mode": mode, "status": status, "market": market, "side": side,
               "identifier": ident, "error": error,
               "blocked_reasons": [_reason_text(r) for r in reasons] if isinstance(reasons, list) else []}
              for aid, created, mode, status, market, side, ident, reasons, error in conn.execute(
                  f"SELECT id, created_at, mode, status, market, side, identifier, blocked_reasons, error"
                  f" FROM order_attempts WHERE created_at > %(since)s AND {_THROTTLED} ORDER BY id DESC"
                  f" LIMIT %(limit)s", args).fetchall()]
    return {"window_s": THROTTLE_WINDOW.total_seconds(), "last_hour": last_hour, "last_24h": last_day,
            "last_at": last_at, "recent": recent,
            "note": "" if last_day else "no throttling in the last 24 h"}


def _blocked_reasons(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT count(*) FROM (SELECT 1 FROM order_attempts ORDER BY id DESC LIMIT %s) a",
                       (REASON_ATTEMPTS,)).fetchone()
    considered = int(row[0]) if row else 0
    reasons = [{"reason": reason, "count": int(n), "kind": _reason_kind(reason)} for reason, n in conn.execute(
        f"SELECT {_REASON} AS reason, count(*) FROM (SELECT blocked_reasons FROM order_attempts"
        " ORDER BY id DESC LIMIT %s) a, jsonb_array_elements(a.blocked_reasons) r"
        " WHERE jsonb_typeof(a.blocked_reasons) = 'array' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s",
        (REASON_ATTEMPTS, TOP_REASONS)).fetchall()]
    return {"attempts_considered": considered, "blocked_reasons": reasons}


def _reason_kind(reason: str) -> str:
    """``downgrade`` (the attempt ran in a lower mode), ``stop`` (nothing sent) or ``other``."""
    if reason not in _REASONS:
        return "other"
    return "downgrade" if Reason(reason) in DOWNGRADES else "stop"


def _reason_text(value: object) -> str:
    if isinstance(value, dict):
        named = value.get("reason", value.get("code"))
        return str(named) if named is not None else detail_text(value)
    return str(value)


def _active(flag: Flag, value: object) -> bool:
    """Whether the switch holds entries back (``mode`` never does: it is a request)."""
    if flag is Flag.MODE:
        return False
    return value is True or isinstance(value, dict)


def _switch_text(flag: Flag, value: object) -> str:
    if flag is Flag.MODE:
        return f"{value} requested at run time" if isinstance(value, str) else "not set: the configured TRADE_MODE"
    if flag is Flag.RECONCILE_HALT:
        if not isinstance(value, dict) and value is not True:
            return "off: entries are not halted"
        detail = value if isinstance(value, dict) else {}
        report = f" by report #{detail['report']}" if detail.get("report") is not None else ""
        why = f": {detail['why']}" if detail.get("why") else ""
        return f"HALTED{report}{why}"
    return "ON" if value is True else "off"
