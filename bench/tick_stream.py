"""The trade stream the order-latency benchmark prints into the simulated Upbit, and its driver.

The plan is pure (:func:`plan_stream`): values in, scheduled frames out. The driver
(:func:`drive`) prints them into a :class:`upbit_sim.SimServer` on schedule — each print becomes
one WebSocket trade frame to every subscriber — and notes the wall time (``time.time()``) taken
right before each signal frame is handed to the simulator.

Signal frames: every one of ``signal_markets`` (``N`` of them) trades once a second, market ``i``
at ``(i + ½) / N`` into the second, stamped with that very instant (the exchange's timestamp is
the publish time, as for a live trade). So each frame is the first trade of a new second of its
market and closes that market's previous 1-second bar; the bar would only close by the feed's
wall-clock tick 1.5 s after its second ends, later than the next frame, so it is the frame that
closes it. The price alternates between ``low`` and ``high`` from one second to the next, which
makes ``SmaMomentum`` (window 2, 0 bps bands) enter and exit in turn: from a market's 4th or 5th
bar on, every bar fills the order the bar before it decided (see :mod:`bench.order_latency`).

Burst frames: after every other signal frame (alternating, so the two phases interleave evenly
over time and markets), ``burst_size`` trades of ``burst_markets`` follow at once, round-robin,
at a constant price per market (no signal: the close never leaves its SMA), stamped with the
signal frame's instant — market data that is in flight in the market node while the signal's
order is being handled.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from model.market import Side, Trade, TradeSource

__all__ = ["Published", "Scheduled", "TradeSink", "burst_trades", "drive", "plan_stream", "switch_interval"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheduled:
    """A signal frame to publish at ``ts_ms`` (its own trade timestamp), maybe followed by a burst."""

    market: str
    ts_ms: int
    price: Decimal
    burst: bool  # a burst of other markets' trades follows it
    warmup: bool  # published before measuring starts (cold start, strategy warm-up)


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """A signal frame as published: ``published_at`` is ``time.time()`` right before the print."""

    market: str
    ts_ms: int
    published_at: float
    burst: bool
    warmup: bool
    burst_s: float = 0.0  # how long printing the burst after it took (0: none)


class TradeSink(Protocol):
    """Where trades are printed (:meth:`upbit_sim.SimServer.feed`)."""

    def feed(self, trade: Trade) -> None: ...


def plan_stream(*, signal_markets: Sequence[str], start_s: int, seconds: int, warmup_seconds: int, low: Decimal,
                high: Decimal) -> list[Scheduled]:
    """The signal frames of ``seconds`` whole seconds from ``start_s`` (epoch seconds), in time order.

    Market ``i`` of ``N`` trades at ``start_s + k + (i + ½) / N`` for ``k`` in ``0 … seconds-1``,
    at ``high`` when ``k + i`` is odd and ``low`` otherwise; every other frame (by publish order)
    is followed by a burst; the first ``warmup_seconds`` seconds are warm-up.
    """
    if not signal_markets or seconds < 1 or not 0 <= warmup_seconds < seconds:
        raise ValueError("need signal markets, seconds >= 1 and 0 <= warmup_seconds < seconds")
    n = len(signal_markets)
    out = []
    for k in range(seconds):
        for i, market in enumerate(signal_markets):
            out.append(Scheduled(market=market, ts_ms=(start_s + k) * 1000 + (2 * i + 1) * 500 // n,
                                 price=high if (k + i) % 2 else low, burst=(k * n + i) % 2 == 1,
                                 warmup=k < warmup_seconds))
    return out


def burst_trades(*, burst_markets: Sequence[str], size: int, ts_ms: int, price: Decimal) -> list[Trade]:
    """``size`` trades spread round-robin over ``burst_markets``, all at ``ts_ms`` and ``price``."""
    return [_trade(burst_markets[j % len(burst_markets)], ts_ms, price, Side.ASK if j % 2 else Side.BID)
            for j in range(size)]


def drive(sink: TradeSink, plan: Sequence[Scheduled], *, burst_markets: Sequence[str], burst_size: int,
          burst_price: Decimal, wall: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep) -> list[Published]:
    """Publish ``plan`` on schedule (each frame at its own ``ts_ms``; late ones at once).

    The burst trades are built before the signal frame is published, so publishing one costs
    only the simulator's own work.
    """
    out = []
    for frame in plan:
        trade = _trade(frame.market, frame.ts_ms, frame.price, Side.BID)
        burst = (burst_trades(burst_markets=burst_markets, size=burst_size, ts_ms=frame.ts_ms, price=burst_price)
                 if frame.burst and burst_size > 0 else [])
        delay = frame.ts_ms / 1000 - wall()
        if delay > 0:
            sleep(delay)
        published_at = wall()
        sink.feed(trade)
        for extra in burst:
            sink.feed(extra)
        out.append(Published(market=frame.market, ts_ms=frame.ts_ms, published_at=published_at, burst=bool(burst),
                             warmup=frame.warmup, burst_s=wall() - published_at if burst else 0.0))
    return out


@contextmanager
def switch_interval(seconds: float) -> Iterator[None]:
    """Run the block with the interpreter's GIL switch interval at ``seconds`` (then restore it).

    The simulator runs in the bench's interpreter: while the bench prints a burst, the simulator's
    WebSocket sender and REST threads would wait up to the default 5 ms for the GIL.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _trade(market: str, ts_ms: int, price: Decimal, side: Side) -> Trade:
    # seq -1: the simulator numbers it, as Upbit's sequential_id
    return Trade(market=market, ts_ms=ts_ms, price=price, volume=Decimal("0.001"), side=side, seq=-1,
                 source=TradeSource.LIVE)
