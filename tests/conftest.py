"""Test-session fixtures: one PostgreSQL server per test session, one fresh database per test.

The server is ``TEST_DATABASE_URL`` when set (the role needs CREATEDB), otherwise an embedded
PostgreSQL started once in a temporary directory and stopped at the end of the session. Every
test that asks for ``db_url`` gets its own database cloned from a migrated template, so tests are
isolated and never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from persistence import embedded
from persistence.db import with_database
from persistence.migrate import migrate

_TEMPLATE = f"tmpl_{os.getpid()}"
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Admin URL of the session's server."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    # Not under pytest's basetemp: a concurrent pytest session prunes old basetemps, and must not
    # delete this server's data directory under it. Stopped and deleted at interpreter exit.
    data_dir = Path(tempfile.mkdtemp(prefix="upbit-trader-test-pg-"))
    yield embedded.start(data_dir, delete_on_exit=True)


@pytest.fixture(scope="session")
def template_url(pg_server_url: str) -> Iterator[str]:
    """A migrated template database."""
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    url = with_database(pg_server_url, _TEMPLATE)
    migrate(url)
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server_url: str, template_url: str) -> Iterator[str]:
    """URL of a fresh, migrated database of this test's own."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to this test's database."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn
