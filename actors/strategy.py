"""StrategyActor: closed 1-second bars in, signals out; one strategy instance per market.

The strategy itself is a plugin (``trading.strategy``) and does no I/O; this actor owns its
instances, each wrapped in a ``trading.runner.StrategyRunner`` that rolls the 1-second bars up
to the strategy's timeframe. Only the markets the strategy declares get an instance; every bar
still goes on to the paper book, which marks positions with it and records how far it got.

On start, each market's runner is warmed up from the stored 1-second bars the paper stage has
already processed (``paper_positions.last_bar_ts``): whole timeframe windows covering the
strategy's ``warmup_bars`` closed bars and the unfinished current one, intents discarded. So a
restart resumes with the state an uninterrupted run has at that point. Bars at or before the
last one a market's runner has seen are ignored (re-delivered after an upstream restart, or
late-trade amendments of closed bars).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from model.market import Bar
from actors.messages import BarsClosed, BarsEvaluated, Drained
from model.trading import SignalRaised
from actors.node_actor import NodeActor
from actors.peers import Peers
from persistence import bars as bars_repo
from persistence import paper as paper_repo
from persistence.db import connect
from persistence.errors import translated
from trading.runner import StrategyRunner, warmup_windows
from trading.strategy import LoadedStrategy, StrategyFactory, markets_of, timeframe_of

log = logging.getLogger(__name__)

WARMUP_CHUNK = 5_000


class StrategyActor(NodeActor):
    """Runs the configured strategy over each declared market's bars."""

    def __init__(self, *, factory: StrategyFactory, db_url: str, peers: Peers, **kw: Any) -> None:
        super().__init__(**kw)
        self.factory = factory
        self.db_url = db_url
        self.peers = peers
        self.runners: dict[str, StrategyRunner] = {}
        self.last_ts: dict[str, int] = {}
        if isinstance(factory, LoadedStrategy):
            self.markets, self.period_s, self.warmup_bars = factory.markets, factory.timeframe_s, factory.warmup_bars
        else:  # a bare callable: ask a probe instance
            probe = factory("KRW-BTC")
            self.markets, self.period_s, self.warmup_bars = markets_of(probe), timeframe_of(probe), probe.warmup_bars
        self.counters.update(bars=0, signals=0, suppressed=0)

    def setup(self) -> None:
        super().setup()
        if isinstance(self.factory, LoadedStrategy):
            log.info("strategy %s", self.factory.describe())
        with connect(self.db_url, application_name=f"{self.context.supervisor_name}-strategy") as conn, translated():
            for market, mark in sorted(paper_repo.processed_marks(conn).items()):
                self.last_ts[market] = mark
                if self._trades(market):
                    self._warm_up(conn, market, mark)

    def _trades(self, market: str) -> bool:
        return self.markets is None or market in self.markets

    def _warm_up(self, conn: psycopg.Connection, market: str, mark: int) -> None:
        start, observed = paper_repo.warmup_window_start(conn, market, mark, self.period_s,
                                                         warmup_windows(self.warmup_bars))
        runner = self.runners[market] = StrategyRunner(self.factory(market), market=market,
                                                       observed_from=start if observed else None)
        if start is None:
            return
        bars, after = 0, start - 1
        while True:
            chunk = [b for b in bars_repo.bars_after(conn, market, after, WARMUP_CHUNK) if b.ts <= mark]
            if not chunk:
                break
            runner.warm_up(chunk)
            bars += len(chunk)
            after = chunk[-1].ts
        log.info("strategy for %s warmed up from %d stored 1-second bars (%d strategy bars)", market, bars,
                 runner.bars)

    def _runner(self, market: str) -> StrategyRunner:
        runner = self.runners.get(market)
        if runner is None:
            runner = self.runners[market] = StrategyRunner(self.factory(market), market=market)
        return runner

    def handle(self, message: Any) -> None:
        if isinstance(message, BarsClosed):
            fresh: list[Bar] = []
            signals: list[SignalRaised] = []
            last_ts = self.last_ts
            market, runner, looked_up = "", None, False  # the runner of the current run of bars of one market
            for bar in message.bars:
                if bar.market != market:
                    market, looked_up = bar.market, False
                if bar.ts <= last_ts.get(market, -1):
                    continue
                last_ts[market] = bar.ts
                fresh.append(bar)
                if not looked_up:
                    runner = self._runner(market) if self._trades(market) else None
                    looked_up = True
                if runner is not None:
                    raised = runner.on_bar(bar)
                    if raised:
                        signals += raised
            self.counters["bars"] += len(fresh)
            self.counters["signals"] += len(signals)
            self.counters["suppressed"] = sum(r.suppressed for r in self.runners.values())
            if fresh:
                self.peers.tell("paper", BarsEvaluated(bars=tuple(fresh), signals=tuple(signals)))
        elif isinstance(message, Drained):
            self.peers.tell("paper", message)
        else:
            super().handle(message)
