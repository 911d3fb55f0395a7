"""The paper book: long-only positions, Upbit's fee, realised PnL, in ``Decimal``. No I/O.

Rules (the walking skeleton's simplest real form):
- A bar is applied once per market: bars at or before the market's ``last_bar_ts`` are ignored,
  so re-delivered bars after a restart change nothing.
- ``enter_long`` when flat buys ``order_krw`` worth at the signalling bar's close: volume is
  rounded down to 8 decimals (Upbit's volume precision); fee = amount × fee rate.
- ``exit`` when long sells the whole position at the signalling bar's close. Realised PnL is
  net of both fees: proceeds − sell fee − cost − entry fee.
- Signals that do not apply (enter while long, exit while flat) are ignored, not errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from actors.messages import Bar, SignalKind, SignalRaised

VOLUME_STEP = Decimal("0.00000001")
KRW_STEP = Decimal("0.00000001")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """One market's paper position and running totals."""

    market: str
    volume: Decimal = ZERO
    avg_price: Decimal = ZERO
    entry_fee_krw: Decimal = ZERO
    max_price: Decimal = ZERO  # highest close since entry (0 when flat)
    realized_pnl: Decimal = ZERO
    fees_krw: Decimal = ZERO
    trades: int = 0
    last_price: Decimal | None = None
    last_bar_ts: int | None = None

    @property
    def is_long(self) -> bool:
        return self.volume > 0

    @property
    def unrealized_pnl(self) -> Decimal:
        if not self.is_long or self.last_price is None:
            return ZERO
        return (self.last_price - self.avg_price) * self.volume - self.entry_fee_krw


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
    bar_ts: int
    source: str


@dataclass(slots=True)
class PaperBook:
    """Positions per market; ``apply`` turns bars and signals into fills."""

    order_krw: Decimal
    fee_rate: Decimal
    positions: dict[str, Position] = field(default_factory=dict)

    def position(self, market: str) -> Position:
        return self.positions.get(market) or Position(market=market)

    def apply(self, bars: Iterable[Bar], signals: Iterable[SignalRaised]) -> list[Fill]:
        """Mark bars to market and execute the signals raised on them, in bar order."""
        by_bar: dict[tuple[str, int], list[SignalRaised]] = {}
        for sig in signals:
            by_bar.setdefault((sig.market, sig.bar_ts), []).append(sig)
        fills: list[Fill] = []
        for bar in bars:
            pos = self.position(bar.market)
            if pos.last_bar_ts is not None and bar.ts <= pos.last_bar_ts:
                continue  # already applied before a restart
            pos = replace(
                pos,
                last_price=bar.close,
                last_bar_ts=bar.ts,
                max_price=max(pos.max_price, bar.close) if pos.is_long else pos.max_price,
            )
            for sig in by_bar.get((bar.market, bar.ts), ()):
                pos, fill = self._execute(pos, sig, bar)
                if fill is not None:
                    fills.append(fill)
            self.positions[bar.market] = pos
        return fills

    def _execute(self, pos: Position, sig: SignalRaised, bar: Bar) -> tuple[Position, Fill | None]:
        price = bar.close
        if sig.kind is SignalKind.ENTER_LONG and not pos.is_long:
            volume = (self.order_krw / price).quantize(VOLUME_STEP, rounding=ROUND_DOWN)
            if volume <= 0:
                return pos, None
            amount = price * volume
            fee = (amount * self.fee_rate).quantize(KRW_STEP, rounding=ROUND_HALF_UP)
            new = replace(
                pos, volume=volume, avg_price=price, entry_fee_krw=fee, max_price=price,
                fees_krw=pos.fees_krw + fee, trades=pos.trades + 1,
            )
            return new, Fill(
                market=pos.market, side="buy", price=price, volume=volume, amount_krw=amount, fee_krw=fee,
                realized_pnl=ZERO, reason=sig.reason, bar_ts=bar.ts, source=bar.source.value,
            )
        if sig.kind is SignalKind.EXIT and pos.is_long:
            amount = price * pos.volume
            fee = (amount * self.fee_rate).quantize(KRW_STEP, rounding=ROUND_HALF_UP)
            pnl = amount - fee - pos.avg_price * pos.volume - pos.entry_fee_krw
            new = replace(
                pos, volume=ZERO, avg_price=ZERO, entry_fee_krw=ZERO, max_price=ZERO,
                realized_pnl=pos.realized_pnl + pnl, fees_krw=pos.fees_krw + fee, trades=pos.trades + 1,
            )
            return new, Fill(
                market=pos.market, side="sell", price=price, volume=pos.volume, amount_krw=amount, fee_krw=fee,
                realized_pnl=pnl, reason=sig.reason, bar_ts=bar.ts, source=bar.source.value,
            )
        return pos, None
