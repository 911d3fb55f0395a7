"""ExecutionActor: turns each paper trade (intent) into exactly one order attempt.

Shadow mode (the only mode of this build; test and live orders arrive with the exchange layer
and its guards): the request Upbit *would* receive is recorded as an ``order_attempts`` row with
status ``logged`` and nothing is sent anywhere. The operator's switches (``system_flags``) block
an attempt, recorded as ``blocked`` with its ``blocked_reasons``: ``KILL_SWITCH`` blocks every
intent, ``PAUSED`` blocks entries (buys) while exits still go through.

Exactly once, across any crash: intents are read from ``paper_trades`` after this consumer's
cursor, and the attempt rows and the cursor move are committed in one transaction. The attempt's
identifier ``{bot}-{intent}-{attempt}`` is unique in the table, so even a cursor that somehow
fell behind could not produce a second attempt: the insert would fail loudly instead.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from actors.woken import WokenActor
from persistence import attempts as attempts_repo
from persistence import control, cursors
from persistence.errors import translated
from persistence.notify import PAPER_TRADES
from trading.orders import identifier, market_order_request

log = logging.getLogger(__name__)

CONSUMER = "execution"
BATCH = 500


class ExecutionActor(WokenActor):
    """Shadow execution: one ``logged`` attempt per paper trade."""

    channels = (PAPER_TRADES,)

    def __init__(self, *, bot_id: str, mode: str, **kw: Any) -> None:
        super().__init__(**kw)
        if mode != "shadow":
            raise ValueError(f"execution mode {mode!r} is not available in this build (shadow only)")
        self.bot_id = bot_id
        self.mode = mode
        self.cursor = 0
        self.counters.update(attempts=0, cursor=0)

    def prepare(self, conn: psycopg.Connection) -> None:
        with translated():
            self.cursor = cursors.get(conn, CONSUMER)
            conn.commit()
        self.counters["cursor"] = self.cursor
        log.info("execution in %s mode, resuming after paper trade %d", self.mode, self.cursor)

    def drain(self, conn: psycopg.Connection) -> None:
        while True:
            with translated():
                intents = attempts_repo.intents_after(conn, self.cursor, BATCH)
                if not intents:
                    conn.commit()
                    return
                switches = control.flags(conn)  # read after the intents: a switch set before an intent
                rows = []                            # was committed is always seen
                for intent in intents:
                    ident = identifier(self.bot_id, intent.paper_trade_id, 1)
                    blocked = blocked_reasons(intent.side, switches)
                    rows.append(attempts_repo.Attempt(
                        paper_trade_id=intent.paper_trade_id, attempt=1, identifier=ident, mode=self.mode,
                        status="blocked" if blocked else "logged", market=intent.market,
                        side="bid" if intent.side == "buy" else "ask", request=market_order_request(intent, ident),
                        blocked_reasons=blocked,
                    ))
                with conn.cursor() as cur:
                    attempts_repo.insert(cur, rows)
                    cursors.advance(cur, CONSUMER, intents[-1].paper_trade_id)
                conn.commit()
            self.cursor = intents[-1].paper_trade_id
            self.counters["attempts"] += len(rows)
            self.counters["blocked"] = self.counters.get("blocked", 0) + sum(1 for r in rows if r.blocked_reasons)
            self.counters["cursor"] = self.cursor


def blocked_reasons(side: str, switches: dict[str, object]) -> tuple[str, ...]:
    """Why an intent must not go out, from the operator's switches (empty: it may)."""
    reasons = []
    if switches.get("killswitch") is True:
        reasons.append("KILL_SWITCH")
    if switches.get("paused") is True and side == "buy":
        reasons.append("PAUSED")
    return tuple(reasons)
