"""The account tables: baseline, ledger sums, balance snapshots, live positions, reconciliation reports.

See migration 0005. The **ledger** is our own record of what the exchange account should hold:

    expected[c] = account_baseline.balance[c]
                + Σ over live attempts created after the baseline's taken_at:
                    fills of a bid:  quote −funds, base +volume
                    fills of an ask: quote +funds, base −volume
                    the attempt's paid_fee (its order's total fee): quote −fee

(``KRW-BTC``: quote KRW, base BTC). Every baseline row shares one ``taken_at``. The baseline is
taken by the AccountActor at its first reconciliation, when no live attempt is unresolved, so an
attempt created before it has already moved the balances the baseline copied.

Functions take a connection or cursor and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from model.reasons import Flag
from model.reconciliation import OurOrder
from persistence import execution_state
from persistence.control import set_flag

RECONCILE = "reconcile"
"""LISTEN/NOTIFY channel: a reconciliation was requested (``system_flags['reconcile_request']``)."""

_ZERO = Decimal(0)
Conn = psycopg.Connection | psycopg.Cursor


# ---- baseline and ledger -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """The balances (``balance + locked``) our ledger starts from."""

    taken_at: datetime
    balances: dict[str, Decimal]


def baseline(conn: Conn) -> Baseline | None:
    """The baseline, or ``None`` before the first reconciliation."""
    rows = conn.execute("SELECT currency, balance, taken_at FROM account_baseline ORDER BY currency").fetchall()
    if not rows:
        return None
    return Baseline(taken_at=min(r[2] for r in rows), balances={r[0]: r[1] for r in rows})


def insert_baseline(cur: Conn, balances: Mapping[str, Decimal], taken_at: datetime) -> None:
    """Write the baseline (one row per currency). Refuses a second one (primary key)."""
    for currency, balance in sorted(balances.items()):
        cur.execute("INSERT INTO account_baseline (currency, balance, taken_at) VALUES (%s, %s, %s)",
                    (currency, balance, taken_at))


def ledger_deltas(conn: Conn, since: datetime) -> dict[str, Decimal]:
    """Σ per currency of what live attempts created after ``since`` moved (see the module docstring)."""
    deltas: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    fills = conn.execute(
        "SELECT f.market, f.side, sum(f.funds), sum(f.volume) FROM order_fills f"
        " JOIN order_attempts a ON a.id = f.attempt_id"
        " WHERE a.mode = 'live' AND a.created_at > %s GROUP BY f.market, f.side",
        (since,),
    ).fetchall()
    for market, side, funds, volume in fills:
        quote, base = _split(market)
        sign = Decimal(1) if side == "bid" else Decimal(-1)
        deltas[quote] -= sign * funds
        deltas[base] += sign * volume
    fees = conn.execute(
        "SELECT market, sum(paid_fee) FROM order_attempts WHERE mode = 'live' AND created_at > %s GROUP BY market",
        (since,),
    ).fetchall()
    for market, fee in fees:
        deltas[_split(market)[0]] -= fee
    return dict(deltas)


def expected_balances(conn: Conn) -> tuple[Baseline, dict[str, Decimal]] | None:
    """The baseline and baseline + ledger per currency; ``None`` while there is no baseline."""
    base = baseline(conn)
    if base is None:
        return None
    expected = dict(base.balances)
    for currency, delta in ledger_deltas(conn, base.taken_at).items():
        expected[currency] = expected.get(currency, _ZERO) + delta
    return base, expected


def _split(market: str) -> tuple[str, str]:
    quote, _, base = market.partition("-")
    if not base:
        raise ValueError(f"not a market id: {market!r}")
    return quote, base


# ---- our attempts as reconciliation sees them ---------------------------------------------


def unresolved_live(conn: Conn) -> tuple[OurOrder, ...]:
    """Live attempts that are not final (``submitted`` or ``unknown``), oldest first."""
    rows = conn.execute(
        "SELECT id, identifier, status, market, uuid, executed_volume, paid_fee,"
        " extract(epoch FROM clock_timestamp() - created_at) FROM order_attempts"
        " WHERE mode = 'live' AND NOT final ORDER BY id"
    ).fetchall()
    return tuple(OurOrder(attempt_id=r[0], identifier=r[1], status=r[2], market=r[3], uuid=r[4],
                          executed_volume=r[5], paid_fee=r[6], age_s=float(r[7])) for r in rows)


def known_orders(conn: Conn, uuids: Iterable[str], identifiers: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Which of these uuids and identifiers belong to one of our attempts (any mode, any status)."""
    uuids, identifiers = list(uuids), list(identifiers)
    if not uuids and not identifiers:
        return frozenset(), frozenset()
    rows = conn.execute(
        "SELECT uuid, identifier FROM order_attempts WHERE uuid = ANY(%s) OR identifier = ANY(%s)",
        (uuids, identifiers),
    ).fetchall()
    return (frozenset(r[0] for r in rows if r[0] in set(uuids)),
            frozenset(r[1] for r in rows if r[1] in set(identifiers)))


# ---- balance snapshots and positions -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """One currency as the exchange reported it."""

    currency: str
    balance: Decimal
    locked: Decimal
    avg_buy_price: Decimal
    unit_currency: str = "KRW"

    @property
    def total(self) -> Decimal:
        return self.balance + self.locked


def write_snapshot(cur: Conn, taken_at: datetime, holdings: Sequence[Holding]) -> None:
    """One ``account_snapshots`` row per currency (a second write at the same instant replaces it)."""
    for h in holdings:
        cur.execute(
            "INSERT INTO account_snapshots (taken_at, currency, balance, locked, avg_buy_price, unit_currency)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (taken_at, currency) DO UPDATE SET"
            " balance = EXCLUDED.balance, locked = EXCLUDED.locked, avg_buy_price = EXCLUDED.avg_buy_price,"
            " unit_currency = EXCLUDED.unit_currency",
            (taken_at, h.currency, h.balance, h.locked, h.avg_buy_price, h.unit_currency),
        )


def latest_snapshot(conn: Conn) -> tuple[datetime, tuple[Holding, ...]] | None:
    """The most recent snapshot, or ``None`` if none was written yet."""
    rows = conn.execute(
        "SELECT taken_at, currency, balance, locked, avg_buy_price, unit_currency FROM account_snapshots"
        " WHERE taken_at = (SELECT max(taken_at) FROM account_snapshots) ORDER BY currency"
    ).fetchall()
    if not rows:
        return None
    return rows[0][0], tuple(Holding(currency=r[1], balance=r[2], locked=r[3], avg_buy_price=r[4],
                                     unit_currency=r[5]) for r in rows)


def sync_positions(cur: Conn, holdings: Sequence[Holding], at: datetime) -> None:
    """Make ``live_positions`` the coins held now (``KRW-{coin}``); delete coins no longer held."""
    held = [h for h in holdings if h.currency != "KRW" and h.total > 0]
    for h in held:
        cur.execute(
            "INSERT INTO live_positions (market, volume, locked, avg_buy_price, updated_at) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (market) DO UPDATE SET volume = EXCLUDED.volume, locked = EXCLUDED.locked,"
            " avg_buy_price = EXCLUDED.avg_buy_price, updated_at = EXCLUDED.updated_at",
            (f"KRW-{h.currency}", h.balance, h.locked, h.avg_buy_price, at),
        )
    cur.execute("DELETE FROM live_positions WHERE NOT (market = ANY(%s))", ([f"KRW-{h.currency}" for h in held],))


# ---- reports, flags, events ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRow:
    """One ``reconciliation_reports`` row."""

    id: int
    at: datetime
    trigger: str
    ok: bool
    differences: list[dict[str, Any]]
    unknown_orders: list[dict[str, Any]]
    missing_orders: list[dict[str, Any]]
    halted: bool
    error: str | None


_REPORT_COLUMNS = "id, at, trigger, ok, differences, unknown_orders, missing_orders, halted, error"


def insert_report(cur: Conn, *, at: datetime, trigger: str, ok: bool, found: Mapping[str, list[dict[str, Any]]],
                  halted: bool = False, error: str | None = None) -> int:
    """Write one report; ``found`` is ``Report.to_json()`` (or empty for an error report)."""
    row = cur.execute(
        "INSERT INTO reconciliation_reports (at, trigger, ok, differences, unknown_orders, missing_orders, halted,"
        " error) VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s) RETURNING id",
        (at, trigger, ok, _json(found.get("differences", [])), _json(found.get("unknown_orders", [])),
         _json(found.get("missing_orders", [])), halted, error),
    ).fetchone()
    assert row is not None
    return int(row[0])


def reports(conn: Conn, *, limit: int = 100) -> list[ReportRow]:
    """The latest reports, oldest first."""
    rows = conn.execute(
        f"SELECT {_REPORT_COLUMNS} FROM (SELECT * FROM reconciliation_reports ORDER BY id DESC LIMIT %s) r"
        " ORDER BY id", (limit,),
    ).fetchall()
    return [_report(r) for r in rows]


def last_completed_report(conn: Conn) -> ReportRow | None:
    """The latest report that is not an error report."""
    row = conn.execute(
        f"SELECT {_REPORT_COLUMNS} FROM reconciliation_reports WHERE error IS NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _report(row)


def _report(r: tuple) -> ReportRow:
    return ReportRow(id=r[0], at=r[1], trigger=r[2], ok=r[3], differences=r[4], unknown_orders=r[5],
                     missing_orders=r[6], halted=r[7], error=r[8])


def flag(conn: Conn, name: str) -> Any:
    """A ``system_flags`` value (``None`` when unset)."""
    row = conn.execute("SELECT value FROM system_flags WHERE name = %s", (name,)).fetchone()
    return None if row is None else row[0]


def request_reconciliation(cur: Conn, *, command_id: int | None, by: str) -> None:
    """Ask the AccountActor for a reconciliation now (what the root does for ``ctl reconcile``)."""
    set_flag(cur, Flag.RECONCILE_REQUEST.value, {"id": command_id, "by": by}, by)
    cur.execute(f"NOTIFY {RECONCILE}")


def pending_request(conn: Conn) -> Any:
    """The pending reconciliation request, or ``None``."""
    value = flag(conn, Flag.RECONCILE_REQUEST.value)
    return value if value else None


def clear_request(cur: Conn, request: Any, *, by: str) -> bool:
    """Answer ``request``: clear the flag unless a newer request replaced it meanwhile."""
    result = cur.execute(
        "UPDATE system_flags SET value = 'false'::jsonb, updated_at = now(), updated_by = %s"
        " WHERE name = %s AND value = %s::jsonb",
        (by, Flag.RECONCILE_REQUEST.value, _json(request)),
    )
    return result.rowcount == 1


def record_event(cur: Conn, *, at: datetime, kind: str, detail: Mapping[str, Any]) -> None:
    """Append an ``execution_events`` row."""
    execution_state.event(cur, kind, detail, at=at)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
