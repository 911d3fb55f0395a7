"""The PostgreSQL server the benchmarks use, and a fresh database for every system run.

``BENCH_DATABASE_URL`` (else ``DATABASE_URL``) names a server to use (the role needs CREATEDB);
otherwise an embedded PostgreSQL is started in a temporary directory that is deleted when the
bench exits. The embedded server is configured with ``track_commit_timestamp = on`` before its
first start (one extra start and stop in a child process) so the latency benchmark can read the
exact commit time of each ``order_attempts`` row; on a server of your own that setting may be off,
and the benchmark then says it fell back to ``created_at`` (the inserting transaction's start).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.system import child_env
from persistence.db import with_database

_ENABLE_COMMIT_TIMESTAMPS = """
import sys
from pathlib import Path
import psycopg
from persistence import embedded
url = embedded.start(Path(sys.argv[1]))  # stopped again when this process exits
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
"""


@dataclass(slots=True, kw_only=True)
class Server:
    """Where the benchmark databases live."""

    admin_url: str
    label: str  # "embedded" or the environment variable that named it
    data_dir: Path | None = None  # the embedded server's data directory
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def commit_timestamps(self) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW track_commit_timestamp").fetchone()
        return row is not None and row[0] == "on"

    def version(self) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def postmaster_pid(self) -> int | None:
        """The embedded server's main process (its backends are its children)."""
        if self.data_dir is None:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def create(self, purpose: str) -> str:
        """A new, empty database; its URL (the system migrates it on start)."""
        name = f"bench_{os.getpid()}_{purpose}_{next(self._counter)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_server(tmp: Path) -> Server:
    """The configured server, or an embedded one in ``tmp`` (stopped and deleted at exit)."""
    for var in ("BENCH_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(var)
        if url:
            return Server(admin_url=url, label=var)
    from persistence import embedded

    data = tmp / "pgdata"
    subprocess.run([sys.executable, "-c", _ENABLE_COMMIT_TIMESTAMPS, str(data)], env=child_env(), cwd=tmp,
                   check=True, timeout=180, capture_output=True)
    url = embedded.start(data, delete_on_exit=True)
    return Server(admin_url=url, label="embedded", data_dir=data.resolve())

