"""Gaps in a live trade stream: what to backfill after a reconnect, what cannot be recovered.

Pure logic. Upbit's ``sequential_id`` is unique per trade within a market but not consecutive,
so a gap cannot be seen in the ids themselves; it is the time between the last trade received
before the connection was lost and the first one after. After a reconnect (or a restart) the
feed asks the REST ``trades/ticks`` endpoint for the market's recent trades, newest first, page
by page (``cursor`` = the oldest ``sequential_id`` of the previous page), until it reaches the
last trade it had seen. The trades it had not seen are delivered — older than the live stream's
newest, so they arrive at the bar stage as late trades and are folded into their bars (see
``market.bars``); a strategy never acts on them (their bars are already behind it).

Gap policy: when the pages run out (``max_pages``) or the REST call fails before the last seen
trade is reached, the span between the last seen trade and the oldest trade the backfill reached
is a **gap**: it is recorded, and every bar inside it is marked ``incomplete`` (stored, shown, but
never a signal). Duplicates — a trade that comes both from the backfill and from the stream — are
dropped by ``(market, sequential_id)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from model.market import Trade

RECENT_IDS = 20_000  # per market: how many recent ids are remembered for de-duplication


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """A span of a market's trades that could not be recovered: ``from_ms`` ≤ t < ``until_ms``."""

    market: str
    from_ms: int
    until_ms: int
    reason: str


@dataclass(slots=True)
class _MarketState:
    last_ts_ms: int = -1
    ids: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)


class GapTracker:
    """Remembers what was seen per market; de-duplicates; plans and judges backfills."""

    def __init__(self) -> None:
        self._markets: dict[str, _MarketState] = {}
        self._stream_from_ms = -1  # the earliest point the stream is known to have covered

    def start_from(self, market: str, ts_ms: int) -> None:
        """After a restart: everything before ``ts_ms`` is already stored; backfill from there."""
        state = self._markets.setdefault(market, _MarketState())
        state.last_ts_ms = max(state.last_ts_ms, ts_ms - 1)
        self._note_coverage(ts_ms - 1)

    def last_ts_ms(self, market: str) -> int:
        """Backfill from here: the market's last trade seen, or — for a market with no trade seen
        yet — the earliest time the stream covered (its trades since then would have been seen);
        -1 when the stream has covered nothing yet (nothing can have been missed)."""
        state = self._markets.get(market)
        if state is None or state.last_ts_ms < 0:
            return self._stream_from_ms
        return state.last_ts_ms

    def _note_coverage(self, ts_ms: int) -> None:
        if self._stream_from_ms < 0 or ts_ms < self._stream_from_ms:
            self._stream_from_ms = ts_ms

    def accept(self, trades: Iterable[Trade]) -> list[Trade]:
        """The trades not seen before (in the order given), remembered as seen."""
        fresh = []
        for trade in trades:
            state = self._markets.setdefault(trade.market, _MarketState())
            if trade.seq in state.ids:
                continue
            state.ids.add(trade.seq)
            state.order.append(trade.seq)
            if len(state.order) > RECENT_IDS:
                state.ids.discard(state.order.popleft())
            state.last_ts_ms = max(state.last_ts_ms, trade.ts_ms)
            if self._stream_from_ms < 0:
                self._stream_from_ms = trade.ts_ms
            fresh.append(trade)
        return fresh

    def missing(self, market: str, pages: list[list[Trade]], *, complete: bool, reason: str = "") -> tuple[
            list[Trade], Gap | None]:
        """Judge a backfill: the unseen trades since the last seen one (oldest first), and the gap
        left if the pages did not reach back to it (``complete`` says whether the fetch ended
        because it reached it, or ran out of pages / failed)."""
        since = self.last_ts_ms(market)
        fetched = [t for page in pages for t in page if t.ts_ms >= since]
        reached = any(t.ts_ms <= since for page in pages for t in page)
        fresh = sorted(self.accept_unseen(fetched), key=lambda t: (t.ts_ms, t.seq))
        gap = None
        if since >= 0 and not (reached or complete):
            oldest = min((t.ts_ms for t in fetched), default=None)
            gap = Gap(market=market, from_ms=since, until_ms=oldest if oldest is not None else since,
                      reason=reason or "the backfill did not reach the last trade seen")
        return fresh, gap

    def accept_unseen(self, trades: list[Trade]) -> list[Trade]:
        ordered = sorted(trades, key=lambda t: (t.ts_ms, t.seq))
        return self.accept(ordered)
