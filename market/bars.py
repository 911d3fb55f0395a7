"""1-second OHLCV bars from trades: late trades folded in, exactly-once across restarts.

:class:`BarAggregator` is pure logic (no clock, no I/O): trades go in (in arrival order, in
batches), closed :class:`~actors.messages.Bar` objects come out.

Bars
    The bar of second ``s`` of a market holds the trades with ``s*1000 <= ts_ms < (s+1)*1000``.
    A market has at most one *open* bar. It closes when a trade of that market with a later
    second arrives, on :meth:`~BarAggregator.tick` once ``now_ms >= (s+1)*1000 + grace_ms``, or
    on :meth:`~BarAggregator.flush` (end of a recording). Only seconds with trades get a bar.

Late trades and amendments
    A trade is *late* when its bar can no longer be open: its second is before the market's open
    bar, or (with no bar open) not after the last closed bar. It is not dropped: late trades are
    accumulated per ``(market, second)`` into a pending **amendment**, a ``Bar`` with
    ``late_trades == trade_count == n``, ``open``/``close`` = first/last of the late trades (in
    arrival order), ``high``/``low``/``volume`` of the late trades. Amendments are emitted with
    the next bar of that market that closes, before it (so each emission is in time order), or
    by ``tick``/``flush`` when the market has no open bar. The consumer applies them as an
    upsert: ``high = max``, ``low = min``, ``volume +=``, ``trade_count +=``, ``late_trades +=``,
    ``open``/``close`` unchanged (inserted as-is when no row exists).

    So the stored bars equal a group-by of all trades per ``(market, second)`` where high, low,
    volume and trade count cover every trade, and open/close are those of the bar as it first
    closed: the first and last trade (in arrival order) that arrived while it was open. A closed
    bar's open/close are final (a strategy may already have acted on them); late trades only
    widen its range and add volume. For a second that had no on-time trade, open/close are those
    of the first amendment emitted for it.

Exactly-once across restarts
    Recorded trades carry ``offset`` (strictly increasing in arrival order). Per market the
    aggregator reports ``applied_offset`` (:meth:`~BarAggregator.applied_offsets`): the highest
    offset such that every trade of that market with offset <= it is contained in what was
    already emitted, and no later one is. That holds because the aggregator only ever emits
    *everything* it holds for a market (all pending amendments together with the closing bar),
    so what was emitted is always an offset prefix of the market's trades.

    The consumer stores the emitted bars and these offsets (and, implicitly, the last closed
    second per market, ``max(ts)`` of its stored bars) in one transaction. After a crash, replay
    restarts at ``min(applied) + 1`` over the markets, and a fresh aggregator is told
    :meth:`~BarAggregator.resume` ``(applied, closed_through)``: it skips trades whose offset is
    <= ``applied[market]`` and treats seconds <= ``closed_through[market]`` as closed, so the
    stored result is exactly that of an uninterrupted run. Live trades (``offset == -1``) are
    not tracked.

Decimal arithmetic runs in a private 34-digit context, independent of the calling thread's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Context, Decimal, localcontext
from typing import Final

from model.market import Bar, Trade, TradeSource, valid_bar

__all__ = ["BarAggregator"]

_CTX: Final = Context(prec=34)
_NONE: Final = -1  # "no open bar" / "no bar closed yet" / "no offset" (seconds and offsets are >= 0)


class _Book:
    """Per-market state: the open bar, pending amendments, offsets."""

    __slots__ = (
        "close",
        "closed",
        "count",
        "first_unemitted",
        "high",
        "late",
        "low",
        "market",
        "open",
        "sec",
        "skip_through",
        "source",
        "volume",
    )

    def __init__(self, market: str, closed: int, skip_through: int) -> None:
        self.market = market
        self.sec = _NONE  # second of the open bar, or _NONE
        self.open: Decimal = Decimal(0)
        self.high: Decimal = Decimal(0)
        self.low: Decimal = Decimal(0)
        self.close: Decimal = Decimal(0)
        self.volume: Decimal = Decimal(0)
        self.count = 0
        self.source = TradeSource.LIVE
        self.closed = closed  # second of the last closed (regular) bar, or _NONE
        self.late: dict[int, _Late] = {}  # second -> pending amendment
        self.first_unemitted = _NONE  # offset of the earliest trade held but not yet emitted
        self.skip_through = skip_through  # resume: trades with offset <= this were applied


class _Late:
    """The pending amendment of one (market, second): the late trades seen so far."""

    __slots__ = ("close", "count", "high", "low", "open", "source", "volume")

    def __init__(self, trade: Trade) -> None:
        self.open = self.high = self.low = self.close = trade.price
        self.volume = trade.volume
        self.count = 1
        self.source = trade.source


class BarAggregator:
    """Build closed 1-second OHLCV bars per market (see the module docstring for the rules)."""

    __slots__ = ("_books", "_failed", "_grace_ms", "_last_offset", "_resumed_applied", "_resumed_closed")

    def __init__(self, *, grace_ms: int = 0) -> None:
        """Create an empty aggregator.

        Args:
            grace_ms: how long after a second ends :meth:`tick` waits before closing its bar
                (0 for replay; a little for live feeds, whose trades arrive with some delay).

        """
        if grace_ms < 0:
            raise ValueError(f"grace_ms must not be negative, got {grace_ms}")
        self._grace_ms = grace_ms
        self._books: dict[str, _Book] = {}
        self._last_offset = _NONE
        self._resumed_applied: dict[str, int] = {}
        self._resumed_closed: dict[str, int] = {}
        self._failed = False

    # --- restart ------------------------------------------------------------------------

    def resume(self, applied: Mapping[str, int], closed_through: Mapping[str, int] | None = None) -> None:
        """Continue after a crash from what the consumer persisted; call before any trade.

        Args:
            applied: per market, the ``applied_offset`` persisted with the last stored bars.
                Trades of that market with ``offset <= applied[market]`` will be skipped.
            closed_through: per market, the second of the last stored bar (``max(ts)``). Seconds
                up to it count as closed, so a trade for one of them becomes an amendment, as it
                would have without the crash. Needed when the crash came after a ``tick`` or
                ``flush`` closed a bar that no newer trade had closed; harmless otherwise.

        Raises:
            RuntimeError: the aggregator has already seen trades.

        """
        if self._books or self._last_offset != _NONE:
            raise RuntimeError("resume() must be called on a fresh aggregator, before any trade")
        self._resumed_applied = dict(applied)
        self._resumed_closed = dict(closed_through or {})

    def applied_offsets(self) -> dict[str, int]:
        """Per market, the highest offset whose effect is entirely in what was emitted so far.

        Every trade of the market with ``offset <=`` the value is in emitted bars/amendments; none
        with a larger offset is. Persist it atomically with the emitted bars.
        """
        result = dict(self._resumed_applied)
        last = self._last_offset
        for market, book in self._books.items():
            if book.first_unemitted != _NONE:
                result[market] = book.first_unemitted - 1
            else:  # nothing held back: everything of this market seen so far was emitted
                result[market] = max(last, result.get(market, _NONE))
        return result

    def closed_through(self) -> dict[str, int]:
        """Per market, the second of the last closed regular bar (= ``max(ts)`` emitted)."""
        result = dict(self._resumed_closed)
        for market, book in self._books.items():
            if book.closed != _NONE:
                result[market] = book.closed
        return result

    # --- trades -------------------------------------------------------------------------

    def add(self, trade: Trade) -> list[Bar]:
        """Add one trade; return the bars (and amendments) it closed. Prefer :meth:`add_many`."""
        return self.add_many((trade,))

    def add_many(self, trades: Iterable[Trade]) -> list[Bar]:  # noqa: C901, PLR0912, PLR0915 -- hot loop, inlined
        """Add trades in arrival order; return the bars and amendments closed, in emission order.

        If anything raises during the call (a bad offset order, or the ``trades`` iterable
        itself), the bars closed so far in the call are lost, so the aggregator refuses further
        use: discard it and :meth:`resume` a fresh one from the persisted offsets.

        Raises:
            ValueError: a recorded trade's offset is not greater than the previous one's.
            RuntimeError: the aggregator failed earlier.

        """
        self._check_usable()
        out: list[Bar] = []
        books = self._books
        last_offset = self._last_offset
        market = ""
        book = _Book("", _NONE, _NONE)  # placeholder, replaced on the first trade
        try:
            with localcontext(_CTX):
                for trade in trades:
                    if trade.market != market:
                        market = trade.market
                        book = books.get(market) or self._new_book(market)
                    offset = trade.offset
                    if offset >= 0:
                        if offset <= last_offset:
                            raise ValueError(
                                f"trade offsets must strictly increase: {offset} after {last_offset}; "
                                f"discard this aggregator and resume a fresh one ({trade})"
                            )
                        last_offset = offset
                        if offset <= book.skip_through:
                            continue  # applied before the restart
                    sec = trade.ts_ms // 1000
                    price = trade.price
                    if sec == book.sec:  # the hot path: one more trade in the open bar
                        if price > book.high:
                            book.high = price
                        elif price < book.low:
                            book.low = price
                        book.close = price
                        book.volume += trade.volume
                        book.count += 1
                        continue
                    if sec > book.sec and sec > book.closed:  # a new bar: close the open one first
                        if book.sec != _NONE:
                            self._close(book, out)
                        book.sec = sec
                        book.open = book.high = book.low = book.close = price
                        book.volume = trade.volume
                        book.count = 1
                        book.source = trade.source
                    else:  # late: its bar is closed already
                        pending = book.late.get(sec)
                        if pending is None:
                            book.late[sec] = _Late(trade)
                        else:
                            if price > pending.high:
                                pending.high = price
                            elif price < pending.low:
                                pending.low = price
                            pending.close = price
                            pending.volume += trade.volume
                            pending.count += 1
                    if offset >= 0 and book.first_unemitted == _NONE:
                        book.first_unemitted = offset
        except BaseException:
            # Bars closed earlier in this call would be lost with the exception while the state
            # moved on: exactly-once is broken, so refuse further work (resume a fresh one).
            self._failed = True
            raise
        self._last_offset = last_offset
        return out

    def tick(self, now_ms: int) -> list[Bar]:
        """Close the bars whose second ended at least ``grace_ms`` before ``now_ms``.

        Markets with no open bar also release their pending amendments (nothing newer is held
        back for them, so emitting now keeps the exactly-once bookkeeping intact).
        """
        self._check_usable()
        out: list[Bar] = []
        grace = self._grace_ms
        with localcontext(_CTX):
            for book in self._books.values():
                if book.sec != _NONE:
                    if now_ms >= (book.sec + 1) * 1000 + grace:
                        self._close(book, out)
                elif book.late:
                    self._release_late(book, out)
        return out

    def flush(self) -> list[Bar]:
        """Close every open bar and release every pending amendment (end of a recording)."""
        self._check_usable()
        out: list[Bar] = []
        with localcontext(_CTX):
            for book in self._books.values():
                if book.sec != _NONE:
                    self._close(book, out)
                elif book.late:
                    self._release_late(book, out)
        return out

    # --- internals ----------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._failed:
            raise RuntimeError("this BarAggregator failed earlier and must not be used; resume a fresh one")

    def _new_book(self, market: str) -> _Book:
        book = _Book(
            market,
            closed=self._resumed_closed.get(market, _NONE),
            skip_through=self._resumed_applied.get(market, _NONE),
        )
        self._books[market] = book
        return book

    @staticmethod
    def _close(book: _Book, out: list[Bar]) -> None:
        """Emit the book's pending amendments, then its open bar; nothing of it stays held."""
        if book.late:
            BarAggregator._release_late(book, out)
        out.append(valid_bar(book.market, book.sec, book.open, book.high, book.low, book.close, book.volume,
                             book.count, book.source))
        book.closed = book.sec
        book.sec = _NONE
        book.first_unemitted = _NONE

    @staticmethod
    def _release_late(book: _Book, out: list[Bar]) -> None:
        """Emit the pending amendments in time order.

        Only valid when nothing else is held back for the book (no open bar, or the open bar is
        emitted right after).
        """
        market = book.market
        for sec in sorted(book.late):
            late = book.late[sec]
            out.append(valid_bar(market, sec, late.open, late.high, late.low, late.close, late.volume, late.count,
                                 late.source, late.count))
        book.late.clear()
        if book.sec == _NONE:
            book.first_unemitted = _NONE
