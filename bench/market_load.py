"""Live-like market data for N markets, fed into the simulated Upbit at real time.

No recording of 20 markets ships (``data/upbit/PROVENANCE.md``): the longest real capture,
``upbit-ws-2021-04-05-2min.capture``, holds 672 trades of 7 markets over two minutes. The
footprint benchmark needs the system subscribed to 1 and to 20 markets at a live-like rate, so
this module *spreads* that capture over N market codes:

- market *i* of the N gets the trade stream of the capture's market *i mod 7* (busiest first),
  shifted in time by *i/N* of the capture's length plus *i/N* of a second (wrapping around): the
  recorded times have whole-second resolution, and the extra fraction keeps streams that share a
  source from ever arriving in the same instant;
- the streams repeat with the capture's period, for as long as the load runs;
- prices, volumes, sides and the gaps between trades are the recorded ones; the market codes
  are real KRW codes from the simulator's (2021) market list, so the system subscribes to, and
  decodes frames of, N distinct markets.

The rate is therefore the capture's own: about 5.6 trades a second for 7 markets, about 16 for 20.
The bench feeds the trades through :meth:`upbit_sim.SimServer.feed`, which stamps them with the
simulator's clock and publishes them as WebSocket ``trade`` frames to the system's feed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from model.market import Side, Trade, TradeSource
from market.recording import CAPTURE_2021_04_05, Recording

PERIOD_S = 120.0  # the capture's length (18:17:00 → 18:19:00 UTC)


@dataclass(frozen=True, slots=True)
class Print:
    """One trade of the spread load: when (seconds into a period) and what."""

    at_s: float
    market: str
    price: Decimal
    volume: Decimal
    side: Side


def source_streams(recording: Recording | None = None) -> dict[str, list[tuple[float, Decimal, Decimal, Side]]]:
    """The capture's trades per KRW market, busiest first: (seconds from the first trade, price, volume, side)."""
    trades = [t for t in (recording or Recording.open(CAPTURE_2021_04_05)).trades() if t.market.startswith("KRW-")]
    start = min(t.ts_ms for t in trades)
    streams: dict[str, list[tuple[float, Decimal, Decimal, Side]]] = {}
    for t in trades:
        streams.setdefault(t.market, []).append(((t.ts_ms - start) / 1000, t.price, t.volume, t.side))
    return dict(sorted(streams.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def choose_markets(n: int, sources: list[str], listed: list[str]) -> list[str]:
    """N market codes: the capture's own markets first, then other listed KRW markets in order."""
    chosen = list(sources[:n])
    chosen += [m for m in listed if m.startswith("KRW-") and m not in chosen][: n - len(chosen)]
    if len(chosen) < n:
        raise ValueError(f"only {len(chosen)} KRW markets are listed; {n} were asked for")
    return chosen


def spread(markets: list[str], streams: dict[str, list[tuple[float, Decimal, Decimal, Side]]],
           period_s: float = PERIOD_S) -> list[Print]:
    """One period of the load over ``markets`` (see the module docstring), in time order."""
    sources = list(streams)
    out = []
    for i, market in enumerate(markets):
        shift = period_s * i / len(markets) + i / len(markets)
        for at, price, volume, side in streams[sources[i % len(sources)]]:
            out.append(Print(at_s=(at + shift) % period_s, market=market, price=price, volume=volume, side=side))
    out.sort(key=lambda p: (p.at_s, p.market))
    return out


def schedule(period: list[Print], period_s: float = PERIOD_S) -> Iterator[tuple[float, Print]]:
    """(seconds from the start, print) forever: the period repeated."""
    n = 0
    while True:
        for p in period:
            yield n * period_s + p.at_s, p
        n += 1


class Feeder:
    """A thread that feeds the load into the simulator at real time until stopped."""

    def __init__(self, feed: Callable[[Trade], None], period: list[Print], *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._feed = feed
        self._period = period
        self._monotonic = monotonic
        self._stop = threading.Event()
        self.fed = 0
        self._thread = threading.Thread(target=self._run, name="bench-market-load", daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        started = self._monotonic()
        for due, p in schedule(self._period):
            delay = started + due - self._monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            self._feed(Trade(market=p.market, ts_ms=0, price=p.price, volume=p.volume, side=p.side, seq=-1,
                             source=TradeSource.LIVE))
            self.fed += 1
