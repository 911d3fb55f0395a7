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

from actors.node_actor import NodeActor
from actors.messages import Wake
from actors.waker import Waker
from persistence import alerts
from persistence.db import connect
from persistence.errors import translated
from persistence.notify import ALERTS

log = logging.getLogger("alerts")

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


class NotifierActor(NodeActor):
    """Delivers unsent alerts to the log channel."""

    def __init__(self, *, db_url: str, telegram_configured: bool, poll_s: float = 1.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.db_url = db_url
        self.telegram_configured = telegram_configured
        self.poll_s = poll_s
        self.conn = None
        self.waker: Waker | None = None
        self.counters.update(delivered=0)

    def setup(self) -> None:
        super().setup()
        self.conn = connect(self.db_url, autocommit=True, application_name=f"{self.context.supervisor_name}-notifier")
        if self.telegram_configured:
            log.warning("TELEGRAM_BOT_TOKEN is set, but this build delivers alerts to the log only")
        self.waker = Waker(self.db_url, (ALERTS,), self.actor_ref, interval_s=self.poll_s, name="notifier")
        self.waker.start()

    def handle(self, message: Any) -> None:
        if isinstance(message, Wake):
            if self.waker is not None:
                self.waker.ack()
            self._deliver()
        else:
            super().handle(message)

    def _deliver(self) -> None:
        assert self.conn is not None
        while True:
            with translated():
                batch = alerts.unsent(self.conn, limit=200)
                if not batch:
                    return
                for alert in batch:
                    log.log(_LEVELS.get(alert.level, logging.INFO), "ALERT [%s] %s", alert.kind, alert.text)
                    if alerts.mark_sent(self.conn, alert.id, "log"):
                        self.counters["delivered"] += 1

    def cleanup(self) -> None:
        if self.waker is not None:
            self.waker.stop()
            self.waker = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
