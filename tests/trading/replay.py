"""A pure, in-memory run of the market pipeline for trading tests: bars → runner → paper book.

It uses the product's pure pieces only (``market.bars``, ``trading.runner``, ``trading.paper``);
a *restart* rebuilds the book from its positions (what PostgreSQL holds) and the runner by the
same warm-up rule the StrategyActor applies to stored bars (whole windows, see
``persistence.paper.warmup_window_start``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from model.market import Bar
from market.bars import BarAggregator
from market.recording import CANDLES_KRW_BTC_1M, Recording
from trading.paper import Fill, PaperBook, Resolved
from trading.runner import StrategyRunner, warmup_windows
from trading.strategy import LoadedStrategy, load_factory
from trading.timeframe import window_start

_CACHE: dict[tuple[str, str], list[Bar]] = {}


def candle_bars(frm: str, until: str) -> list[Bar]:
    """The 1-second bars of the shipped KRW-BTC candle recording in ``[frm, until)`` (UTC ISO)."""
    key = (frm, until)
    if key not in _CACHE:
        rec = Recording.candles(CANDLES_KRW_BTC_1M).between(
            datetime.fromisoformat(frm).replace(tzinfo=UTC), datetime.fromisoformat(until).replace(tzinfo=UTC))
        agg = BarAggregator()
        bars: list[Bar] = []
        for batch in rec.batches(2_000):
            bars += agg.add_many(batch)
        bars += agg.flush()
        _CACHE[key] = bars
    return list(_CACHE[key])


def warmup_bars_for(stored: Sequence[Bar], period_s: int, warmup_bars: int) -> tuple[list[Bar], int | None]:
    """The stored bars a restarted runner replays, and its ``observed_from`` (the actor's rule)."""
    if not stored:
        return [], None
    starts = sorted({window_start(b.ts, period_s) for b in stored}, reverse=True)
    windows = warmup_windows(warmup_bars)
    if len(starts) > windows:
        start, observed = starts[windows - 1], True
    else:
        start, observed = starts[-1], False
    return [b for b in stored if b.ts >= start], start if observed else None


@dataclass
class Run:
    """What a pipeline run produced."""

    fills: list[Fill] = field(default_factory=list)
    resolved: list[Resolved] = field(default_factory=list)
    book: PaperBook | None = None


def run_pipeline(strategy: LoadedStrategy | tuple[str, dict[str, Any]], bars: Sequence[Bar], *,
                 batch: int = 500, restarts: Sequence[int] = (), **book: Any) -> Run:
    """Run one market's bars through the strategy and the book, restarting before each index in ``restarts``."""
    loaded = strategy if isinstance(strategy, LoadedStrategy) else load_factory(*strategy)
    market = bars[0].market
    book.setdefault("order_krw", Decimal(100_000))
    paper = PaperBook(**book)
    runner = StrategyRunner(loaded(market), market=market)
    out = Run()
    cuts = sorted({0, len(bars), *restarts})
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        if lo:
            paper = PaperBook(**book, positions=dict(paper.positions))  # what PostgreSQL restores
            replay, observed = warmup_bars_for(bars[:lo], loaded.timeframe_s, loaded.warmup_bars)
            runner = StrategyRunner(loaded(market), market=market, observed_from=observed)
            runner.warm_up(replay)
        for i in range(lo, hi, batch):
            chunk = bars[i:min(i + batch, hi)]
            signals = [s for b in chunk for s in runner.on_bar(b)]
            changes = paper.apply(chunk, signals)
            out.fills += changes.fills
            out.resolved += changes.resolved
    out.book = paper
    return out
