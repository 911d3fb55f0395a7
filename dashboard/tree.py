"""The supervisor tree as the dashboard shows it: root, nodes and actors, each with a derived state.

Three sources, because no single one tells the truth while something is failing:

- the system lock (``lock_holder``, scoped to this database): is any root alive at all;
- ``runtime_nodes`` / ``runtime_actors``: the root's heartbeat rows for itself and its nodes
  (every 0.2 s) and each node's reports of its actors (every second);
- ``supervisor_events``: exits and restarts the moment they happen. While the root restarts a
  node it does not rewrite that node's row (the row still says ``running`` with the dead pid),
  so a node whose latest event is an exit or a restart attempt is shown ``down``, with the exit
  reason, whatever its row says.

Derived states: root ``running`` | ``unresponsive`` (lock held, heartbeat stale) | ``stopped``
(no lock: no system runs); node ``running`` | ``down`` | ``unresponsive`` (alive per the root
but its actors stopped reporting) | ``unknown`` (the root is silent, or stopped refreshing this
node's row) | ``stopped``; actor ``running`` | ``down`` | ``restarting`` | ``stale`` (its node
stopped reporting) | ``stopped``. Every derived state comes with ``why``, a sentence for the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from persistence import runtime

DOWN_EVENTS = frozenset({"exited", "restarting", "start_failed", "abandoned"})
EVENT_LIMIT = 5_000


@dataclass(frozen=True, slots=True, kw_only=True)
class _Lifecycle:
    """What the events of the current run say about one child."""

    order: int
    last_kind: str
    last_at: datetime
    last_incarnation: int | None
    last_reason: str | None
    exit_reason: str | None
    exit_at: datetime | None
    exit_incarnation: int | None
    restarted_at: datetime | None


def read_tree(conn: psycopg.Connection, now: datetime, *, stale_s: float) -> dict[str, Any]:
    """``{"root": {...}, "nodes": [{..., "actors": [...]}]}`` (JSON-ready)."""
    lock_pid = lock_holder(conn)
    rows = runtime.read_nodes(conn)
    actor_rows = runtime.read_actors(conn)
    root_row = next((r for r in rows if r["node"] == "root"), None)
    life = _lifecycles(conn, root_row["started_at"] if root_row else None)
    root = _root(root_row, lock_pid, now, stale_s)
    nodes = []
    for row in sorted((r for r in rows if r["node"] != "root"),
                      key=lambda r: (life.get(("root", r["node"]), _NEVER).order, r["node"])):
        mine = [a for a in actor_rows if a["node"] == row["node"]]
        nodes.append(_node(row, mine, root, life, now, stale_s))
    return {"root": root, "nodes": nodes}


def lock_holder(conn: psycopg.Connection) -> int | None:
    """Backend pid holding the system lock *on this database*, or None.

    Like ``persistence.runtime.system_lock_holder``, but scoped to the current database:
    ``pg_locks`` lists the advisory locks of every database on the server, so a system running
    on another database of the same server must not make this one look alive.
    """
    row = conn.execute(
        "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
        (runtime.SYSTEM_LOCK_KEY,),
    ).fetchone()
    return int(row[0]) if row else None


def _root(row: dict[str, Any] | None, lock_pid: int | None, now: datetime, stale_s: float) -> dict[str, Any]:
    age = _age(now, row["heartbeat_at"]) if row else None
    if lock_pid is None:
        state = "stopped"
        why = "no root holds the system lock: the system is not running"
        if row is not None and row["state"] not in {"running", "stopped"}:
            why += f" (it last said {row['state']})"
    elif row is None or age is None or age > stale_s:
        state = "unresponsive"
        why = "the root holds the system lock but has not written its heartbeat" + (
            f" for {age:.1f} s" if age is not None else " yet")
    else:
        state, why = "running", ""
    detail = row["detail"] if row else {}
    return {
        "state": state,
        "why": why,
        "pid": row["pid"] if row else None,
        "lock_held": lock_pid is not None,
        "mode": detail.get("mode", "") if isinstance(detail, dict) else "",
        "started_at": row["started_at"] if row else None,
        "uptime_s": _age(now, row["started_at"]) if row and state != "stopped" else None,
        "heartbeat_age_s": age,
    }


def _node(row: dict[str, Any], actor_rows: list[dict[str, Any]], root: dict[str, Any],
          life: dict[tuple[str, str], _Lifecycle], now: datetime, stale_s: float) -> dict[str, Any]:
    name = row["node"]
    events = life.get(("root", name))
    heartbeat_age = _age(now, row["heartbeat_at"])
    reports = [a["updated_at"] for a in actor_rows if a["updated_at"] is not None]
    report_age = _age(now, max(reports)) if reports else None
    incarnation, restarts, started_at, pid = row["incarnation"], row["restarts"], row["started_at"], row["pid"]
    if (events is not None and events.last_kind == "started" and events.last_incarnation is not None
            and events.last_incarnation > incarnation):
        # restarted a moment ago: the root has not rewritten the row yet (it was busy restarting)
        restarts += events.last_incarnation - incarnation
        incarnation, started_at, pid = events.last_incarnation, events.last_at, None
    state, why = "running", ""
    if root["state"] == "stopped":
        state, why = "stopped", "the system is not running"
    elif events is not None and events.last_kind in DOWN_EVENTS:
        state = "down"
        why = f"{events.last_kind.replace('_', ' ')}: {events.last_reason or 'no reason given'}"
        if events.last_kind == "restarting":
            why = f"restarting after {events.last_reason or events.exit_reason or 'an exit'}"
    elif row["state"] != "running":
        state, why = ("down", f"the root reports it {row['state']}")
    elif root["state"] == "unresponsive":
        state, why = "unknown", "the root is not writing heartbeats: this node's state is unknown"
    elif heartbeat_age is None or heartbeat_age > stale_s:
        state, why = "unknown", f"the root has not updated this node's row for {heartbeat_age or 0:.1f} s"
    else:
        started_age = _age(now, started_at)
        if started_age is not None and started_age > stale_s and (report_age is None or report_age > stale_s):
            state = "unresponsive"
            why = "alive per the root, but " + (
                "its actors have never reported" if report_age is None
                else f"its actors last reported {report_age:.1f} s ago")
    last_exit = None
    if events is not None and events.exit_at is not None:
        down_for = (events.restarted_at - events.exit_at).total_seconds() if events.restarted_at else None
        last_exit = {"reason": events.exit_reason, "at": events.exit_at, "incarnation": events.exit_incarnation,
                     "restarted_at": events.restarted_at, "down_for_s": down_for, "age_s": _age(now, events.exit_at)}
    actors = sorted(actor_rows, key=lambda a: (life.get((name, a["actor"]), _NEVER).order, a["actor"]))
    return {
        "node": name,
        "state": state,
        "why": why,
        "pid": pid if state in {"running", "unresponsive", "unknown"} else None,
        "incarnation": incarnation,
        "restarts": restarts,
        "started_at": started_at,
        "uptime_s": _age(now, started_at) if state == "running" else None,
        "heartbeat_age_s": heartbeat_age,
        "report_age_s": report_age,
        "last_exit": last_exit,
        "actors": [_actor(a, state, life.get((name, a["actor"])), now, stale_s) for a in actors],
    }


def _actor(row: dict[str, Any], node_state: str, events: _Lifecycle | None, now: datetime,
           stale_s: float) -> dict[str, Any]:
    report_age = _age(now, row["updated_at"])
    state, why = row["state"], ""
    if node_state in {"stopped", "down"}:
        state, why = ("stopped" if node_state == "stopped" else "down"), f"its node is {node_state}"
    elif events is not None and events.last_kind in DOWN_EVENTS and row["state"] == "running" and (
            events.last_at > row["updated_at"]):
        state, why = "down", f"{events.last_kind.replace('_', ' ')}: {events.last_reason or 'no reason given'}"
    elif report_age is not None and report_age > stale_s:
        state, why = "stale", f"no report from its node for {report_age:.1f} s"
    counters = row["counters"] if isinstance(row["counters"], dict) else {}
    return {
        "actor": row["actor"],
        "state": state,
        "why": why,
        "incarnation": row["incarnation"],
        "restarts": max(0, int(row["incarnation"]) - 1),
        "mailbox": row["mailbox"],
        "processed": row["processed"],
        "last_message_at": row["last_message_at"],
        "last_message_age_s": _age(now, row["last_message_at"]),
        "reported_at": row["updated_at"],
        "report_age_s": report_age,
        "counters": counters,
    }


_NEVER = _Lifecycle(order=1 << 62, last_kind="", last_at=datetime.min, last_incarnation=None, last_reason=None,
                    exit_reason=None,
                    exit_at=None, exit_incarnation=None, restarted_at=None)


def _lifecycles(conn: psycopg.Connection, since: datetime | None) -> dict[tuple[str, str], _Lifecycle]:
    """Per (supervisor, child): start order and the latest exit/restart of the current run."""
    if since is None:
        return {}
    rows = conn.execute(
        "SELECT * FROM (SELECT id, at, supervisor, kind, child_id, incarnation, reason FROM supervisor_events"
        " WHERE child_id IS NOT NULL AND at >= %s ORDER BY id DESC LIMIT %s) recent ORDER BY id",
        (since, EVENT_LIMIT),
    ).fetchall()
    out: dict[tuple[str, str], _Lifecycle] = {}
    for event_id, at, supervisor, kind, child, incarnation, reason in rows:
        key = (supervisor, child)
        prev = out.get(key)
        order = prev.order if prev is not None else event_id
        exit_reason, exit_at, exit_inc, restarted = (
            (prev.exit_reason, prev.exit_at, prev.exit_incarnation, prev.restarted_at) if prev else (None, None, None, None))
        if kind == "exited" and not _is_orderly(reason):
            exit_reason, exit_at, exit_inc, restarted = reason, at, incarnation, None
        elif kind == "start_failed":
            exit_reason, exit_at, exit_inc, restarted = reason or "start failed", at, incarnation, None
        elif kind == "started" and exit_at is not None and restarted is None:
            restarted = at
        out[key] = _Lifecycle(order=order, last_kind=kind, last_at=at, last_incarnation=incarnation,
                              last_reason=reason, exit_reason=exit_reason, exit_at=exit_at, exit_incarnation=exit_inc,
                              restarted_at=restarted)
    return out


def _is_orderly(reason: str | None) -> bool:
    """``normal`` and ``shutdown`` exits are not outages (``otp.exits``)."""
    return reason is not None and reason.startswith(("shutdown", "normal"))


def _age(now: datetime, then: datetime | None) -> float | None:
    if then is None:
        return None
    return max(0.0, (now - then).total_seconds())
