"""``python -m supervisor watchdog``: liveness from outside — the alert a dead process cannot send.

Run it from cron or a systemd timer (README shows both). Each run looks at the system once:

- **running**: the root holds the system lock and its heartbeat (``runtime_nodes``) is fresher
  than ``--stale-after`` seconds, and every node is running;
- **hung**: the lock is held but the heartbeat is stale (the root is alive but not working);
- **gave_up**: the root recorded that its supervisor gave up;
- **degraded**: the root is fine but a node is not running;
- **not_running**: no root holds the lock, or the database cannot be reached.

Anything but ``running`` is an incident. An incident is alerted once — straight to Telegram
(the system's own notifier may be the thing that died), else to stdout for cron's mail — and
remembered in a small state file so the next runs stay quiet; when the system is healthy again
a recovery message is sent once. Exit status: 0 healthy, 1 an incident, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from config import Settings
from notify.telegram import TelegramClient, TelegramError
from persistence import embedded, runtime
from persistence.db import connect
from persistence.errors import DatabaseError, translated

log = logging.getLogger(__name__)

EXIT_HEALTHY = 0
EXIT_INCIDENT = 1
EXIT_USAGE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What one look at the system found."""

    state: str  # running | hung | gave_up | degraded | not_running
    detail: str

    @property
    def healthy(self) -> bool:
        return self.state == "running"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("watchdog", help="check from outside that the system is alive; alert once if not")
    p.add_argument("--stale-after", type=float, default=30.0,
                   help="seconds without a root heartbeat that count as hung (default 30)")
    p.add_argument("--state-file", type=Path, default=Path("var/watchdog-state.json"),
                   help="where the last alerted incident is remembered (default var/watchdog-state.json)")


def assess(settings: Settings, *, stale_after: float, now: datetime) -> Verdict:
    """Look at the system once."""
    if settings.database.url is not None:
        url = settings.database.url.reveal()
    else:
        running = embedded.running_url(settings.database.embedded_pg_dir)
        if running is None:
            return Verdict(state="not_running", detail="the embedded database is not running")
        url = running
    try:
        with connect(url, autocommit=True, application_name="watchdog") as conn, translated():
            holder = runtime.system_lock_holder(conn)
            nodes = {n["node"]: n for n in runtime.read_nodes(conn)}
            row = conn.execute("SELECT now()").fetchone()
            now = row[0] if row else now  # the database's clock wrote the heartbeats
    except DatabaseError as exc:
        return Verdict(state="not_running", detail=f"the database is unreachable: {exc}")
    root = nodes.get("root")
    if root is not None and root["state"] == "gave_up":
        return Verdict(state="gave_up", detail="the root supervisor gave up (restart intensity exceeded)")
    if holder is None:
        return Verdict(state="not_running", detail="no root process holds the system lock")
    if root is None:
        return Verdict(state="hung", detail="a root holds the lock but has never written a heartbeat")
    age = (now - root["heartbeat_at"]).total_seconds()
    if age > stale_after:
        return Verdict(state="hung", detail=f"the root's last heartbeat is {age:.0f} s old (limit {stale_after:g} s)")
    down = sorted(name for name, n in nodes.items() if name != "root" and n["state"] != "running")
    if down:
        return Verdict(state="degraded", detail=f"nodes not running: {', '.join(down)}")
    return Verdict(state="running", detail=f"root pid {root['pid']}, heartbeat {age:.0f} s ago")


def watchdog(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """One watchdog run; the exit code."""
    if args.stale_after <= 0:
        print("error: --stale-after must be positive", file=out)
        return EXIT_USAGE
    verdict = assess(settings, stale_after=args.stale_after, now=datetime.now(UTC))
    previous = _load(args.state_file)
    print(f"{verdict.state}: {verdict.detail}", file=out)
    message = None
    if not verdict.healthy and previous != verdict.state:
        message = f"🚨 upbit-trader watchdog: system {verdict.state.replace('_', ' ')} — {verdict.detail}"
    elif verdict.healthy and previous not in (None, "running"):
        message = f"✅ upbit-trader watchdog: system running again ({verdict.detail})"
    if message is not None and _send(settings, message, out):
        _save(args.state_file, verdict.state)
    elif message is None and previous is None:
        _save(args.state_file, verdict.state)
    return EXIT_HEALTHY if verdict.healthy else EXIT_INCIDENT


def _send(settings: Settings, message: str, out: TextIO) -> bool:
    """Deliver; True once delivered (so the incident is not alerted again)."""
    if settings.telegram.bot_token is None or settings.telegram.chat_id is None:
        print(message, file=out)  # cron mails what a job prints
        return True
    client = TelegramClient(settings.telegram.api_url, settings.telegram.bot_token.reveal())
    try:
        client.send_message(settings.telegram.chat_id, message)
    except TelegramError as exc:
        print(f"could not alert on Telegram ({exc}); will try again on the next run\n{message}", file=out)
        return False
    return True


def _load(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["state"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring an unreadable watchdog state file %s: %s", path, exc)
        return None


def _save(path: Path, state: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"state": state, "at": datetime.now(UTC).isoformat()}))
    os.replace(tmp, path)
