"""The exchange account as the dashboard shows it: balances, live positions, reconciliation reports.

Everything here is what the AccountActor wrote (migration 0005, ``persistence.account``):

- **Balances**: the latest ``account_snapshots`` row of each currency. A snapshot is written on
  every change and at least every ten minutes, one row per currency held, so a currency missing
  from the newest snapshot is no longer held; it is still listed (``in_latest`` false) when it was
  held within ``SNAPSHOT_LOOKBACK`` of the newest snapshot. Only that range of the table is read
  (the primary key starts with ``taken_at``), so the page's cost does not grow with history.
- **Positions**: ``live_positions``, the coins held now, with their cost at the average buy price.
- **Reconciliation**: the latest ``reconciliation_reports`` rows, each with its differences (and a
  one-line text of them), how many orders the exchange has that we do not know, and how many of
  ours it does not know. ``upbit_reconciliation_differences`` is the number of differences of the
  latest *completed* report: an error report compared nothing, so it says nothing about them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg

from dashboard.scrub import detail_text, scrub

SNAPSHOT_LOOKBACK = timedelta(days=7)
RECENT_REPORTS = 20
DIFFERENCES_SHOWN = 10


def read_account(conn: psycopg.Connection, now: datetime, actor: dict[str, Any] | None) -> dict[str, Any]:
    """Latest balance of each currency, the live positions, and what the account actor says."""
    balances = [{"currency": currency, "taken_at": taken, "balance": balance, "locked": locked,
                 "avg_buy_price": avg, "unit_currency": unit, "in_latest": bool(latest)}
                for currency, taken, balance, locked, avg, unit, latest in conn.execute(
                    "WITH newest AS (SELECT max(taken_at) AS at FROM account_snapshots)"
                    " SELECT DISTINCT ON (s.currency) s.currency, s.taken_at, s.balance, s.locked, s.avg_buy_price,"
                    "  s.unit_currency, s.taken_at = newest.at FROM account_snapshots s, newest"
                    " WHERE s.taken_at >= newest.at - %s ORDER BY s.currency, s.taken_at DESC",
                    (SNAPSHOT_LOOKBACK,)).fetchall()]
    positions = [{"market": market, "volume": volume, "locked": locked, "avg_buy_price": avg,
                  "cost_krw": (volume + locked) * avg, "updated_at": updated}
                 for market, volume, locked, avg, updated in conn.execute(
                     "SELECT market, volume, locked, avg_buy_price, updated_at FROM live_positions"
                     " ORDER BY market").fetchall()]
    taken_at = max((b["taken_at"] for b in balances), default=None)
    counters = actor["counters"] if actor else {}
    reason = str(counters.get("reason") or "")
    if balances:
        note = ""
    elif reason:
        note = reason
    else:
        note = "no balance snapshot yet: the account actor writes one after its first poll"
    return {
        "taken_at": taken_at,
        "age_s": None if taken_at is None else max(0.0, (now - taken_at).total_seconds()),
        "balances": balances,
        "positions": positions,
        "actor_state": actor["state"] if actor else None,
        "polls": counters.get("polls"),
        "last_error": counters.get("last_error"),
        "note": note,
    }


def read_reconciliation(conn: psycopg.Connection, halt: dict[str, Any] | None) -> dict[str, Any]:
    """The latest reports, newest first, and the halt switch (``guards.read_switches`` row)."""
    reports = []
    for rid, at, trigger, ok, differences, unknown, missing, halted, error in conn.execute(
            "SELECT id, at, trigger, ok, differences, jsonb_array_length(unknown_orders),"
            " jsonb_array_length(missing_orders), halted, error FROM reconciliation_reports"
            " ORDER BY id DESC LIMIT %s", (RECENT_REPORTS,)).fetchall():
        found = differences if isinstance(differences, list) else []
        shown = found[:DIFFERENCES_SHOWN]
        more = f"; +{len(found) - len(shown)} more" if len(found) > len(shown) else ""
        reports.append({
            "id": rid, "at": at, "trigger": trigger, "ok": ok, "halted": halted, "error": error,
            "differences_count": len(found),
            "differences": [scrub(d) for d in shown],
            "differences_text": "; ".join(_difference_text(d) for d in shown) + more,
            "unknown_orders": int(unknown or 0),
            "missing_orders": int(missing or 0),
        })
    return {"latest": reports[0] if reports else None, "reports": reports,
            "differences": latest_differences(conn), "halt": halt,
            "note": "" if reports else "no reconciliation yet"}


def latest_differences(conn: psycopg.Connection) -> int | None:
    """Differences found by the latest completed reconciliation (``None`` before the first)."""
    row = conn.execute(
        "SELECT jsonb_array_length(differences) FROM reconciliation_reports"
        " WHERE error IS NULL AND jsonb_typeof(differences) = 'array' ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else int(row[0])


def _difference_text(item: object) -> str:
    """``BTC: expected 0.5, exchange has 0.4 (Δ -0.1, 4,000,000 KRW)`` from ``Difference.to_json``."""
    if not isinstance(item, dict) or "currency" not in item:
        return detail_text(item)
    value = _number(item.get("value_krw"))
    worth = "no price to value it" if value is None else f"{value:,.0f} KRW"
    return (f"{item['currency']}: expected {item.get('expected')}, exchange has {item.get('actual')}"
            f" (Δ {item.get('delta')}, {worth})")


def _number(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
