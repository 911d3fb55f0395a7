"""``/metrics``: Prometheus text format, read from the database on every scrape.

A custom ``prometheus_client`` collector registered in the dashboard's own ``CollectorRegistry``
(never the global one): each scrape takes one read-only snapshot and yields fresh metric
families, so nothing is cached between scrapes and several dashboards in one process (tests)
never collide. When the database cannot be read the scrape still succeeds with
``upbit_dashboard_database_up 0`` and nothing else, which is what an alert rule wants.

Counters come from the actors' own counters (``runtime_actors.counters``): they restart from
zero when the actor restarts, which Prometheus' ``rate()`` handles as a counter reset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.db import ReadOnlyPool
from dashboard.execution import read_alerts
from dashboard.guards import BREAKER_STATES
from dashboard.health import evaluate
from dashboard.market import read_feed, read_portfolio
from dashboard.sections import section_metrics
from dashboard.status import Limits, clock_skew
from dashboard.tree import read_tree
from persistence.errors import DatabaseError

log = logging.getLogger(__name__)

P = "upbit_"


class DashboardCollector(Collector):
    """Yields the system's metrics from one database snapshot per scrape."""

    def __init__(self, pool: ReadOnlyPool, now: Callable[[], datetime], limits: Limits) -> None:
        self._pool = pool
        self._now = now
        self._limits = limits

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(P + "dashboard_database_up", "1 when the dashboard could read the database")
        try:
            with self._pool.snapshot() as conn:
                families = list(_families(conn, self._now(), self._limits))
        except DatabaseError as exc:
            log.warning("metrics scrape could not read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _families(conn: psycopg.Connection, now: datetime, limits: Limits) -> Iterator[Metric]:
    tree = read_tree(conn, now, stale_s=limits.heartbeat_stale_s)
    actors = [a | {"node": n["node"]} for n in tree["nodes"] for a in n["actors"]]
    feed = read_feed(conn, now, actors, None, stale_s=limits.feed_stale_s)
    health = evaluate(tree, feed)
    root = tree["root"]

    yield _gauge("system_running", "1 when a root holds the system lock and writes heartbeats",
                 [([], root["state"] == "running")])
    yield _gauge("healthy", "1 when /healthz answers 200", [([], health["ok"])])
    yield _gauge("root_heartbeat_age_seconds", "seconds since the root's last heartbeat",
                 [([], root["heartbeat_age_s"])] if root["heartbeat_age_s"] is not None else [])
    yield _gauge("node_up", "1 when the node runs (derived from heartbeats, reports and events)",
                 [([n["node"]], n["state"] == "running") for n in tree["nodes"]], ["node"])
    yield _gauge("node_incarnation", "the node's current incarnation", [([n["node"]], n["incarnation"]) for n in tree["nodes"]],
                 ["node"])
    restarts = [(["root", n["node"]], n["restarts"]) for n in tree["nodes"]]
    restarts += [([a["node"], a["actor"]], a["restarts"]) for a in actors]
    yield _counter("child_restarts", "restarts of each supervised child since its supervisor started", restarts,
                   ["supervisor", "child"])
    yield _gauge("actor_up", "1 when the actor runs", [([a["node"], a["actor"]], a["state"] == "running") for a in actors],
                 ["node", "actor"])
    yield _gauge("actor_mailbox_depth", "messages waiting in the actor's mailbox",
                 [([a["node"], a["actor"]], a["mailbox"]) for a in actors], ["node", "actor"])
    yield _counter("actor_messages_processed", "messages the actor's current incarnation processed",
                   [([a["node"], a["actor"]], a["processed"]) for a in actors], ["node", "actor"])
    yield _gauge("actor_last_message_age_seconds", "seconds since the actor last processed a message",
                 [([a["node"], a["actor"]], a["last_message_age_s"]) for a in actors
                  if a["last_message_age_s"] is not None], ["node", "actor"])

    yield from _feed_families(feed)
    yield from _money_families(conn)
    yield from _execution_families(conn, now)
    yield from _section_families(conn, actors)


def _feed_families(feed: dict[str, Any]) -> Iterator[Metric]:
    yield _counter("feed_trades", "trades the feed delivered (feed actor counter)",
                   [([], feed["trades_total"])] if feed["trades_total"] is not None else [])
    yield _counter("bar_trades", "trades the bar actor aggregated (bar actor counter)",
                   [([], feed["bar_trades"])] if feed["bar_trades"] is not None else [])
    yield _counter("bars", "1-second bars closed and stored (bar actor counter)",
                   [([], feed["bars_total"])] if feed["bars_total"] is not None else [])
    yield _counter("late_trades", "trades folded into an already closed bar (bar actor counter)",
                   [([], feed["late_trades"])] if feed["late_trades"] is not None else [])
    yield _gauge("feed_lag_seconds", "now minus the close of the market's newest bar (a replay: the recording's age)",
                 [([m["market"]], m["lag_s"]) for m in feed["markets"] if m["lag_s"] is not None], ["market"])
    yield _gauge("feed_last_write_age_seconds", "seconds since the feed last stored bars (live and replay)",
                 [([], feed["last_write_age_s"])] if feed["last_write_age_s"] is not None else [])
    yield _gauge("feed_replay_finished", "1 when a replay reached the end of its recording",
                 [([], feed["state"] == "finished")] if feed["kind"] == "replay" else [])


def _money_families(conn: psycopg.Connection) -> Iterator[Metric]:
    book = read_portfolio(conn)
    yield _counter("paper_trades", "paper fills recorded", [([], book["paper_trades"])])
    yield _gauge("paper_realised_pnl_krw", "realised paper PnL, net of fees", [([], book["realised"])])
    yield _gauge("paper_unrealised_pnl_krw", "unrealised paper PnL of open positions, net of the entry fee",
                 [([], book["unrealised"])])
    yield _gauge("paper_fees_krw", "paper fees paid", [([], book["fees"])])


def _execution_families(conn: psycopg.Connection, now: datetime) -> Iterator[Metric]:
    rows = conn.execute("SELECT mode, status, count(*) FROM order_attempts GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    yield _gauge("order_attempts", "order attempts in the database by mode and status",
                 [([mode, status], n) for mode, status, n in rows], ["mode", "status"])
    backlog = read_alerts(conn, now)
    yield _gauge("alerts_unsent", "alerts not yet delivered (the outbox backlog)", [([], backlog["unsent"])])
    oldest = backlog["oldest_unsent_age_s"]
    yield _gauge("alerts_oldest_unsent_age_seconds", "age of the oldest undelivered alert",
                 [([], oldest)] if oldest is not None else [])
    yield _gauge("database_clock_skew_seconds", "how far the database server's clock is ahead of the dashboard's",
                 [([], clock_skew(conn, now))])


def _section_families(conn: psycopg.Connection, actors: list[dict[str, Any]]) -> Iterator[Metric]:
    found = section_metrics(conn, actors)
    yield _gauge("dashboard_section_available", "1 when every table the section reads exists in this build",
                 [([key], ok) for key, ok in found["available"].items()], ["section"])
    states = list(BREAKER_STATES)
    for _group, state in found["breakers"]:
        if state not in states:
            states.append(state)
    yield _gauge("breaker_state", "1 for the current state of each exchange endpoint group's circuit breaker, 0 for"
                 " the others (as the execution actor reports them; absent while it does not run)",
                 [([group, s], s == state) for group, state in found["breakers"] for s in states], ["breaker", "state"])
    diff = found["reconciliation_differences"]
    yield _gauge("reconciliation_differences", "balance differences found by the latest completed reconciliation",
                 [([], diff)] if diff is not None else [])


def _gauge(name: str, doc: str, samples: list[tuple[list[str], Any]], labels: list[str] | None = None) -> Metric:
    family = GaugeMetricFamily(P + name, doc, labels=labels or [])
    for values, value in samples:
        family.add_metric(values, float(value))
    return family


def _counter(name: str, doc: str, samples: list[tuple[list[str], Any]], labels: list[str] | None = None) -> Metric:
    family = CounterMetricFamily(P + name, doc, labels=labels or [])
    for values, value in samples:
        family.add_metric(values, float(value))
    return family
