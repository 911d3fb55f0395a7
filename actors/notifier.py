"""NotifierActor: delivers the alert outbox.

Alerts are written to the ``alerts`` table first (by whoever raises them, in the same
transaction as the fact they report) and delivered from there, oldest first; each is marked
sent only after it was delivered, so none is lost across a crash. Without a Telegram token the
channel is the log. (Telegram delivery, with its rate limits and retries, arrives with the
operator surface; until then a configured token is reported and alerts still go to the log.)
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from actors.woken import WokenActor
from persistence import alerts
from persistence.errors import translated
from persistence.notify import ALERTS

log = logging.getLogger("alerts")

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


class NotifierActor(WokenActor):
    """Delivers unsent alerts to the log channel."""

    channels = (ALERTS,)
    autocommit = True

    def __init__(self, *, telegram_configured: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.telegram_configured = telegram_configured
        self.counters.update(delivered=0)

    def prepare(self, conn: psycopg.Connection) -> None:
        if self.telegram_configured:
            log.warning("TELEGRAM_BOT_TOKEN is set, but this build delivers alerts to the log only")

    def drain(self, conn: psycopg.Connection) -> None:
        while True:
            with translated():
                batch = alerts.unsent(conn, limit=200)
                if not batch:
                    return
                for alert in batch:
                    log.log(_LEVELS.get(alert.level, logging.INFO), "ALERT [%s] %s", alert.kind, alert.text)
                    if alerts.mark_sent(conn, alert.id, "log"):
                        self.counters["delivered"] += 1
