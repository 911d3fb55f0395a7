"""Rows as the running system writes them, with explicit times, for the dashboard's builder tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
NODES = ("ops", "execution", "market")
ACTORS = {"ops": ("notifier",), "execution": ("execution", "account"), "market": ("paper", "strategy", "bar", "feed")}


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def node(conn: psycopg.Connection, name: str, *, state: str = "running", pid: int | None = 4242, incarnation: int = 1,
         restarts: int = 0, started: float = 60.0, heartbeat: float = 0.1, detail: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO runtime_nodes (node, pid, state, incarnation, restarts, started_at, heartbeat_at, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (node) DO UPDATE SET pid = EXCLUDED.pid,"
        " state = EXCLUDED.state, incarnation = EXCLUDED.incarnation, restarts = EXCLUDED.restarts,"
        " started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, detail = EXCLUDED.detail",
        (name, pid, state, incarnation, restarts, ago(started), ago(heartbeat), orjson.dumps(detail or {}).decode()))


def actor(conn: psycopg.Connection, node_name: str, name: str, *, state: str = "running", incarnation: int = 1,
          mailbox: int = 0, processed: int = 10, last_message: float | None = 0.5, reported: float = 0.5,
          counters: dict[str, Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO runtime_actors (node, actor, state, incarnation, mailbox, processed, last_message_at, counters,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (node, actor) DO UPDATE SET"
        " state = EXCLUDED.state, incarnation = EXCLUDED.incarnation, mailbox = EXCLUDED.mailbox,"
        " processed = EXCLUDED.processed, last_message_at = EXCLUDED.last_message_at, counters = EXCLUDED.counters,"
        " updated_at = EXCLUDED.updated_at",
        (node_name, name, state, incarnation, mailbox, processed, None if last_message is None else ago(last_message),
         orjson.dumps(counters or {}).decode(), ago(reported)))


def event(conn: psycopg.Connection, *, at: float, supervisor: str, kind: str, child: str | None,
          incarnation: int | None = 1, reason: str | None = None) -> None:
    conn.execute(
        "INSERT INTO supervisor_events (at, node, supervisor, kind, child_id, incarnation, reason)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)", (ago(at), supervisor, supervisor, kind, child, incarnation, reason))


def running_system(conn: psycopg.Connection, *, feed_counters: dict[str, Any] | None = None) -> None:
    """A root and three nodes that started 60 s ago and report fresh figures; events in start order."""
    node(conn, "root", pid=100, started=61, detail={"mode": "sandbox replay of candles at 60x; paper trading"})
    t = 60.5
    for i, name in enumerate(NODES):
        for a in ACTORS[name]:
            event(conn, at=t, supervisor=name, kind="started", child=a)
            t -= 0.01
        event(conn, at=t, supervisor="root", kind="started", child=name)
        t -= 0.01
        node(conn, name, pid=200 + i, started=60 - i * 0.1)
        for a in ACTORS[name]:
            counters = {"feed": feed_counters or {"trades": 480, "offset": 479, "finished": False},
                        "bar": {"bars": 470, "trades": 480, "late_trades": 3, "skipped": 0}}.get(a, {})
            actor(conn, name, a, counters=counters)


def bar(conn: psycopg.Connection, market: str, ts: datetime, close: float, *, late: int = 0,
        source: str = "candles-derived") -> None:
    price = Decimal(str(close))
    conn.execute(
        "INSERT INTO market_1s (market, ts, open, high, low, close, volume, trade_count, late_trades, source)"
        " VALUES (%s, %s, %s, %s, %s, %s, 1, 1, %s, %s)", (market, ts, price, price, price, price, late, source))


def offset(conn: psycopg.Connection, feed: str, market: str, applied: int, *, stored: float) -> None:
    conn.execute(
        "INSERT INTO feed_offsets (feed, market, applied_offset, updated_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (feed, market) DO UPDATE SET applied_offset = EXCLUDED.applied_offset,"
        " updated_at = EXCLUDED.updated_at", (feed, market, applied, ago(stored)))


def paper_trade(conn: psycopg.Connection, market: str, side: str, price: float, bar_ts: datetime, *,
                pnl: float = 0.0, volume: str = "0.001") -> int:
    p, v = Decimal(str(price)), Decimal(volume)
    row = conn.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason, bar_ts,"
        " source) VALUES (%s, %s, %s, %s, %s, %s, %s, 'test', %s, 'candles-derived') RETURNING id",
        (market, side, p, v, p * v, p * v * Decimal("0.0005"), Decimal(str(pnl)), bar_ts)).fetchone()
    assert row is not None
    return int(row[0])


def attempt(conn: psycopg.Connection, trade_id: int, *, status: str = "logged", mode: str = "shadow",
            reasons: list[Any] | None = None, created: float = 1.0, error: str | None = None) -> None:
    conn.execute(
        "INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request,"
        " blocked_reasons, error, created_at) VALUES (%s, 1, %s, %s, %s, 'KRW-BTC', 'bid', %s::jsonb, %s::jsonb, %s, %s)",
        (trade_id, f"sbx-{trade_id}-1", mode, status,
         orjson.dumps({"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "100000"}).decode(),
         orjson.dumps(reasons or []).decode(), error, ago(created)))


def alert(conn: psycopg.Connection, text: str, *, sent: bool, created: float = 1.0, level: str = "info",
          last_error: str | None = None) -> None:
    conn.execute(
        "INSERT INTO alerts (created_at, kind, level, text, sent_at, channel, attempts, last_error)"
        " VALUES (%s, 'test', %s, %s, %s, %s, %s, %s)",
        (ago(created), level, text, ago(created - 0.1) if sent else None, "log" if sent else None,
         1 if sent or last_error else 0, last_error))


# --- execution and the account (migration 0005) -----------------------------------------------

When = float | datetime  # seconds before NOW, or a time


def when(at: When) -> datetime:
    return at if isinstance(at, datetime) else ago(at)


def flag(conn: psycopg.Connection, name: str, value: Any, *, by: str = "test", at: When = 1.0) -> None:
    conn.execute(
        "INSERT INTO system_flags (name, value, updated_at, updated_by) VALUES (%s, %s::jsonb, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at,"
        " updated_by = EXCLUDED.updated_by", (name, orjson.dumps(value).decode(), when(at), by))


def execution_event(conn: psycopg.Connection, kind: str, detail: dict[str, Any], *, at: When = 1.0) -> int:
    row = conn.execute("INSERT INTO execution_events (at, kind, detail) VALUES (%s, %s, %s::jsonb) RETURNING id",
                       (when(at), kind, orjson.dumps(detail).decode())).fetchone()
    assert row is not None
    return int(row[0])


def snapshot(conn: psycopg.Connection, taken: When, holdings: dict[str, tuple[str, str, str]]) -> None:
    """One account snapshot taken at ``taken``: currency → (balance, locked, avg_buy_price)."""
    for currency, (balance, locked, avg) in holdings.items():
        conn.execute(
            "INSERT INTO account_snapshots (taken_at, currency, balance, locked, avg_buy_price, unit_currency)"
            " VALUES (%s, %s, %s, %s, %s, 'KRW')", (when(taken), currency, Decimal(balance), Decimal(locked),
                                                    Decimal(avg)))


def live_position(conn: psycopg.Connection, market: str, volume: str, avg: str, *, locked: str = "0",
                  updated: When = 1.0) -> None:
    conn.execute("INSERT INTO live_positions (market, volume, locked, avg_buy_price, updated_at)"
                 " VALUES (%s, %s, %s, %s, %s)",
                 (market, Decimal(volume), Decimal(locked), Decimal(avg), when(updated)))


def difference(currency: str, expected: str, actual: str, value_krw: str | None) -> dict[str, Any]:
    """A difference as ``execution.reconcile.Difference.to_json`` writes it."""
    return {"currency": currency, "expected": expected, "actual": actual,
            "delta": str(Decimal(actual) - Decimal(expected)), "value_krw": value_krw}


def report(conn: psycopg.Connection, *, at: When, trigger: str = "periodic", differences: list[Any] | None = None,
           unknown: int = 0, missing: int = 0, halted: bool = False, error: str | None = None) -> int:
    found = differences or []
    unknown_orders = [{"uuid": f"u-{i}", "identifier": None, "market": "KRW-BTC", "side": "bid", "ord_type": "limit",
                       "state": "wait"} for i in range(unknown)]
    missing_orders = [{"attempt_id": i + 1, "identifier": f"sbx-{i}-1", "status": "unknown", "market": "KRW-BTC",
                       "uuid": None} for i in range(missing)]
    row = conn.execute(
        "INSERT INTO reconciliation_reports (at, trigger, ok, differences, unknown_orders, missing_orders, halted,"
        " error) VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s) RETURNING id",
        (when(at), trigger, not (found or unknown or missing or error), orjson.dumps(found).decode(),
         orjson.dumps(unknown_orders).decode(), orjson.dumps(missing_orders).decode(), halted, error)).fetchone()
    assert row is not None
    return int(row[0])
