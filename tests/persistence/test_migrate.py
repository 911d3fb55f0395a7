from __future__ import annotations

import psycopg
import pytest

from persistence import migrate as migrate_mod
from persistence.db import with_database
from persistence.errors import DatabaseBug
from persistence.migrate import available, migrate


def _fresh(pg_server_url: str, name: str) -> str:
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(pg_server_url, name)


def test_migrations_apply_once_and_are_recorded(pg_server_url: str) -> None:
    url = _fresh(pg_server_url, "mig_once")
    versions = [m.version for m in available()]
    assert migrate(url) == versions
    assert migrate(url) == []  # idempotent
    with psycopg.connect(url) as conn:
        recorded = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert recorded == versions
    assert {"market_1s", "paper_trades", "order_attempts", "supervisor_events", "alerts"} <= tables


def test_changed_applied_migration_is_an_error(pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _fresh(pg_server_url, "mig_changed")
    migrate(url)
    original = available()
    tampered = [migrate_mod.Migration(version=m.version, name=m.name, sql=m.sql + "\n-- edited") for m in original]
    monkeypatch.setattr(migrate_mod, "available", lambda: tampered)
    with pytest.raises(DatabaseBug, match="changed after it was applied"):
        migrate(url)


def test_identifier_is_unique_in_order_attempts(db: psycopg.Connection) -> None:
    pid = db.execute(
        "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source)"
        " VALUES ('KRW-BTC', 'buy', 1, 1, 1, 0, 'r', now(), 'capture') RETURNING id"
    ).fetchone()[0]
    sql = ("INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side, request)"
           " VALUES (%s, %s, %s, 'shadow', 'logged', 'KRW-BTC', 'bid', '{}')")
    db.execute(sql, (pid, 1, "sbx-1-1"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(sql, (pid, 2, "sbx-1-1"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(sql, (pid, 1, "sbx-1-x"))
