"""Connections: one owner per connection (an actor, a thread, the root), opened where it is used.

``connect`` classifies connection failures into ``DatabaseUnavailable`` and tags the session
with an application name so ``pg_stat_activity`` says which actor holds it.
"""

from __future__ import annotations

import psycopg
from psycopg import conninfo

from persistence.errors import translated

CONNECT_TIMEOUT_S = 10


def connect(url: str, *, autocommit: bool = False, application_name: str = "upbit-trader") -> psycopg.Connection:
    """Open a connection (errors arrive as ``persistence.errors`` types)."""
    with translated():
        return psycopg.connect(
            url,
            autocommit=autocommit,
            application_name=application_name[:63],
            connect_timeout=CONNECT_TIMEOUT_S,
        )


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database (as a libpq conninfo string)."""
    return conninfo.make_conninfo(url, dbname=dbname)


def database_name(url: str) -> str:
    """The database a URL points at."""
    return conninfo.conninfo_to_dict(url).get("dbname") or "postgres"
