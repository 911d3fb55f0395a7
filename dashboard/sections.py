"""The execution and account sections of the page: breakers, guards, throttling, account, reconciliation.

Each is declared once in ``SECTIONS`` (page order) with the tables it reads beyond the first
migrations, and read by a dedicated view (``dashboard.guards``, ``dashboard.account``). Each entry
of the status document's ``sections`` list is ``{"key", "title", "available", ...}`` followed by
the view's own fields::

    breakers        {"actor_state", "current", "report_age_s", "breakers": [{"group", "state"}], "open", "note"}
    guards          {"actor_state", "mode", "requested_mode", "mode_reasons", "downgraded",
                     "switches": [{"name", "set", "active", "value", "text", "updated_at", "updated_by"}],
                     "events": [{"id", "at", "kind", "detail", "text"}],
                     "attempts_considered", "blocked_reasons": [{"reason", "count", "kind"}]}
    throttling      {"window_s", "last_hour", "last_24h", "last_at", "recent": [attempt], "note"}
    account         {"taken_at", "age_s", "balances": [...], "positions": [...], "actor_state", "polls",
                     "last_error", "note"}
    reconciliation  {"latest", "reports": [...], "differences", "halt", "note"}
    safety          {"pending": [...], "review": [...], "note"}   (dashboard.safety)

The product always migrates, so every table is there; a database that lacks one (an older build)
still gets a page: the section says ``"available": false`` and "not available in this build".
Free-form values (event details, flag values, differences) pass through ``dashboard.scrub``, so a
credential-like key is never shown.

``section_metrics`` gives ``/metrics`` the breaker states (while the execution actor runs) and the
latest completed reconciliation's differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dashboard.account import latest_differences, read_account, read_reconciliation
from dashboard.safety import read_safety
from dashboard.guards import (
    current_breakers,
    find_actor,
    read_breakers,
    read_guards,
    read_switches,
    read_throttling,
)
from model.reasons import Flag

NOT_AVAILABLE = "not available in this build"


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """A page section and the tables its view reads (beyond those every build has)."""

    key: str
    title: str
    tables: tuple[str, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section(key="safety", title="Exits pending · needs review", tables=("pending_exits",)),
    Section(key="guards", title="Guards", tables=("execution_events",)),
    Section(key="breakers", title="Circuit breakers"),
    Section(key="throttling", title="Throttling"),
    Section(key="account", title="Account", tables=("account_snapshots", "live_positions")),
    Section(key="reconciliation", title="Reconciliation", tables=("reconciliation_reports",)),
)


def available(conn: psycopg.Connection, sections: tuple[Section, ...] = SECTIONS) -> dict[str, bool]:
    """Section key → whether every table it reads exists."""
    names = sorted({t for s in sections for t in s.tables})
    found = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_name = ANY(%s)", (names,)).fetchall()}
    return {s.key: all(t in found for t in s.tables) for s in sections}


def read_sections(conn: psycopg.Connection, now: datetime, actors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per section, in page order (``actors``: the tree's actors, each with its ``node``)."""
    ok = available(conn)
    switches = read_switches(conn)
    halt = next(s for s in switches if s["name"] == Flag.RECONCILE_HALT.value)
    views = {
        "guards": lambda: read_guards(conn, actors, switches),
        "breakers": lambda: read_breakers(actors),
        "throttling": lambda: read_throttling(conn, now),
        "account": lambda: read_account(conn, now, find_actor(actors, "account")),
        "reconciliation": lambda: read_reconciliation(conn, halt),
        "safety": lambda: read_safety(conn, now),
    }
    out = []
    for section in SECTIONS:
        entry: dict[str, Any] = {"key": section.key, "title": section.title, "available": ok[section.key]}
        entry.update(views[section.key]() if ok[section.key] else {"note": NOT_AVAILABLE})
        out.append(entry)
    return out


def section_metrics(conn: psycopg.Connection, actors: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"breakers": [(group, state)], "reconciliation_differences": n | None, "available": {key: bool}}``."""
    ok = available(conn)
    return {"breakers": current_breakers(actors),
            "reconciliation_differences": latest_differences(conn) if ok["reconciliation"] else None,
            "available": ok}
