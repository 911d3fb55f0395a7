"""NotifierActor: delivers the alert outbox — to Telegram when configured, always to the log.

Alerts are written to the ``alerts`` table first (by whoever raises them, in the same
transaction as the fact they report) and delivered from there, oldest first; an alert is marked
sent only after Telegram accepted it, so none is lost across a Telegram outage or a restart.
(Over HTTP exactly-once cannot be proven: a crash in the instant between Telegram's answer and
the commit re-sends that one message after the restart. Everything else is sent exactly once.)

Delivery never slows the pipeline: this actor lives in its own node, sends at most one message
group per wake-up (so a stop request waits for one message at most, and a burst drains through
repeated self-wakes), respects Telegram's ``retry_after``, and stops calling while the client's
circuit breaker is open. Bursts of one kind are grouped into one message (``notify.compose``).
Without a Telegram token the log is the channel and alerts are marked sent once logged. Kinds in
``ALERTS_DISABLED`` and levels below ``ALERT_MIN_LEVEL`` are logged and marked ``suppressed``.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from actors.woken import WokenActor
from notify.compose import compose
from notify.telegram import (TelegramBreakerOpen, TelegramClient, TelegramRateLimited, TelegramRejected,
                             TelegramUnavailable)
from persistence import alerts
from persistence.errors import translated
from persistence.notify import ALERTS

log = logging.getLogger("alerts")

BATCH = 200  # alerts read per wake

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
REJECTED_PAUSE_S = 60.0


class NotifierActor(WokenActor):
    """Delivers unsent alerts."""

    channels = (ALERTS,)
    autocommit = True

    def __init__(self, *, telegram: TelegramClient | None = None, chat_id: int | None = None,
                 min_level: str = "info", disabled_kinds: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(**kw)
        self.telegram = telegram
        self.chat_id = chat_id
        self.min_rank = alerts.LEVELS.index(min_level)
        self.disabled_kinds = frozenset(disabled_kinds)
        self.logged_through = 0
        self.paused_until = 0.0
        self.outage = False
        self.counters.update(delivered=0, failures=0, channel="telegram" if telegram else "log")

    def drain(self, conn: psycopg.Connection) -> None:
        with translated():
            batch = alerts.unsent(conn, limit=BATCH)
            full = len(batch) == BATCH  # more may be waiting: wake again after this one
            self._log_new(batch)
            muted = tuple(a.id for a in batch if a.kind in self.disabled_kinds
                          or alerts.LEVELS.index(a.level) < self.min_rank)
            if muted:  # recorded and logged, not sent (ALERT_MIN_LEVEL, ALERTS_DISABLED)
                alerts.mark_sent_many(conn, muted, "suppressed")
                batch = [a for a in batch if a.id not in set(muted)]
            if not batch:
                self._again(full)
                return
            if self.telegram is None or self.chat_id is None:
                self.counters["delivered"] += alerts.mark_sent_many(conn, tuple(a.id for a in batch), "log")
                self._again(full)
                return
            if self._clock.monotonic() < self.paused_until:
                return
            first, *rest = compose(batch)
            try:
                for part in first.parts:
                    self.telegram.send_message(self.chat_id, part)
            except TelegramRateLimited as exc:
                self.paused_until = self._clock.monotonic() + exc.retry_after
                log.warning("Telegram asked us to wait %g s", exc.retry_after)
                return
            except (TelegramUnavailable, TelegramBreakerOpen) as exc:
                self._failed(conn, first.alert_ids, exc, "Telegram unreachable; alerts are kept and retried")
                return
            except TelegramRejected as exc:
                self.paused_until = self._clock.monotonic() + REJECTED_PAUSE_S
                self._failed(conn, first.alert_ids, exc, "Telegram refused the message: check TELEGRAM_BOT_TOKEN "
                                                         "and TELEGRAM_CHAT_ID (the bot must be in the chat)")
                return
            self.counters["delivered"] += alerts.mark_sent_many(conn, first.alert_ids, "telegram")
        if self.outage:
            self.outage = False
            log.info("Telegram reachable again; delivering the backlog")
        self._again(bool(rest) or full)

    def _again(self, more: bool) -> None:
        if more:
            self.wake_again()  # behind any stop request already queued

    def _log_new(self, batch: list[alerts.Alert]) -> None:
        for alert in batch:
            if alert.id > self.logged_through:
                log.log(_LEVELS.get(alert.level, logging.INFO), "ALERT [%s] %s", alert.kind, alert.text)
                self.logged_through = alert.id

    def _failed(self, conn: psycopg.Connection, ids: tuple[int, ...], exc: Exception, what: str) -> None:
        self.counters["failures"] += 1
        alerts.record_failure(conn, ids, str(exc))
        if not self.outage:
            self.outage = True
            log.warning("%s: %s", what, exc)
