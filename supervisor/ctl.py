"""``python -m supervisor ctl …``: talk to a running system through its database.

The system is running exactly when its root holds the system advisory lock (see
``persistence.runtime``); with the embedded database, a server that is not running means no
system is running either — ``ctl`` never starts one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from config import Settings
from persistence import embedded, runtime
from persistence.db import connect
from persistence.errors import DatabaseError, translated

EXIT_OK = 0
EXIT_NOT_RUNNING = 1


def status(settings: Settings, out: TextIO) -> int:
    """Print the running tree: nodes (pid, state, restarts, uptime) and actors; 1 if not running."""
    if settings.database.url is not None:
        url: str | None = settings.database.url.reveal()
        where = "DATABASE_URL"
    else:
        url = embedded.running_url(settings.database.embedded_pg_dir)
        where = f"embedded PostgreSQL in {settings.database.embedded_pg_dir}"
    if url is None:
        print(f"the system is not running ({where} is not running)", file=out)
        return EXIT_NOT_RUNNING
    try:
        with connect(url, autocommit=True, application_name="ctl") as conn, translated():
            if runtime.system_lock_holder(conn) is None:
                print(f"the system is not running (no root holds the system lock on {where})", file=out)
                return EXIT_NOT_RUNNING
            nodes = runtime.read_nodes(conn)
            actors = runtime.read_actors(conn)
    except DatabaseError as exc:
        print(f"the system is not reachable ({where}): {exc}", file=out)
        return EXIT_NOT_RUNNING
    out.write(render_status(nodes, actors, now=datetime.now(UTC)))
    return EXIT_OK


def render_status(nodes: list[dict[str, Any]], actors: list[dict[str, Any]], *, now: datetime) -> str:
    """The two tables ``ctl status`` prints."""
    lines = []
    root = next((n for n in nodes if n["node"] == "root"), None)
    if root is not None:
        lines.append(f"system running: {root['detail'].get('mode', '')}".rstrip(": "))
    lines.append(f"{'NODE':<11}{'PID':>8}  {'STATE':<9}{'INC':>4}{'RESTARTS':>10}  {'UPTIME':<10} HEARTBEAT")
    for n in nodes:
        uptime = _age(now, n["started_at"]) if n["state"] == "running" else "-"
        lines.append(f"{n['node']:<11}{n['pid'] or '-':>8}  {n['state']:<9}{n['incarnation']:>4}{n['restarts']:>10}"
                     f"  {uptime:<10} {_age(now, n['heartbeat_at'])} ago")
    lines.append("")
    lines.append(f"{'ACTOR':<22}{'STATE':<11}{'INC':>4}{'MAILBOX':>9}{'PROCESSED':>11}  LAST MESSAGE")
    for a in actors:
        last = a["last_message_at"]
        last_text = "-" if last is None else f"{last.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} ({_age(now, last)} ago)"
        lines.append(f"{a['node'] + '/' + a['actor']:<22}{a['state']:<11}{a['incarnation']:>4}{a['mailbox']:>9}"
                     f"{a['processed']:>11}  {last_text}")
    return "\n".join(lines) + "\n"


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    return str(timedelta(seconds=seconds))
