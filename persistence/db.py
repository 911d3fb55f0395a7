"""Connections: one owner per connection (an actor, a thread, the root), opened where it is used.

``connect`` classifies connection failures into ``DatabaseUnavailable`` and tags the session
with an application name so ``pg_stat_activity`` says which actor holds it.

Durability. Every connection commits synchronously (the commit returns once its WAL is on disk)
unless it is opened with ``durable=False``: then its commits return before the flush
(``synchronous_commit = off``; the WAL writer flushes within ``wal_writer_delay``, 200 ms by
default). That is for the market-data and paper writers, which sit on the tick-to-order path. It
is safe because PostgreSQL writes WAL in commit order and a crash of PostgreSQL (or of the
machine — a crash of our processes loses nothing either way) loses only a *suffix* of the
asynchronous commits, never one from the middle:

- bars are committed with the feed offsets they cover, so the feed resumes right after the last
  stored trade and rebuilds the lost bars from the same trades;
- a paper trade is committed with its position and the bar mark, so a lost fill is re-derived
  from the rebuilt bars;
- an order attempt is committed synchronously *before* its request is sent, and that flush
  carries every earlier commit with it: no attempt (and so no order) can outlive the paper trade
  it executes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import conninfo

from persistence.errors import translated

CONNECT_TIMEOUT_S = 10


def connect(url: str, *, autocommit: bool = False, application_name: str = "upbit-trader",
            durable: bool = True) -> psycopg.Connection:
    """Open a connection (errors arrive as ``persistence.errors`` types); ``durable=False``: its
    commits do not wait for the WAL flush (see the module docstring for when that is safe)."""
    with translated():
        conn = psycopg.connect(
            url,
            autocommit=autocommit,
            application_name=application_name[:63],
            connect_timeout=CONNECT_TIMEOUT_S,
        )
        if not durable:
            try:
                conn.execute("SET synchronous_commit TO off")
                if not autocommit:
                    conn.commit()
            except BaseException:
                conn.close()
                raise
        return conn


def one_row(conn: psycopg.Connection | psycopg.Cursor, query: str, params: tuple[object, ...] = ()) -> tuple[Any, ...]:
    """The single row of ``query`` (an aggregate, ``SELECT now()`` …); a query that returns none is a bug."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError(f"expected a row from: {query}")
    return row


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database, as a ``postgresql://`` URL."""
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = str(params.pop("host", ""))
    port = params.pop("port", None)
    netloc = "" if host.startswith("/") or not host else host
    if netloc and port:
        netloc += f":{port}"
    query = {k: str(v) for k, v in params.items() if k != "dbname"}
    if host.startswith("/"):
        query["host"] = host
        if port:
            query["port"] = str(port)
    tail = f"?{urlencode(query)}" if query else ""
    return f"postgresql://{auth}{netloc}/{quote(dbname, safe='')}{tail}"


def database_name(url: str) -> str:
    """The database a URL points at."""
    return str(conninfo.conninfo_to_dict(url).get("dbname") or "postgres")


def probe(url: str, *, timeout_s: float = 2.0) -> bool:
    """True when the server behind ``url`` accepts a connection and answers ``SELECT 1`` now."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout_s)), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def prober(url: str) -> Callable[[], bool]:
    """A supervisor's dependency probe for this database."""
    return functools.partial(probe, url)
