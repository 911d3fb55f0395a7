"""``/api/status`` and ``/api/series``: the page's JSON, built from one read-only snapshot each.

The status document is a set of independent top-level sections, so later work adds a key (or an
entry to ``sections``: guards, breakers, throttling, account, reconciliation; see
``dashboard.sections``) without changing the others::

    {"generated_at", "database": {"ok", "error", "clock_skew_s"}, "health", "system": {"root", "nodes"},
     "events", "feed", "portfolio", "execution", "sections": [...], "alerts"}

Times are ISO 8601 UTC; every age (``*_age_s``, ``uptime_s``, ``lag_s``) is computed here with
the dashboard's clock, so the browser's clock never matters. Heartbeats are stamped with the
database server's ``now()``, so ``database.clock_skew_s`` says how far that clock is from ours
(the page warns past two seconds: staleness would be misjudged by that much).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dashboard.execution import read_alerts, read_events, read_execution
from dashboard.health import evaluate
from dashboard.market import read_feed, read_portfolio, read_series
from dashboard.rates import RateTracker
from dashboard.sections import read_sections
from dashboard.tree import read_tree
from model.clock import Clock


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """When the dashboard calls something stale."""

    heartbeat_stale_s: float = 5.0  # root heartbeat (written every 0.2 s) and node reports (every 1 s)
    feed_stale_s: float = 30.0  # no bar stored for this long: the feed is stale

    def __post_init__(self) -> None:
        if self.heartbeat_stale_s <= 0 or self.feed_stale_s <= 0:
            raise ValueError("staleness limits must be > 0 s")


def build_health(conn: psycopg.Connection, clock: Clock, limits: Limits) -> dict[str, Any]:
    """Only what ``/healthz`` needs."""
    now = clock.now()
    tree = read_tree(conn, now, stale_s=limits.heartbeat_stale_s)
    actors = [a | {"node": n["node"]} for n in tree["nodes"] for a in n["actors"]]
    feed = read_feed(conn, now, actors, None, stale_s=limits.feed_stale_s)
    return evaluate(tree, feed)


def build_status(conn: psycopg.Connection, clock: Clock, limits: Limits, rates: RateTracker) -> dict[str, Any]:
    """The whole status document."""
    now = clock.now()
    tree = read_tree(conn, now, stale_s=limits.heartbeat_stale_s)
    actors = [a | {"node": n["node"]} for n in tree["nodes"] for a in n["actors"]]
    feed = read_feed(conn, now, actors, rates, stale_s=limits.feed_stale_s)
    return {
        "generated_at": now,
        "database": {"ok": True, "error": None, "clock_skew_s": clock_skew(conn, now)},
        "health": evaluate(tree, feed),
        "system": tree,
        "events": read_events(conn),
        "feed": feed,
        "portfolio": read_portfolio(conn),
        "execution": read_execution(conn, now),
        "sections": read_sections(conn, now, actors),
        "alerts": read_alerts(conn, now),
    }


def clock_skew(conn: psycopg.Connection, now: datetime) -> float:
    """Seconds the database server's clock is ahead of ours (heartbeats carry its ``now()``)."""
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    return (row[0] - now).total_seconds() if row else 0.0


def build_series(conn: psycopg.Connection, clock: Clock, market: str | None, limit: int) -> dict[str, Any]:
    """Bars, fills and the equity curve for the charts."""
    return {"generated_at": clock.now(), **read_series(conn, market, limit)}

