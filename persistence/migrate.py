"""Versioned, idempotent migrations recorded in ``schema_migrations``.

Migrations are the files ``migrations/NNNN_name.sql``, applied in version order, each in its own
transaction together with its ``schema_migrations`` row, under an advisory lock so two processes
starting at once cannot both apply one. An applied migration whose file changed since is an
error (its checksum is recorded), never silently skipped.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from persistence.db import connect
from persistence.errors import DatabaseBug, translated

log = logging.getLogger(__name__)

_LOCK_KEY = 0x75704D6967  # "upMig": serialises concurrent migrators
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """Every migration shipped in ``persistence/migrations``, in version order."""
    found = []
    for entry in resources.files("persistence.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(version=int(match[1]), name=match[2], sql=entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseBug(f"duplicate migration versions: {versions}")
    return found


def migrate(url: str) -> list[int]:
    """Apply every pending migration to the database at ``url``; return the versions applied now."""
    applied_now: list[int] = []
    with connect(url, autocommit=True, application_name="migrate") as conn, translated():
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done: dict[int, str] = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
            for migration in available():
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise DatabaseBug(
                            f"migration {migration.version:04d}_{migration.name} was changed after it "
                            "was applied; add a new migration instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
