"""Risk limits for test/live entries, the KRW budget, and sell sizing: pure, time passed in.

:func:`check_entry` lists every limit a buy would break, each naming its setting, so the
attempt's error says what to change. An empty tuple means the entry is within limits; the
caller passes the violations to :func:`execution.guards.gate` as ``IntentFacts.risk`` (reason
``RISK_LIMIT``). The limits, from :class:`~config.settings.RiskSettings`:

* ``RISK_MAX_ORDER_KRW``: the order total may equal it, not exceed it;
* ``RISK_MAX_POSITIONS``: a market not already open needs a free slot (``open_markets`` counts
  markets held live or with a non-final buy in flight); adding to an open market is not limited;
* ``RISK_REBUY_COOLDOWN_S``: no buy of a market until this many seconds have passed since its
  last sell (at exactly that many it is allowed); 0 = no cooldown;
* ``LIVE_MARKETS``: a live order's market must be listed; an empty list allows none;
* ``RISK_DAILY_LOSS_KRW``: once the realised loss of the current UTC day reaches it, entries stop
  (the caller also trips the kill switch, :func:`daily_loss_breached`); 0 = no daily limit. In
  live mode the realised loss is our *live* ledger's (:func:`live_realized`: real fills and real
  fees, so slippage counts: :func:`model.risk.live_realized`), never the paper book's.

Exits (sells) are checked by :func:`check_exit` against the limits that bound what an order may
do, not against those that bound new exposure: ``LIVE_MARKETS`` (live) and ``RISK_MAX_ORDER_KRW``
(the order's estimated total, volume × the intent's price). A refused exit is not dropped: the
engine keeps it pending and visible until an operator decides (see :mod:`execution.engine`).

:func:`sell_volume` sizes a live sell to what *our own* ledger holds of the market and nothing
more: coins the account holds that this bot did not buy are never sold. It never falls back to
the paper volume: a holding of 0 (or an unknown one) sells 0, and the caller blocks the exit
with ``NOTHING_HELD`` (as it does when the volume is worth less than the venue's minimum order,
:func:`below_venue_minimum`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from config.settings import RiskSettings
from model.risk import RiskState, aware
from exchange.rules import min_order_total, quote_currency, round_volume

__all__ = ["KrwBudget", "below_venue_minimum", "check_entry", "check_exit", "daily_loss_breached",
           "sell_volume"]

_ZERO = Decimal(0)


def _krw(amount: Decimal) -> str:
    """``1,200,000`` (whole won) or ``1,234.5`` (fractions kept, trailing zeros dropped)."""
    if amount == amount.to_integral_value():
        return f"{amount.quantize(Decimal(1)):,f}"
    return f"{amount.normalize():,f}"


def _seconds(value: float) -> str:
    """``300``, ``59.5``, ``0.001``: at most three decimals, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def check_entry(*, market: str, amount_krw: Decimal, now: datetime, state: RiskState,  # noqa: PLR0913
                limits: RiskSettings, live: bool) -> tuple[str, ...]:
    """Every risk limit a buy of ``amount_krw`` on ``market`` at ``now`` breaks; ``()`` = none."""
    aware(now, "now")
    problems: list[str] = []
    if amount_krw > limits.max_order_krw:
        problems.append(f"order total {_krw(amount_krw)} KRW above RISK_MAX_ORDER_KRW={_krw(limits.max_order_krw)}")
    opened = len(state.open_markets)
    if market not in state.open_markets and opened >= limits.max_positions:
        problems.append(f"{opened} markets open, {market} would be one more than "
                        f"RISK_MAX_POSITIONS={limits.max_positions}")
    last_sell = state.last_sell_at.get(market)
    if last_sell is not None and limits.rebuy_cooldown_s > 0:
        elapsed = (now - aware(last_sell, "last_sell_at")).total_seconds()
        if elapsed < limits.rebuy_cooldown_s:
            problems.append(f"{market} sold {_seconds(elapsed)} s ago, within "
                            f"RISK_REBUY_COOLDOWN_S={_seconds(limits.rebuy_cooldown_s)}")
    if live and market not in limits.live_markets:
        allowed = ",".join(limits.live_markets) or "empty: no market may trade live"
        problems.append(f"{market} not in LIVE_MARKETS ({allowed})")
    if daily_loss_breached(state.realized_today_krw, limits):
        problems.append(f"realised loss today {_krw(-state.realized_today_krw)} KRW reached "
                        f"RISK_DAILY_LOSS_KRW={_krw(limits.daily_loss_krw)}")
    return tuple(problems)




def daily_loss_breached(realized_today_krw: Decimal, limits: RiskSettings) -> bool:
    """True when today's realised loss reached ``RISK_DAILY_LOSS_KRW`` (0 = no limit)."""
    return limits.daily_loss_krw > 0 and -realized_today_krw >= limits.daily_loss_krw


@dataclass(frozen=True, slots=True)
class _Reservation:
    amount: Decimal
    at: datetime  # from when the exchange may hold the order (reserve, then placed)


class KrwBudget:
    """Free KRW as last read from the exchange, minus what in-flight buys reserved since.

    Concurrent entries must never spend the same won twice, so each buy *reserves* its total
    (keyed by the attempt identifier) before it is sent, and :meth:`reserve` refuses when less
    is available. A reservation stays until :meth:`release` (the order reached a final state, or
    was never sent), because the exchange locks the KRW when the order is placed and spends it at
    the fill.

    A balance read *after* the order was placed already excludes the locked (or spent) KRW, so
    subtracting that reservation again would count it twice. Each reservation therefore keeps its
    time, and::

        available = latest observed free KRW - sum(amount of reservations with at >= observed_at)

    * A reservation made at the same instant as the observation still counts (conservative).
    * Reservations older than the latest observation are kept until released, but no longer
      subtracted.
    * ``reserve``'s ``at`` is the reservation's time. The exchange locks the KRW a little later,
      when it accepts the order; a read in between does not show the lock yet. A caller that knows
      when the exchange confirmed the order moves the reservation's time there with
      :meth:`placed`, closing that gap.
    * ``observe``'s ``at`` should be when the balance request was *sent*: only orders placed
      before it are certainly reflected. An observation older than the latest is ignored (a slow
      read answering late).
    * Releasing a *spent* reservation (``release(key)``, the default: the order filled, or may
      have) keeps subtracting its amount until a read after it arrives, because the last read
      still shows those won as free. ``release(key, spent=False)`` (never sent, refused, or
      cancelled without any fill) drops it at once: the won are free again.

    ``available`` is ``None`` until the first observation (and nothing can be reserved then), and
    never negative: an over-committed budget (the free KRW fell below what was reserved after the
    read, e.g. by a withdrawal) reports 0. Not thread-safe: one actor owns it.
    """

    def __init__(self) -> None:
        """An unknown balance with no reservations."""
        self._free: Decimal | None = None
        self._observed_at: datetime | None = None
        self._reservations: dict[str, _Reservation] = {}
        self._spent: list[_Reservation] = []  # released, not yet reflected in a read

    def observe(self, free_krw: Decimal, at: datetime) -> None:
        """A balance read of ``free_krw`` at ``at``; ignored when older than the latest one."""
        aware(at, "at")
        if not free_krw.is_finite() or free_krw < 0:
            raise ValueError(f"free KRW must be a finite amount >= 0, got {free_krw!r}")
        if self._observed_at is not None and at < self._observed_at:
            return
        self._free, self._observed_at = free_krw, at
        self._spent = [r for r in self._spent if r.at >= at]

    def reserve(self, key: str, amount: Decimal, at: datetime) -> bool:
        """Reserve ``amount`` for ``key``: ``False`` (nothing reserved) when less is available.

        The balance must have been observed. Reserving a key that already holds a reservation
        changes nothing and returns ``True``.
        """
        aware(at, "at")
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"a reservation must be a positive amount, got {amount!r}")
        if key in self._reservations:
            return True
        available = self.available
        if available is None or available < amount:
            return False
        self._reservations[key] = _Reservation(amount, at)
        return True

    def placed(self, key: str, at: datetime) -> None:
        """The exchange accepted ``key``'s order at ``at``: only reads after it reflect the lock.

        Moves the reservation's time forward, never back; unknown keys are ignored.
        """
        aware(at, "at")
        held = self._reservations.get(key)
        if held is not None and at > held.at:
            self._reservations[key] = _Reservation(held.amount, at)

    def release(self, key: str, *, spent: bool = True) -> None:
        """``key``'s order is final or was never sent; unknown keys are ignored.

        ``spent`` (the safe default) keeps the amount subtracted until a later read shows it
        gone; ``spent=False`` frees it at once (nothing was sent, or it was cancelled unfilled).
        """
        held = self._reservations.pop(key, None)
        if held is not None and spent and self._counts(held):
            self._spent.append(held)

    def _counts(self, reservation: _Reservation) -> bool:
        return self._observed_at is None or reservation.at >= self._observed_at

    @property
    def available(self) -> Decimal | None:
        """KRW that may still be reserved; ``None`` before the first observation."""
        if self._free is None:
            return None
        held = [*self._reservations.values(), *self._spent]
        pending = sum((r.amount for r in held if self._counts(r)), _ZERO)
        return max(self._free - pending, _ZERO)

    @property
    def reserved(self) -> Mapping[str, Decimal]:
        """The reservations not yet released, by key (a copy)."""
        return {key: r.amount for key, r in self._reservations.items()}


def check_exit(*, market: str, volume: Decimal, price: Decimal, limits: RiskSettings, live: bool) -> tuple[str, ...]:
    """Every limit a sell of ``volume`` at about ``price`` breaks; ``()`` = none.

    The order's total is estimated as ``volume × price`` (a market sell's proceeds are not known
    before it fills). ``LIVE_MARKETS`` applies to live orders only, as for entries.
    """
    for what, value in (("volume", volume), ("price", price)):
        if not value.is_finite() or value < 0:
            raise ValueError(f"{what} must be a finite amount >= 0, got {value!r}")
    problems: list[str] = []
    total = volume * price
    if total > limits.max_order_krw:
        problems.append(f"sell total about {_krw(total.quantize(Decimal(1)))} KRW above "
                        f"RISK_MAX_ORDER_KRW={_krw(limits.max_order_krw)}")
    if live and market not in limits.live_markets:
        allowed = ",".join(limits.live_markets) or "empty: no market may trade live"
        problems.append(f"{market} not in LIVE_MARKETS ({allowed})")
    return tuple(problems)


ALL_OF_IT = Decimal("0.99")
"""An exit asking for at least this share of what is held sells all of it (no dust is left)."""


def sell_volume(requested: Decimal, held: Decimal, market: str) -> Decimal:
    """The volume a live sell may carry: what our ledger holds of ``market``, never more.

    ``held`` is the volume our own fills bought and did not sell, minus what our open sells
    still have on the book. An exit that asks for (nearly) all of it — ``requested >= held ×
    ALL_OF_IT``, since a market buy of a KRW total rarely buys exactly the paper volume — sells
    all of it; a smaller (partial) exit sells ``requested``. The result is rounded down to the
    exchange's precision. 0 means there is nothing of ours to sell: the caller blocks the exit
    (``NOTHING_HELD``) and never sends it. ``market`` is validated as an Upbit market id.
    """
    quote_currency(market)
    for what, value in (("requested", requested), ("held", held)):
        if not value.is_finite() or value < 0:
            raise ValueError(f"{what} volume must be a finite amount >= 0, got {value!r}")
    if held == 0:
        return _ZERO
    wanted = held if requested >= held * ALL_OF_IT else requested
    return round_volume(min(wanted, held))


def below_venue_minimum(volume: Decimal, price: Decimal, market: str, *, at: datetime | None = None) -> bool:
    """True when a sell of ``volume`` at about ``price`` is worth less than the venue's minimum order
    total (Upbit refuses it as ``under_min_total_ask``): such a holding cannot be sold on its own."""
    return volume <= 0 or volume * price < min_order_total(market, at=at)
