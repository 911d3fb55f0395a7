"""The backtest's figures, computed from the paper trade list alone. Pure: values in, values out.

Input: the run's paper fills (``paper_trades`` rows, in id order), the window ``[start, end)``
and the last price of every market (to value a position still open at the end). Positions are
rebuilt from the fills themselves (long-only, average cost), so the figures do not depend on
how the paper book keeps its own state. Definitions:

- **trades**: every fill (buys and sells). A **closed trade** is a sell (it reduces a position);
  it is *won* when its realised PnL is > 0, *lost* otherwise. **win rate** = won / closed × 100.
- **PnL after fees** (``pnl_krw``): the sum of the sells' realised PnL, which the paper book
  records net of both fees (proceeds − sell fee − cost − entry fee). A position still open at
  the end is not in it; it is shown apart as ``unrealized_pnl_krw`` = last price × volume −
  cost − entry fees.
- **fees**: the sum of every fill's fee.
- **capital** (``capital_krw``): the most KRW ever committed at once (the sum of the open
  positions' cost, at its peak). **return** = PnL / capital × 100.
- **equity**: realised PnL after each closed trade, starting at 0 (closed-trade equity, as
  freqtrade measures drawdown). **max drawdown** = the largest fall of equity from its running
  peak (peak starts at 0), in KRW. (No percentage: the paper book has no account balance to
  relate it to, and losses can exceed the capital deployed at once.)
- **exposure**: the share of the window during which at least one position was open, in %;
  a position is open from the bar of its first buy to the bar of the sell that closes it (or
  the end of the window).
- **Sharpe (daily)**: over every UTC calendar day the window touches (days without a closed
  trade count as 0), with ``p_d`` the realised PnL of day ``d``:
  ``mean(p) / stdev(p) × √365``, ``stdev`` the sample standard deviation (n − 1). It is the
  same ratio on daily returns ``p_d / capital`` (capital cancels out); no risk-free rate; 365
  because crypto trades every day. Undefined (``None``) with fewer than 2 days or no variation.

All arithmetic is ``Decimal`` under an explicit context, so the same fills give the same digits
on every machine. KRW amounts are rounded to 8 decimals, percentages to 2, the ratio to 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal

__all__ = ["EquityPoint", "Figures", "OpenPosition", "PaperTrade", "Report", "ReportError", "compute",
           "iso", "plain"]

_CTX = Context(prec=50, rounding=ROUND_HALF_EVEN)
_KRW = Decimal("0.00000001")
_PCT = Decimal("0.01")
_RATIO = Decimal("0.001")
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_DAY_MS = 86_400_000
_DAYS_PER_YEAR = Decimal(365)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReportError(ValueError):
    """The trade list is inconsistent (e.g. a sell larger than the position it closes)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperTrade:
    """One paper fill, as ``paper_trades`` stores it."""

    id: int
    market: str
    side: str  # buy | sell
    price: Decimal
    volume: Decimal
    amount_krw: Decimal
    fee_krw: Decimal
    realized_pnl: Decimal  # net of both fees, on sells; 0 on buys
    reason: str
    fill_ts: int  # epoch seconds of the (1-second) bar the fill happened on


@dataclass(frozen=True, slots=True, kw_only=True)
class EquityPoint:
    """Closed-trade equity (realised PnL after fees) at a moment."""

    ts_ms: int
    equity_krw: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPosition:
    """A position still open at the end of the window, valued at the last price."""

    market: str
    volume: Decimal
    cost_krw: Decimal
    entry_fees_krw: Decimal
    last_price: Decimal | None
    unrealized_pnl_krw: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """The headline numbers (see the module docstring for each definition)."""

    trades: int
    closed_trades: int
    wins: int
    losses: int
    win_rate_pct: Decimal | None
    pnl_krw: Decimal
    unrealized_pnl_krw: Decimal
    fees_krw: Decimal
    capital_krw: Decimal
    return_pct: Decimal | None
    max_drawdown_krw: Decimal
    exposure_pct: Decimal | None
    sharpe_daily: Decimal | None
    days: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Figures, the equity curve and what is still open."""

    figures: Figures
    equity: tuple[EquityPoint, ...]
    open_positions: tuple[OpenPosition, ...]


@dataclass(slots=True)
class _Lot:
    volume: Decimal = _ZERO
    cost: Decimal = _ZERO
    entry_fees: Decimal = _ZERO
    opened_ms: int = 0


def compute(trades: Sequence[PaperTrade], *, start_ms: int, end_ms: int,
            last_prices: Mapping[str, Decimal]) -> Report:
    """The figures of a run whose fills are ``trades`` (in fill order) over ``[start_ms, end_ms)``."""
    if end_ms <= start_ms:
        raise ValueError(f"empty window: end {end_ms} is not after start {start_ms}")
    lots: dict[str, _Lot] = {}
    intervals: list[tuple[int, int]] = []
    equity = [EquityPoint(ts_ms=start_ms, equity_krw=_ZERO)]
    realized = fees = capital = _ZERO
    wins = losses = 0
    daily: dict[int, Decimal] = {}
    for t in trades:
        fees += t.fee_krw
        lot = lots.setdefault(t.market, _Lot())
        ts_ms = t.fill_ts * 1000
        if t.side == "buy":
            if lot.volume == 0:
                lot.opened_ms = ts_ms
            lot.volume += t.volume
            lot.cost += t.amount_krw
            lot.entry_fees += t.fee_krw
            capital = max(capital, sum((lt.cost for lt in lots.values()), _ZERO))
            continue
        if t.side != "sell":
            raise ReportError(f"paper trade {t.id}: side must be buy or sell, got {t.side!r}")
        if t.volume > lot.volume:
            raise ReportError(f"paper trade {t.id}: sells {t.volume} {t.market} but the position holds {lot.volume}")
        share = _CTX.divide(t.volume, lot.volume)
        lot.cost -= _CTX.multiply(lot.cost, share)
        lot.entry_fees -= _CTX.multiply(lot.entry_fees, share)
        lot.volume -= t.volume
        if lot.volume == 0:
            intervals.append((lot.opened_ms, ts_ms))
            lot.cost = lot.entry_fees = _ZERO
        realized += t.realized_pnl
        if t.realized_pnl > 0:
            wins += 1
        else:
            losses += 1
        day = ts_ms // _DAY_MS
        daily[day] = daily.get(day, _ZERO) + t.realized_pnl
        equity.append(EquityPoint(ts_ms=ts_ms, equity_krw=realized))
    still_open = []
    for market in sorted(lots):
        lot = lots[market]
        if lot.volume > 0:
            intervals.append((lot.opened_ms, end_ms))
            last = last_prices.get(market)
            value = _CTX.multiply(last, lot.volume) if last is not None else lot.cost
            still_open.append(OpenPosition(
                market=market, volume=lot.volume, cost_krw=_krw(lot.cost), entry_fees_krw=_krw(lot.entry_fees),
                last_price=last, unrealized_pnl_krw=_krw(value - lot.cost - lot.entry_fees)))
    equity.append(EquityPoint(ts_ms=end_ms, equity_krw=realized))
    closed = wins + losses
    dd_krw = _drawdown([p.equity_krw for p in equity])
    days = range(start_ms // _DAY_MS, (end_ms - 1) // _DAY_MS + 1)
    figures = Figures(
        trades=len(trades), closed_trades=closed, wins=wins, losses=losses,
        win_rate_pct=_pct(Decimal(wins), Decimal(closed)) if closed else None,
        pnl_krw=_krw(realized),
        unrealized_pnl_krw=_krw(sum((p.unrealized_pnl_krw for p in still_open), _ZERO)),
        fees_krw=_krw(fees),
        capital_krw=_krw(capital),
        return_pct=_pct(realized, capital) if capital else None,
        max_drawdown_krw=_krw(dd_krw),
        exposure_pct=_pct(Decimal(_covered(intervals, start_ms, end_ms)), Decimal(end_ms - start_ms)),
        sharpe_daily=_sharpe([daily.get(d, _ZERO) for d in days]),
        days=len(days),
    )
    return Report(figures=figures, equity=tuple(equity), open_positions=tuple(still_open))


def _drawdown(equity: Sequence[Decimal]) -> Decimal:
    peak = worst = _ZERO
    for value in equity:
        peak = max(peak, value)
        worst = max(worst, peak - value)
    return worst


def _covered(intervals: Iterable[tuple[int, int]], start_ms: int, end_ms: int) -> int:
    """Milliseconds of ``[start_ms, end_ms)`` inside at least one interval."""
    covered, reach = 0, start_ms
    for lo, hi in sorted((max(lo, start_ms), min(hi, end_ms)) for lo, hi in intervals):
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return covered


def _sharpe(daily: Sequence[Decimal]) -> Decimal | None:
    n = len(daily)
    if n < 2:
        return None
    mean = _CTX.divide(sum(daily, _ZERO), Decimal(n))
    variance = _CTX.divide(sum((_CTX.power(d - mean, 2) for d in daily), _ZERO), Decimal(n - 1))
    if variance == 0:
        return None
    ratio = _CTX.multiply(_CTX.divide(mean, _CTX.sqrt(variance)), _CTX.sqrt(_DAYS_PER_YEAR))
    return ratio.quantize(_RATIO, context=_CTX)


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return _CTX.divide(_CTX.multiply(part, _HUNDRED), whole).quantize(_PCT, context=_CTX)


def _krw(value: Decimal) -> Decimal:
    return value.quantize(_KRW, context=_CTX)


def plain(value: Decimal) -> str:
    """A decimal as JSON-safe text: plain notation, no trailing zeros, never ``-0`` or ``1E+2``."""
    if value == 0:
        return "0"
    return format(value.normalize(_CTX), "f")


def iso(ts_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2024-08-24T22:28:00Z``; milliseconds only if any)."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    text = moment.isoformat(timespec="milliseconds" if ts_ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")
