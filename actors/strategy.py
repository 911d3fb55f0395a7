"""StrategyActor: closed bars in, signals out; one strategy instance per market.

The strategy itself is a plugin (``trading.strategy``) and does no I/O; this actor owns its
instances. On start, each market's instance is warmed up from the stored bars the paper stage
has already processed (signals discarded), so a restart resumes with the same state an
uninterrupted run would have. Bars at or before the last one a market's instance has seen are
ignored (re-delivered after an upstream restart, or late-trade amendments of closed bars).
"""

from __future__ import annotations

import logging
from typing import Any

from actors.node_actor import NodeActor
from actors.messages import BarsClosed, BarsEvaluated, Drained, SignalRaised
from actors.peers import Peers
from persistence import bars as bars_repo
from persistence.db import connect
from persistence.errors import translated
from trading.strategy import Strategy, StrategyFactory

log = logging.getLogger(__name__)


class StrategyActor(NodeActor):
    """Runs the configured strategy over each market's bars."""

    def __init__(self, *, factory: StrategyFactory, db_url: str, peers: Peers, **kw: Any) -> None:
        super().__init__(**kw)
        self.factory = factory
        self.db_url = db_url
        self.peers = peers
        self.instances: dict[str, Strategy] = {}
        self.last_ts: dict[str, int] = {}
        self.counters.update(bars=0, signals=0)

    def setup(self) -> None:
        super().setup()
        with connect(self.db_url, application_name=f"{self.context.supervisor_name}-strategy") as conn, translated():
            marks = conn.execute(
                "SELECT market, extract(epoch FROM last_bar_ts)::bigint FROM paper_positions"
                " WHERE last_bar_ts IS NOT NULL").fetchall()
            for market, mark in marks:
                strategy = self._instance(market)
                history = bars_repo.last_bars(conn, market, int(mark), strategy.warmup_bars)
                for bar in history:
                    strategy.on_bar(bar)  # warm-up: signals discarded, they were acted on before
                self.last_ts[market] = int(mark)
                log.info("strategy for %s warmed up from %d stored bars", market, len(history))

    def _instance(self, market: str) -> Strategy:
        strategy = self.instances.get(market)
        if strategy is None:
            strategy = self.instances[market] = self.factory(market)
        return strategy

    def handle(self, message: Any) -> None:
        if isinstance(message, BarsClosed):
            fresh = []
            signals: list[SignalRaised] = []
            for bar in message.bars:
                if bar.ts <= self.last_ts.get(bar.market, -1):
                    continue
                self.last_ts[bar.market] = bar.ts
                fresh.append(bar)
                signal = self._instance(bar.market).on_bar(bar)
                if signal is not None:
                    signals.append(signal)
            self.counters["bars"] += len(fresh)
            self.counters["signals"] += len(signals)
            if fresh:
                self.peers.tell("paper", BarsEvaluated(bars=tuple(fresh), signals=tuple(signals)))
        elif isinstance(message, Drained):
            self.peers.tell("paper", message)
        else:
            super().handle(message)
