"""Sections that arrive with later work: breakers, throttling, guards, account snapshots, reconciliation.

Each is declared once in ``SECTIONS`` with the tables it may live in. While none of them exists
the section says ``"available": false`` and the page writes "not available in this build". Once
a table lands, its newest rows are shown as a generic table (columns as the migration names them)
with no dashboard change needed; a dedicated view can replace the generic one later under the
same ``key``. Columns whose name suggests a credential are never read.

``section_metrics`` derives the two Prometheus figures the issue names from these tables when
they exist: breaker states and the latest reconciliation's differences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

NOT_AVAILABLE = "not available in this build"
_SECRET_WORDS = ("secret", "token", "password", "passwd", "access_key", "api_key", "credential", "jwt")
_ORDER_COLUMNS = ("updated_at", "at", "ts", "created_at", "taken_at", "id")
_CELL_CHARS = 160


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionalSection:
    """A page section backed by the first of ``tables`` that exists."""

    key: str
    title: str
    tables: tuple[str, ...]
    limit: int = 20


SECTIONS: tuple[OptionalSection, ...] = (
    OptionalSection(key="breakers", title="Circuit breakers", tables=("breaker_states", "circuit_breakers", "breakers")),
    OptionalSection(key="throttling", title="Throttling", tables=("throttle_events", "rate_limit_events", "throttling")),
    OptionalSection(key="guards", title="Guards", tables=("guard_events", "risk_guards", "guards")),
    OptionalSection(key="account", title="Account snapshots", tables=("account_snapshots",)),
    OptionalSection(key="reconciliation", title="Reconciliation",
                    tables=("reconciliations", "reconciliation_runs", "reconciliation_diffs")),
)


def existing_tables(conn: psycopg.Connection, sections: tuple[OptionalSection, ...] = SECTIONS
                    ) -> dict[str, list[str]]:
    """Table → readable column names, for the candidate tables that exist."""
    names = [t for s in sections for t in s.tables]
    cols: dict[str, list[str]] = {}
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ANY(%s) ORDER BY table_name, ordinal_position",
            (names,)).fetchall():
        if not any(word in column.lower() for word in _SECRET_WORDS):
            cols.setdefault(table, []).append(column)
    return cols


def read_sections(conn: psycopg.Connection, sections: tuple[OptionalSection, ...] = SECTIONS) -> list[dict[str, Any]]:
    """One entry per section, in page order."""
    tables = existing_tables(conn, sections)
    out = []
    for section in sections:
        table = next((t for t in section.tables if t in tables), None)
        entry: dict[str, Any] = {"key": section.key, "title": section.title, "available": table is not None}
        if table is None:
            entry["note"] = NOT_AVAILABLE
        else:
            columns, rows = _newest_rows(conn, table, tables[table], section.limit)
            entry.update(table=table, columns=columns, rows=[[_cell(v) for v in r] for r in rows])
        out.append(entry)
    return out


def section_metrics(conn: psycopg.Connection) -> dict[str, Any]:
    """``{"breakers": [(name, state)], "reconciliation_differences": n | None}`` from the tables that exist."""
    tables = existing_tables(conn)
    breakers: list[tuple[str, str]] = []
    table = next((t for t in _tables_of("breakers") if t in tables), None)
    if table is not None:
        name_col = next((c for c in ("breaker", "name", "endpoint_group", "group_name") if c in tables[table]), None)
        if name_col is not None and "state" in tables[table]:
            _cols, rows = _newest_rows(conn, table, [name_col, "state", *tables[table]], 1000)
            seen: set[str] = set()
            for row in rows:  # newest first: the first row per breaker is its current state
                name, state = str(row[0]), str(row[1])
                if name not in seen:
                    seen.add(name)
                    breakers.append((name, state))
    differences = None
    table = next((t for t in _tables_of("reconciliation") if t in tables), None)
    if table is not None:
        col = next((c for c in ("differences", "difference_count", "diff_count", "mismatches") if c in tables[table]),
                   None)
        if col is not None:
            _cols, rows = _newest_rows(conn, table, [col, *tables[table]], 1)
            if rows and isinstance(rows[0][0], int | float | Decimal):
                differences = float(rows[0][0])
    return {"breakers": breakers, "reconciliation_differences": differences,
            "available": {s.key: any(t in tables for t in s.tables) for s in SECTIONS}}


def _tables_of(key: str) -> tuple[str, ...]:
    return next(s.tables for s in SECTIONS if s.key == key)


def _newest_rows(conn: psycopg.Connection, table: str, columns: list[str], limit: int
                 ) -> tuple[list[str], list[tuple[Any, ...]]]:
    order = next((c for c in _ORDER_COLUMNS if c in columns), None)
    unique = list(dict.fromkeys(columns))
    query = sql.SQL("SELECT {cols} FROM {table}{order} LIMIT {limit}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in unique),
        table=sql.Identifier(table),
        order=sql.SQL(" ORDER BY {} DESC").format(sql.Identifier(order)) if order else sql.SQL(""),
        limit=sql.Literal(limit),
    )
    return unique, conn.execute(query).fetchall()


def _cell(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | datetime):
        return value
    if isinstance(value, Decimal):
        return float(value)
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"
