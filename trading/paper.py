"""The paper book: long-only positions per market, filled like Upbit market orders. No I/O.

Time is bar time (epoch seconds of 1-second bars), never a clock, so a replay and a restarted
replay give the same book. ``PaperBook.apply(bars, signals)`` goes through the 1-second bars in
order; for each bar of a market it

1. queues the signals that bar delivered whose decision already exists (a timeframe bar closed
   by this 1-second bar, ``decided_ts <= bar.ts``);
2. **fills** the queued orders that are due (``decided_ts <= bar.ts``) at the bar's **open** —
   the next trade price after the signal — moved by ``slippage_bps`` against us (up for a buy,
   down for a sell) and then onto Upbit's tick grid away from us (``exchange.rules.round_price``);
3. marks the position to the bar: last price = close, max price since entry = highest high;
4. checks the position's ``ExitPlan`` on the close (``trading.exits``: stop-loss, break-even stop
   after a partial, trailing stop, take-profit, time limit, partial take-profit) and queues the
   exit it calls for (not on a bar marked incomplete);
5. queues the signals decided at this bar's close (filled at the next 1-second bar).

So an order is never filled on the bar that decided it, and a queued order is part of the
position (``Position.pending``): it is persisted with it, and a restart between signal and fill
neither loses nor repeats it.

Signals that cannot apply are ignored when queued, not errors: an entry while long, while an
entry is queued or before the re-buy cooldown ends; an exit while flat (and no entry queued) or
while an exit is queued; a ``once`` partial exit after a partial exit. At fill time an order is
**rejected** (recorded, with the reason) when it breaks a rule:

- only KRW markets are paper-traded (the book is kept in KRW);
- a buy spends ``amount_krw`` (default ``order_krw``): volume = ``round_volume(krw / price)``
  (8 decimals, down), cost = price × volume, which must reach ``min_order_total`` (5,000 KRW);
- a sale must be worth at least the minimum; a partial exit whose remainder would be worth less
  sells everything instead; a full exit worth less is rejected and the position kept (dust: its
  exit plan is no longer checked, and a later entry adds to it);
- fee = amount × fee rate (``exchange.rules.fee_rate(market)``, 0.05 % on KRW, unless the book is
  given a fixed ``fee_rate``), on both sides;
- after a full exit, no entry fills in that market for ``cooldown_s`` seconds of bar time.

Accounting, exact in ``Decimal``: ``cost_krw`` is the cost of the volume held and
``entry_fee_krw`` the buy fees not yet allocated; a sale of part ``v`` of volume ``V`` releases
``cost × v / V`` and ``entry fee × v / V``. Realised PnL of a sale = proceeds − its fee − released
cost − released entry fee. Unrealised PnL = last price × volume − cost − entry fee held. Exposure
= last price × volume. Per market, realised + unrealised PnL is the market's contribution to the
equity; the total equity is the starting capital plus the sum over markets. Markets are booked
independently (no shared cash check), so the result never depends on how bars of different
markets interleave — which a restart changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast

from model.market import Bar
from model.trading import ExitPlan, SignalKind
from model.trading import SignalRaised
from exchange import rules
from trading.exits import exit_plan_decision

ZERO = Decimal(0)
BPS = Decimal(10_000)
KRW_STEP = Decimal("0.00000001")
EXITS = (SignalKind.EXIT, SignalKind.PARTIAL_EXIT)


def _krw(value: Decimal) -> Decimal:
    return value.quantize(KRW_STEP, rounding=ROUND_HALF_UP)


def is_krw_market(market: str) -> bool:
    """Quoted in KRW (``KRW-BTC``): the markets the paper book trades."""
    return market.startswith("KRW-")


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """An order of the paper book, queued until the next 1-second bar fills or rejects it."""

    market: str
    kind: SignalKind
    reason: str
    origin: str = "strategy"  # strategy | exit_plan
    bar_ts: int  # open of the bar that decided it (its timeframe)
    timeframe_s: int = 1
    signal_price: Decimal  # that bar's close
    decided_ts: int  # fills at the first 1-second bar with ts >= decided_ts
    amount_krw: Decimal | None = None  # enter_long (None: the book's order size)
    fraction: Decimal | None = None  # partial_exit
    once: bool = True  # partial_exit: not after a partial exit
    exit_plan: ExitPlan | None = None  # enter_long

    @classmethod
    def from_signal(cls, sig: SignalRaised) -> Order:
        return cls(market=sig.market, kind=sig.kind, reason=sig.reason, bar_ts=sig.bar_ts,
                   timeframe_s=sig.timeframe_s, signal_price=sig.price, decided_ts=sig.decided_ts,
                   amount_krw=sig.amount_krw, fraction=sig.fraction, once=sig.once, exit_plan=sig.exit_plan)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """One market's paper position, its running totals, and its queued orders."""

    market: str
    volume: Decimal = ZERO
    avg_price: Decimal = ZERO  # average entry price of the volume held (0 when flat)
    cost_krw: Decimal = ZERO  # cost of the volume held
    entry_fee_krw: Decimal = ZERO  # buy fees of the volume held, not yet released by a sale
    max_price: Decimal = ZERO  # highest traded price since entry (0 when flat); never lowered while held
    realized_pnl: Decimal = ZERO
    fees_krw: Decimal = ZERO
    trades: int = 0
    last_price: Decimal | None = None
    last_bar_ts: int | None = None  # the last 1-second bar applied: how far the book has processed
    entered_ts: int | None = None  # bar time of the entry fill
    partial_taken: bool = False  # a partial exit was filled since entry
    cooldown_until: int | None = None  # no entry fills before this bar time
    exit_plan: ExitPlan | None = None
    pending: tuple[Order, ...] = ()

    @property
    def is_long(self) -> bool:
        return self.volume > 0

    @property
    def exposure_krw(self) -> Decimal:
        return _exposure(self)

    @property
    def unrealized_pnl(self) -> Decimal:
        return _unrealized(self)

    @property
    def net_pnl(self) -> Decimal:
        """Realised + unrealised: this market's contribution to the equity."""
        return self.realized_pnl + self.unrealized_pnl


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """A paper fill: an intent for the execution node."""

    market: str
    side: str  # buy | sell
    price: Decimal
    volume: Decimal
    amount_krw: Decimal
    fee_krw: Decimal
    realized_pnl: Decimal
    reason: str
    bar_ts: int  # the bar that decided it
    source: str
    intent: str = SignalKind.ENTER_LONG.value  # enter_long | exit | partial_exit
    fill_ts: int = 0  # the 1-second bar whose open filled it
    signal_price: Decimal | None = None
    market_price: Decimal | None = None  # the trade price before slippage
    origin: str = "strategy"
    position_volume: Decimal = ZERO  # volume held after the fill


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """What became of an order: ``filled`` (with its fill) or ``rejected`` (with the reason)."""

    order: Order
    status: str
    ts: int  # the 1-second bar that resolved it
    note: str = ""
    fill: Fill | None = None


class Mark(NamedTuple):
    """A market's book at the end of a mark interval (the equity curve). A named tuple: a replay builds
    one per interval and batch, and a tuple is the cheapest immutable record to build."""

    market: str
    ts: int  # interval start
    price: Decimal
    volume: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees_krw: Decimal
    exposure_krw: Decimal

    @classmethod
    def of(cls, pos: Position | _Working, ts: int) -> Mark:
        assert pos.last_price is not None
        return cls(pos.market, ts, pos.last_price, pos.volume, pos.realized_pnl, pos.unrealized_pnl, pos.fees_krw,
                   pos.exposure_krw)


@dataclass(slots=True)
class BookChanges:
    """What one ``apply`` did."""

    fills: list[Fill] = field(default_factory=list)
    resolved: list[Resolved] = field(default_factory=list)
    markets: set[str] = field(default_factory=set)  # markets whose position changed
    marks: dict[tuple[str, int], Mark] = field(default_factory=dict)
    ignored: list[tuple[SignalRaised, str]] = field(default_factory=list)


@dataclass(slots=True)
class PaperBook:
    """Positions per market; ``apply`` turns bars and signals into orders, fills and marks."""

    order_krw: Decimal
    fee_rate: Decimal | None = None  # None: exchange.rules.fee_rate(market)
    slippage_bps: Decimal = ZERO
    cooldown_s: int = 0
    mark_interval_s: int = 60
    positions: dict[str, Position] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.order_krw > 0:
            raise ValueError(f"order_krw must be positive, got {self.order_krw}")
        if self.fee_rate is not None and not 0 <= self.fee_rate < 1:
            raise ValueError(f"fee_rate must be in [0, 1), got {self.fee_rate}")
        if not 0 <= self.slippage_bps < BPS:
            raise ValueError(f"slippage_bps must be in [0, 10000), got {self.slippage_bps}")
        if self.cooldown_s < 0 or self.mark_interval_s < 1:
            raise ValueError("cooldown_s must be >= 0 and mark_interval_s >= 1")

    def position(self, market: str) -> Position:
        return self.positions.get(market) or Position(market=market)

    def apply(self, bars: Iterable[Bar], signals: Iterable[SignalRaised]) -> BookChanges:
        """Apply 1-second bars (in time order per market) and the signals they delivered.

        The hot loop works on a mutable copy of each market's position (:class:`_Working`): a
        bar that fills nothing only updates a few fields in place. Frozen :class:`Position`
        snapshots are taken where state leaves the loop — a fill, and ``positions`` at the end.
        """
        changes = BookChanges()
        marks = changes.marks
        interval = self.mark_interval_s
        delivered: dict[tuple[str, int], list[SignalRaised]] = {}
        for sig in signals:
            delivered.setdefault((sig.market, sig.delivered_with), []).append(sig)
        working: dict[str, _Working] = {}
        market = ""
        w: _Working | None = None
        for bar in bars:
            if bar.market != market or w is None:
                market = bar.market
                w = working.get(market)
                if w is None:
                    w = working[market] = _Working(self.position(market))
            ts = bar.ts
            if w.last_bar_ts is not None and ts <= w.last_bar_ts:
                continue  # applied before a restart (or a late-trade amendment)
            if not w.touched:
                w.touched = True
                changes.markets.add(market)
            mark_ts = ts - ts % interval
            if mark_ts != w.mark_ts:  # a new mark interval: the previous one's mark is final
                if w.mark_ts is not None:
                    marks[(market, w.mark_ts)] = Mark.of(w, w.mark_ts)
                w.mark_ts = mark_ts
                marks[(market, mark_ts)] = _UNSET  # keeps the keys in first-seen order
            sigs = delivered.get((market, ts), ()) if delivered else ()
            for sig in sigs:
                if sig.decided_ts <= ts:
                    self._queue(w, sig, changes)
            if w.pending and any(o.decided_ts <= ts for o in w.pending):
                w.load(self._fill_due(w.snapshot(), bar, changes))
            w.last_price = bar.close
            w.last_bar_ts = ts
            if w.volume > 0 and bar.high > w.max_price:  # max(), which keeps the first of equals
                w.max_price = bar.high
            if w.exit_plan is not None:
                self._check_exit_plan(w, bar)
            for sig in sigs:
                if sig.decided_ts > ts:
                    self._queue(w, sig, changes)
        for m, w in working.items():
            if w.touched:
                self.positions[m] = w.snapshot()
                if w.mark_ts is not None:
                    marks[(m, w.mark_ts)] = Mark.of(w, w.mark_ts)  # the last position per interval
        return changes

    # --- queueing -----------------------------------------------------------------------

    def _queue(self, pos: _Working, sig: SignalRaised, changes: BookChanges) -> None:
        why = self._not_applicable(pos, sig)
        if why:
            changes.ignored.append((sig, why))
            return
        pos.pending = (*pos.pending, Order.from_signal(sig))

    def _not_applicable(self, pos: Position | _Working, sig: SignalRaised) -> str:
        entry_queued = any(o.kind is SignalKind.ENTER_LONG for o in pos.pending)
        if sig.kind is SignalKind.ENTER_LONG:
            if pos.is_long and not self._is_dust(pos, pos.last_price or sig.price):
                return "already long"
            if entry_queued:
                return "an entry is already queued"
            if pos.cooldown_until is not None and sig.decided_ts < pos.cooldown_until:
                return f"re-buy cooldown until {pos.cooldown_until}"
            return ""
        if not (pos.is_long or entry_queued):
            return "no position"
        if any(o.kind is SignalKind.EXIT for o in pos.pending):
            return "an exit is already queued"
        if sig.kind is SignalKind.PARTIAL_EXIT:
            if any(o.kind is SignalKind.PARTIAL_EXIT for o in pos.pending):
                return "a partial exit is already queued"
            if sig.once and pos.partial_taken:
                return "a partial exit was already taken"
        return ""

    # --- filling ------------------------------------------------------------------------

    def _fill_due(self, pos: Position, bar: Bar, changes: BookChanges) -> Position:
        due = [o for o in pos.pending if o.decided_ts <= bar.ts]
        if not due:
            return pos
        pos = replace(pos, pending=tuple(o for o in pos.pending if o.decided_ts > bar.ts))
        for order in due:
            pos, resolved = self._fill(pos, order, bar)
            changes.resolved.append(resolved)
            if resolved.fill is not None:
                changes.fills.append(resolved.fill)
        return pos

    def _fill(self, pos: Position, order: Order, bar: Bar) -> tuple[Position, Resolved]:
        def rejected(note: str) -> tuple[Position, Resolved]:
            return pos, Resolved(order=order, status="rejected", ts=bar.ts, note=note)

        if not is_krw_market(pos.market):
            return rejected("paper trading covers KRW markets only")
        at = datetime.fromtimestamp(bar.ts, UTC)
        minimum = rules.min_order_total(pos.market, at=at)
        if order.kind is SignalKind.ENTER_LONG:
            if pos.cooldown_until is not None and bar.ts < pos.cooldown_until:
                return rejected(f"re-buy cooldown until {pos.cooldown_until}")
            if pos.is_long and not self._is_dust(pos, bar.open):
                return rejected("already long")
            krw = order.amount_krw if order.amount_krw is not None else self.order_krw
            price = self._price(bar.open, buy=True, market=pos.market, at=at)
            volume = rules.round_volume(krw / price)
            amount = price * volume
            if amount < minimum:
                return rejected(f"order total {amount:f} KRW is under the {minimum} KRW minimum")
            return self._buy(pos, order, bar, price, volume)
        if not pos.is_long:
            return rejected("no position")
        price = self._price(bar.open, buy=False, market=pos.market, at=at)
        volume, note = pos.volume, ""
        if order.kind is SignalKind.PARTIAL_EXIT:
            if order.once and pos.partial_taken:
                return rejected("a partial exit was already taken")
            assert order.fraction is not None
            part = rules.round_volume(pos.volume * order.fraction)
            if price * part < minimum:
                return rejected(f"a {order.fraction} partial ({price * part:f} KRW) is under the {minimum} KRW minimum")
            if price * (pos.volume - part) < minimum:
                note = "the remainder would be under the minimum order total: sold everything"
            else:
                volume = part
        elif price * volume < minimum:
            return rejected(f"position worth {price * volume:f} KRW is under the {minimum} KRW minimum (kept as dust)")
        return self._sell(pos, order, bar, price, volume, note)

    def _buy(self, pos: Position, order: Order, bar: Bar, price: Decimal, volume: Decimal) -> tuple[Position, Resolved]:
        amount = price * volume
        fee = _krw(amount * self._fee_rate(pos.market))
        held = pos.volume + volume
        cost = pos.cost_krw + amount
        new = replace(
            pos, volume=held, cost_krw=cost, avg_price=price if not pos.is_long else cost / held,
            entry_fee_krw=pos.entry_fee_krw + fee, max_price=max(bar.open, pos.max_price if pos.is_long else ZERO),
            fees_krw=pos.fees_krw + fee, trades=pos.trades + 1, entered_ts=bar.ts, partial_taken=False,
            cooldown_until=None, exit_plan=order.exit_plan,
        )
        fill = self._fill_record(order, bar, side="buy", price=price, volume=volume, amount=amount, fee=fee,
                                 pnl=ZERO, held=held)
        return new, Resolved(order=order, status="filled", ts=bar.ts, fill=fill)

    def _sell(self, pos: Position, order: Order, bar: Bar, price: Decimal, volume: Decimal,
              note: str) -> tuple[Position, Resolved]:
        amount = price * volume
        fee = _krw(amount * self._fee_rate(pos.market))
        if volume == pos.volume:
            cost, entry_fee = pos.cost_krw, pos.entry_fee_krw
        else:
            cost, entry_fee = _krw(pos.cost_krw * volume / pos.volume), _krw(pos.entry_fee_krw * volume / pos.volume)
        pnl = amount - fee - cost - entry_fee
        held = pos.volume - volume
        totals = replace(pos, realized_pnl=pos.realized_pnl + pnl, fees_krw=pos.fees_krw + fee, trades=pos.trades + 1)
        if held == 0:
            new = replace(totals, volume=ZERO, avg_price=ZERO, cost_krw=ZERO, entry_fee_krw=ZERO, max_price=ZERO,
                          entered_ts=None, partial_taken=False, exit_plan=None,
                          cooldown_until=bar.ts + self.cooldown_s if self.cooldown_s else None,
                          pending=tuple(o for o in pos.pending if o.kind not in EXITS))
        else:
            new = replace(totals, volume=held, cost_krw=pos.cost_krw - cost,
                          entry_fee_krw=pos.entry_fee_krw - entry_fee, partial_taken=True)
        fill = self._fill_record(order, bar, side="sell", price=price, volume=volume, amount=amount, fee=fee,
                                 pnl=pnl, held=held)
        return new, Resolved(order=order, status="filled", ts=bar.ts, note=note, fill=fill)

    def _fill_record(self, order: Order, bar: Bar, *, side: str, price: Decimal, volume: Decimal, amount: Decimal,
                     fee: Decimal, pnl: Decimal, held: Decimal) -> Fill:
        return Fill(market=order.market, side=side, price=price, volume=volume, amount_krw=amount, fee_krw=fee,
                    realized_pnl=pnl, reason=order.reason, bar_ts=order.bar_ts, source=bar.source.value,
                    intent=order.kind.value, fill_ts=bar.ts, signal_price=order.signal_price,
                    market_price=bar.open, origin=order.origin, position_volume=held)

    def _price(self, trade_price: Decimal, *, buy: bool, market: str, at: datetime) -> Decimal:
        """The fill price: the trade price moved by the slippage against us, on the tick grid."""
        if not self.slippage_bps:
            return trade_price
        moved = trade_price * (1 + self.slippage_bps / BPS if buy else 1 - self.slippage_bps / BPS)
        # round_price rounds an ask up and a bid down: we want up for our buy, down for our sale
        return rules.round_price(moved, side="ask" if buy else "bid", market=market, at=at)

    def _fee_rate(self, market: str) -> Decimal:
        return self.fee_rate if self.fee_rate is not None else rules.fee_rate(market)

    @staticmethod
    def _is_dust(pos: Position | _Working, price: Decimal) -> bool:
        """Held, but worth less than the minimum order total: it cannot be sold."""
        if not is_krw_market(pos.market):
            return False
        return price * pos.volume < rules.MIN_ORDER_TOTAL_KRW

    # --- exit plan ----------------------------------------------------------------------

    def _check_exit_plan(self, pos: _Working, bar: Bar) -> None:
        plan = pos.exit_plan
        if plan is None or not pos.is_long or bar.incomplete or self._is_dust(pos, bar.close):
            return
        if any(o.kind in EXITS for o in pos.pending):
            return  # already on its way out
        kind, reason = exit_plan_decision(plan, entry=pos.avg_price, max_price=pos.max_price,
                                          entered_ts=pos.entered_ts, partial_taken=pos.partial_taken,
                                          close=bar.close, ts=bar.ts)
        if kind is None:
            return
        order = Order(market=pos.market, kind=kind, reason=reason, origin="exit_plan", bar_ts=bar.ts,
                      signal_price=bar.close, decided_ts=bar.ts + 1,
                      fraction=plan.partial_fraction if kind is SignalKind.PARTIAL_EXIT else None)
        pos.pending = (*pos.pending, order)


_POSITION_FIELDS = tuple(f.name for f in fields(Position))


class _Held(Protocol):
    """What the position figures read (a :class:`Position` or its working copy)."""

    @property
    def volume(self) -> Decimal: ...
    @property
    def cost_krw(self) -> Decimal: ...
    @property
    def entry_fee_krw(self) -> Decimal: ...
    @property
    def last_price(self) -> Decimal | None: ...


def _exposure(pos: _Held) -> Decimal:
    return ZERO if pos.last_price is None else pos.last_price * pos.volume


def _unrealized(pos: _Held) -> Decimal:
    if pos.volume <= 0 or pos.last_price is None:
        return ZERO
    return pos.last_price * pos.volume - pos.cost_krw - pos.entry_fee_krw


class _Working:
    """A mutable copy of a :class:`Position` inside one ``apply`` (never leaves the book)."""

    __slots__ = (*_POSITION_FIELDS, "mark_ts", "touched")

    def __init__(self, pos: Position) -> None:
        self.load(pos)
        self.mark_ts: int | None = None  # the mark interval of the last bar applied in this apply
        self.touched = False  # a bar was applied: the position is part of the changes

    def load(self, pos: Position) -> None:
        for name in _POSITION_FIELDS:
            setattr(self, name, getattr(pos, name))

    def snapshot(self) -> Position:
        return Position(**{name: getattr(self, name) for name in _POSITION_FIELDS})

    # the same figures as Position's (Mark.of reads them)
    @property
    def is_long(self) -> bool:
        return self.volume > 0

    @property
    def exposure_krw(self) -> Decimal:
        return _exposure(self)

    @property
    def unrealized_pnl(self) -> Decimal:
        return _unrealized(self)

    if TYPE_CHECKING:
        market: str
        volume: Decimal
        avg_price: Decimal
        cost_krw: Decimal
        entry_fee_krw: Decimal
        max_price: Decimal
        realized_pnl: Decimal
        fees_krw: Decimal
        trades: int
        last_price: Decimal | None
        last_bar_ts: int | None
        entered_ts: int | None
        partial_taken: bool
        cooldown_until: int | None
        exit_plan: ExitPlan | None
        pending: tuple[Order, ...]


_UNSET: Mark = cast("Mark", None)  # a mark key reserved in order; its value is set before apply returns
