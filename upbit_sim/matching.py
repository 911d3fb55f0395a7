"""Fills: how the replayed trade stream executes the simulated orders of one market.

A real exchange matches against its order book; the simulator has only the recorded trades, so
an order fills when a recorded trade *prints* through it (``docs/upbit-api.md`` has no rule for this;
it is the simulator's model, chosen to be conservative and deterministic):

- a **limit bid** fills when a trade prints at or below its price, a **limit ask** at or above.
  A resting order fills at its own price; an order that was marketable when placed (a bid at or
  above the last trade, an ask at or below it) takes the price of the first trade that fills it;
- **market orders** (``price`` buys by total, ``market`` sells by volume, ``best``) fill at the
  price of the next trade of their market;
- the volume one trade can fill is the trade's volume, shared by the simulated orders of one
  side in price-then-time priority; what is left waits for the next trade;
- ``ioc`` fills what the next trade allows and cancels the rest; ``fok`` fills completely at the
  next trade or is cancelled without a fill; ``best`` is always ioc or fok.

The fee (``exchange.rules.fee_rate``) is charged in the quote currency on every fill: a bid pays
it from its locked funds (``reserved_fee`` was locked with the order), an ask receives the
proceeds less the fee. Buys by total end when what is left cannot buy 1e-8 of the coin; the
order then ends ``done`` if nothing is left, else ``cancel`` with the remainder unlocked (a market
buy ending in ``cancel`` with ``executed_volume > 0`` is what Upbit users report; UNCONFIRMED in
the docs). When an order ends, whatever it still holds is unlocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from model.market import Side, Trade
from upbit_sim.ledger import Ledger
from upbit_sim.orders import Fill, Order

__all__ = ["base_currency", "finish", "match_trade", "quote_of"]

_VOLUME_QUANTUM: Final = Decimal("0.00000001")
_ZERO: Final = Decimal(0)


def quote_of(market: str) -> str:
    return market.partition("-")[0]


def base_currency(market: str) -> str:
    return market.partition("-")[2]


def match_trade(
    orders: Iterable[Order],
    trade: Trade,
    *,
    ledger: Ledger,
    fee_rate: Decimal,
    now: datetime,
    new_uuid: Callable[[], str],
) -> list[Order]:
    """Execute ``trade`` against the open ``orders`` of its market; return the orders it changed."""
    changed: list[Order] = []
    for side in ("bid", "ask"):
        pool = trade.volume
        for order in _priority([o for o in orders if o.is_open and o.side == side], side):
            before = (order.state, order.executed_volume)
            pool -= _execute(order, trade, pool, ledger=ledger, fee_rate=fee_rate, now=now, new_uuid=new_uuid)
            order.evaluated = True
            order.taker = False
            if (order.state, order.executed_volume) != before:
                changed.append(order)
    return changed


def finish(order: Order, state: str, ledger: Ledger, now: datetime) -> None:
    """End ``order`` as ``done`` or ``cancel`` and unlock whatever it still holds."""
    if order.locked > 0:
        currency = quote_of(order.market) if order.side == "bid" else base_currency(order.market)
        ledger.unlock(order.user, currency, order.locked)
    order.locked = _ZERO
    order.remaining_fee = _ZERO
    order.state = state
    order.ended_at = now


def _priority(orders: list[Order], side: str) -> list[Order]:
    def key(order: Order) -> tuple[int, Decimal, int]:
        limit = order.request.price if order.request.ord_type == "limit" else None
        if limit is None:  # market-style orders first
            return (0, _ZERO, order.seq)
        return (1, -limit if side == "bid" else limit, order.seq)

    return sorted(orders, key=key)


def _execute(
    order: Order,
    trade: Trade,
    pool: Decimal,
    *,
    ledger: Ledger,
    fee_rate: Decimal,
    now: datetime,
    new_uuid: Callable[[], str],
) -> Decimal:
    """Fill what ``trade`` allows of ``order`` (up to ``pool``); return the volume used."""
    request = order.request
    tif = request.time_in_force
    if request.ord_type == "limit":
        limit = request.price
        assert limit is not None
        crosses = trade.price <= limit if order.side == "bid" else trade.price >= limit
        price = trade.price if order.taker else limit
    else:
        crosses = True
        price = trade.price
    wanted = _wanted_volume(order, price) if crosses else _ZERO
    volume = min(wanted, pool) if pool > 0 else _ZERO

    if tif == "fok" and (not crosses or volume < wanted or wanted == 0):
        finish(order, "cancel", ledger, now)
        return _ZERO
    if volume > 0:
        _apply_fill(order, price, volume, trade, ledger=ledger, fee_rate=fee_rate, now=now, new_uuid=new_uuid)
    if _complete(order, price):
        state = "cancel" if order.remaining_funds is not None and order.remaining_funds > 0 else "done"
        finish(order, state, ledger, now)
    elif tif in ("ioc", "fok"):
        finish(order, "cancel", ledger, now)
    return volume


def _wanted_volume(order: Order, price: Decimal) -> Decimal:
    if order.remaining_funds is not None:
        return (order.remaining_funds / price).quantize(_VOLUME_QUANTUM, rounding=ROUND_FLOOR)
    assert order.remaining_volume is not None
    return order.remaining_volume


def _complete(order: Order, price: Decimal) -> bool:
    if order.remaining_funds is not None:
        return _wanted_volume(order, price) == 0
    return order.remaining_volume == 0


def _apply_fill(
    order: Order,
    price: Decimal,
    volume: Decimal,
    trade: Trade,
    *,
    ledger: Ledger,
    fee_rate: Decimal,
    now: datetime,
    new_uuid: Callable[[], str],
) -> None:
    quote, base = quote_of(order.market), base_currency(order.market)
    funds = price * volume
    fee = funds * fee_rate
    if order.side == "bid":
        cost = funds + fee
        ledger.spend_locked(order.user, quote, cost)
        ledger.receive_bought(order.user, base, volume, price)
        order.locked -= cost
        order.remaining_fee = max(order.remaining_fee - fee, _ZERO)
    else:
        ledger.spend_locked(order.user, base, volume)
        ledger.receive(order.user, quote, funds - fee)
        order.locked -= volume
    if order.remaining_funds is not None:
        order.remaining_funds -= funds
    if order.remaining_volume is not None:
        order.remaining_volume -= volume
    order.executed_volume += volume
    order.executed_funds += funds
    order.paid_fee += fee
    order.fills.append(
        Fill(
            uuid=new_uuid(), price=price, volume=volume, funds=funds, fee=fee,
            trend="up" if trade.side is Side.BID else "down", created_at=now,
        )
    )
