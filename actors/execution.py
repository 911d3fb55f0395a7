"""ExecutionActor: turns each paper trade (intent) into at most one exchange order, behind guards.

A thin shell around :class:`execution.engine.Engine` (the protocol and its crash contract are
documented there): it owns the database connection and the exchange client, runs the engine on
every wake (a NOTIFY on new paper trades, and every ``poll_s`` to follow open orders), and
reports what it is doing — effective mode and why, breaker states, attempts by status — in its
counters, which ``ctl status``, the dashboard and the status line show.

Shadow mode (the default, and what any refused guard falls back to) records the request Upbit
*would* receive as a ``logged`` attempt and sends nothing; test mode sends Upbit's orders/test;
live mode sends real orders only when every live guard agrees (:mod:`execution.guards`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import psycopg

from actors.woken import WokenActor
from exchange.rest import BREAKER_GROUPS
from execution.engine import Engine, EngineConfig, Exchange
from execution.failpoints import Failpoints
from execution.guards import ModeDecision
from persistence.notify import PAPER_TRADES
from model.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class ExecutionActor(WokenActor):
    """One attempt per paper trade; test and live orders through the exchange client."""

    channels = (PAPER_TRADES,)

    def __init__(self, *, config: EngineConfig, exchange: Exchange | None = None, failpoints: str = "",
                 clock: Clock | None = None, **kw: Any) -> None:
        """``config``: the engine's (``EngineConfig.from_settings``); ``exchange``: None without API keys."""
        kw.setdefault("poll_s", 0.5)
        super().__init__(**kw)
        self.config = config
        self.exchange = exchange
        self.failpoints = Failpoints(failpoints)
        self.clock = clock or SystemClock()
        self.engine: Engine | None = None
        self.counters.update(attempts=0, cursor=0, mode=config.requested.value, mode_reasons=[], breakers={})

    def prepare(self, conn: psycopg.Connection) -> None:
        guards = self.config.guards
        if not guards.feed_live and guards.live_trading and self.exchange is not None:
            # a replayed recording may drive live orders only against the simulated Upbit (guards.py)
            simulated = self.exchange.is_simulator()
            log.info("replayed market data: the exchange %s the simulated Upbit", "is" if simulated else "is not")
            self.config = dataclasses.replace(self.config, guards=dataclasses.replace(guards,
                                                                                      exchange_simulated=simulated))
        self.engine = Engine(conn, self.exchange, self.config, clock=self.clock, failpoints=self.failpoints,
                             on_mode=self._on_mode)
        self.engine.prepare()
        self.counters["cursor"] = self.engine.cursor

    def _on_mode(self, decision: ModeDecision) -> None:
        self.counters["mode"] = decision.effective.value
        self.counters["requested_mode"] = decision.requested.value
        self.counters["mode_reasons"] = [r.value for r in decision.reasons]

    def drain(self, conn: psycopg.Connection) -> None:
        assert self.engine is not None
        try:
            more = self.engine.step()
        finally:
            self._report()
        if more:
            self.wake_again()

    def _report(self) -> None:
        assert self.engine is not None
        stats = self.engine.stats
        self.counters.update(attempts=stats.attempts, cursor=self.engine.cursor, blocked=stats.blocked,
                             sent=stats.sent, unknown=stats.unknown, adopted=stats.adopted, absent=stats.absent,
                             fills=stats.fills, by_status=dict(stats.by_status), following=len(self.engine.follows),
                             waiting=self.engine.waiting or "", pending_exits=len(self.engine.pending_exits),
                             exits_retried=stats.exits_retried, in_review=self.engine.in_review,
                             mismatches=stats.mismatches)
        if self.exchange is not None:
            self.counters["breakers"] = {g: self.exchange.breaker_state(g) for g in BREAKER_GROUPS
                                         if g in ("order", "order-test", "exchange-default")}

