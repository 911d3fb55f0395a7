"""BarActor: bars persisted, then passed on; a live burst does not delay the bar its first trade closed."""

from __future__ import annotations

from decimal import Decimal as D

import psycopg

from actors.bar import FIRST_CHUNK, BarActor
from actors.messages import BarsClosed, TradesReceived
from model.market import Side, Trade, TradeSource
from actors.peers import Peers
from otp.child import ChildContext
from tests.fakes.stand_in_actor import StandIn, Told
from tests.helpers import MS

T0 = 1_780_000_000  # epoch seconds


def _trade(market: str, second: int, price: int = 1_000) -> Trade:
    return Trade(market=market, ts_ms=second * 1000, price=D(price), volume=D(1), side=Side.BID, seq=-1,
                 source=TradeSource.LIVE)


def test_the_bar_a_batchs_first_trade_closes_goes_out_before_the_burst_behind_it(db_url: str,
                                                                                 db: psycopg.Connection) -> None:
    told = Told(BarsClosed)
    strategy = StandIn.start(told)
    peers = Peers()
    peers.bind(lambda name: strategy if name == "strategy" else None)
    ctx = ChildContext(supervisor_name="test", child_id="bar", incarnation=1, exit_sink=lambda _r: None)
    bar = BarActor.start(context=ctx, feed="live:test", db_url=db_url, peers=peers)
    try:
        bar.tell(TradesReceived(trades=(_trade("KRW-SIG", T0), *(_trade(f"KRW-B{i}", T0) for i in range(20)))))
        # the signal market's next trade closes its bar; 500 trades of 20 other markets arrived right behind it
        burst = [_trade(f"KRW-B{i % 20}", T0 + 1 + i // 100) for i in range(500)]  # 5 trades a market a second
        bar.tell(TradesReceived(trades=(_trade("KRW-SIG", T0 + 1), *burst)))
        assert told.wait_for(lambda got: len(got) >= 2, 10_000 * MS), told.messages
        batches = [tuple((b.market, b.ts) for b in m.bars) for m in told.messages]
        first = batches[0]
        assert ("KRW-SIG", T0) in first
        # only what the first FIRST_CHUNK trades closed (bars of second T0), none of the burst's later bars
        assert all(ts == T0 for _m, ts in first) and len(first) <= FIRST_CHUNK
        later = {pair for batch in batches[1:] for pair in batch}
        assert {(f"KRW-B{i}", T0 + s) for i in range(20) for s in (1, 4)} <= later
        # everything told on was stored first, and nothing twice
        told = [pair for batch in batches for pair in batch]
        assert len(told) == len(set(told))
        stored = {(m, int(ts)) for m, ts in db.execute(
            "SELECT market, extract(epoch FROM ts)::bigint FROM market_1s").fetchall()}
        assert set(told) <= stored
    finally:
        bar.stop(block=True, timeout=10_000 * MS)
        strategy.stop()
