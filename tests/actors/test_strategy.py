"""``StrategyActor`` on a real database: warm-up from stored bars resumes exactly where a run stopped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pykka
import pytest

from model.market import Bar
from actors.messages import BarsClosed, BarsEvaluated, Drained
from model.trading import SignalRaised
from actors.peers import Peers
from actors.strategy import StrategyActor
from persistence import bars as bars_repo
from otp.child import ChildContext
from tests.helpers import MS, eventually, new_threads
from tests.trading.replay import candle_bars
from trading.runner import StrategyRunner
from trading.strategy import load_factory

DAY = ("2024-09-02T00:00:00", "2024-09-04T00:00:00")  # 2,400 real one-second bars (600 candles)


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=2000 * MS)
    eventually(lambda: not new_threads(before), 3000 * MS, what=f"threads left behind: {new_threads(before)}")


class RecordingPeers(Peers):
    """Records what the strategy tells the paper stage."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[Any] = []
        self.drained = threading.Event()

    def tell(self, name: str, message: Any) -> bool:
        assert name == "paper"
        self.told.append(message)
        if isinstance(message, Drained):
            self.drained.set()
        return True

    @property
    def signals(self) -> list[SignalRaised]:
        return [s for m in self.told if isinstance(m, BarsEvaluated) for s in m.signals]


def _store(db: psycopg.Connection, bars: list[Bar], processed_through: int | None) -> None:
    with db.cursor() as cur:
        bars_repo.save_bars(cur, bars, "replay:test", {})
        if processed_through is not None:
            cur.execute("INSERT INTO paper_positions (market, last_bar_ts) VALUES ('KRW-BTC', %s)",
                        (datetime.fromtimestamp(processed_through, UTC),))


def _run_actor(db_url: str, factory: Any, bars: list[Bar], chunk: int = 97) -> RecordingPeers:
    peers = RecordingPeers()
    ctx = ChildContext(supervisor_name="test", child_id="strategy", incarnation=1, exit_sink=lambda _r: None)
    ref = StrategyActor.start(context=ctx, factory=factory, db_url=db_url, peers=peers)
    for i in range(0, len(bars), chunk):
        ref.tell(BarsClosed(bars=tuple(bars[i : i + chunk])))
    ref.tell(Drained(last_offset=0))
    assert peers.drained.wait(10_000 * MS), "the strategy did not drain"
    ref.stop(block=True, timeout=5000 * MS)
    return peers


@pytest.mark.parametrize(("spec", "params"), [
    ("trading.builtin:MeanReversion", {"bb_window": 10, "rsi_window": 6, "rsi_entry": 40, "rsi_exit": 60}),
    ("trading.builtin:VolatilityBreakout", {"range_window": 5, "trend_window": 10, "k": 1}),
    ("trading.builtin:SmaMomentum", {"window": 5, "entry_bps": 0, "exit_bps": 0}),
    ("trading.builtin:MeanReversion", {"timeframe": "5m", "bb_window": 5, "rsi_window": 4, "rsi_entry": 45,
                                       "rsi_exit": 55}),
])
@pytest.mark.parametrize("cut", [13, 301, 1_002, 1_811])  # mid-window marks (four 1-second bars a minute)
def test_a_restarted_strategy_signals_exactly_like_an_uninterrupted_one(
        db_url: str, db: psycopg.Connection, spec: str, params: dict[str, Any], cut: int) -> None:
    bars = candle_bars(*DAY)
    factory = load_factory(spec, params)
    runner = StrategyRunner(factory("KRW-BTC"), market="KRW-BTC")
    uninterrupted = [[s for s in runner.on_bar(b)] for b in bars]
    expected = [s for per_bar in uninterrupted[cut:] for s in per_bar]
    assert len(expected) >= 3, "the slice should signal after the cut"

    _store(db, bars, processed_through=bars[cut - 1].ts)  # the paper stage got this far before the crash
    peers = _run_actor(db_url, factory, bars)  # the bar actor re-emits everything; old bars are skipped
    assert peers.signals == expected
    forwarded = [b for m in peers.told if isinstance(m, BarsEvaluated) for b in m.bars]
    assert forwarded == bars[cut:]


def test_a_fresh_start_and_undeclared_markets(db_url: str) -> None:
    bars = candle_bars(*DAY)[:400]
    factory = load_factory("trading.builtin:SmaMomentum", {"window": 5, "markets": ["KRW-ETH"]})
    peers = _run_actor(db_url, factory, bars)
    assert peers.signals == []  # KRW-BTC is not the strategy's market
    assert [b for m in peers.told if isinstance(m, BarsEvaluated) for b in m.bars] == bars  # still marked by paper
    factory = load_factory("trading.builtin:SmaMomentum", {"window": 5, "entry_bps": 0, "exit_bps": 0})
    assert _run_actor(db_url, factory, bars).signals
