"""A fresh database per backtest, on the configured server, and what the run left in it.

The server is ``--database-url`` if given, else ``DATABASE_URL``, else the embedded PostgreSQL
(``EMBEDDED_PG_DIR``, started or reused). On it each backtest creates its own database,
``backtest_<UTC yyyymmdd_hhmmss>_<n>`` (``n`` = 1, 2, … until the name is free), so a backtest
never touches the trading database and can run while the sandbox runs. The role needs
``CREATEDB``. The database is kept after the run unless asked otherwise, so its paper trades,
bars and order attempts can be inspected.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from backtest.report import PaperTrade
from config import Settings, mask_database_url
from persistence import embedded
from persistence.db import connect, with_database
from persistence.errors import DatabaseError, translated


class BacktestDatabaseError(RuntimeError):
    """The backtest's database could not be created, read or dropped; says why and where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    """Where backtest databases are created."""

    url: str  # an admin URL (any existing database on the server)
    label: str  # printable: the masked URL, or the embedded server's directory

    def database_url(self, name: str) -> str:
        return with_database(self.url, name)


def resolve_server(settings: Settings, override: str | None) -> Server:
    """``--database-url``, ``DATABASE_URL`` or the embedded server (started here if needed)."""
    if override:
        return Server(url=override, label=mask_database_url(override))
    if settings.database.url is not None:
        url = settings.database.url.reveal()
        return Server(url=url, label=mask_database_url(url))
    directory = settings.database.embedded_pg_dir
    try:
        url = embedded.start(directory)
    except embedded.EmbeddedPostgresError as exc:
        raise BacktestDatabaseError(str(exc)) from exc
    return Server(url=url, label=f"the embedded PostgreSQL in {Path(directory).resolve()}")


def create(server: Server, *, now: datetime | None = None) -> str:
    """Create a fresh, empty database for one backtest; its name."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    try:
        with connect(server.url, autocommit=True, application_name="backtest") as conn:
            for n in itertools.count(1):
                name = f"backtest_{stamp}_{n}"
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except pg_errors.DuplicateDatabase:
                    continue
                except pg_errors.InsufficientPrivilege as exc:
                    raise BacktestDatabaseError(
                        f"cannot create a backtest database on {server.label}: {str(exc).strip()}; the role needs"
                        " CREATEDB (or pass --database-url with one that has it)") from exc
                return name
    except (DatabaseError, psycopg.Error) as exc:
        raise BacktestDatabaseError(f"cannot create a backtest database on {server.label}: {exc}") from exc
    raise AssertionError("unreachable")


def drop(server: Server, name: str) -> None:
    """Drop a backtest database (its connections are ended first)."""
    try:
        with connect(server.url, autocommit=True, application_name="backtest") as conn, translated():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except DatabaseError as exc:
        raise BacktestDatabaseError(f"cannot drop {name} on {server.label}: {exc}") from exc


def paper_trades(conn: psycopg.Connection) -> list[PaperTrade]:
    """Every paper fill of the run, in fill (id) order, timed by the bar that filled it.

    ``fill_ts`` (migration 0002) is that bar; rows written before it only have ``bar_ts``.
    """
    rows = conn.execute(
        "SELECT id, market, side, price, volume, amount_krw, fee_krw, realized_pnl, reason,"
        " extract(epoch FROM coalesce(fill_ts, bar_ts))::bigint FROM paper_trades ORDER BY id").fetchall()
    return [PaperTrade(id=r[0], market=r[1], side=r[2], price=r[3], volume=r[4], amount_krw=r[5], fee_krw=r[6],
                       realized_pnl=r[7], reason=r[8], fill_ts=int(r[9])) for r in rows]


def last_prices(conn: psycopg.Connection) -> dict[str, Decimal]:
    """The last bar close of every market."""
    rows = conn.execute("SELECT DISTINCT ON (market) market, close FROM market_1s ORDER BY market, ts DESC")
    return {market: close for market, close in rows.fetchall()}


def closes(conn: psycopg.Connection) -> Iterator[tuple[str, int, Decimal]]:
    """``(market, epoch second, close)`` of every bar, by market then time (streamed)."""
    with conn.cursor(name="closes") as cur:
        cur.itersize = 20_000
        cur.execute("SELECT market, extract(epoch FROM ts)::bigint, close FROM market_1s ORDER BY market, ts")
        for market, ts, close in cur:
            yield market, int(ts), close
