"""JSON shapes of the exchange (private) endpoints: orders, trades, accounts, order chance.

Exchange endpoints write decimals as **strings** (``"balance":"0.005"``) and times as ISO-8601 in
KST with a ``+09:00`` offset, as ``api.upbit.com`` does (``docs/upbit-api.md`` §2.1).
Decimals are written exactly, without exponent or trailing zeros (``"0.0015"``, ``"8004"``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Final

from upbit_sim.ledger import Holding
from upbit_sim.orders import Fill, Order

__all__ = ["KST", "account_json", "dec", "iso_kst", "order_json"]

KST: Final = timezone(timedelta(hours=9))


def dec(value: Decimal) -> str:
    """A decimal as Upbit writes it in exchange answers: plain, exact, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def iso_kst(moment: datetime, *, micros: bool = False) -> str:
    """``2018-04-10T15:42:23+09:00`` (with microseconds for trade rows)."""
    return moment.astimezone(KST).isoformat(timespec="microseconds" if micros else "seconds")


def order_json(order: Order, *, with_trades: bool = False) -> dict[str, object]:
    """An order as GET /v1/order (``with_trades``) or POST/DELETE and the lists return it."""
    r = order.request
    body: dict[str, object] = {
        "uuid": order.uuid,
        "side": r.side,
        "ord_type": r.ord_type,
        "price": dec(r.price) if r.price is not None else None,
        "state": order.state,
        "market": r.market,
        "created_at": iso_kst(order.created_at),
        "volume": dec(r.volume) if r.volume is not None else None,
        "remaining_volume": dec(order.remaining_volume) if order.remaining_volume is not None else None,
        "reserved_fee": dec(order.reserved_fee),
        "remaining_fee": dec(order.remaining_fee),
        "paid_fee": dec(order.paid_fee),
        "locked": dec(order.locked),
        "executed_volume": dec(order.executed_volume),
        "executed_funds": dec(order.executed_funds),
        "prevented_volume": "0",
        "prevented_locked": "0",
        "trades_count": len(order.fills),
    }
    if r.time_in_force is not None:
        body["time_in_force"] = r.time_in_force
    if r.smp_type is not None:
        body["smp_type"] = r.smp_type
    if r.identifier is not None:
        body["identifier"] = r.identifier
    if with_trades:
        body["trades"] = [_fill_json(order, fill) for fill in order.fills]
    return body


def _fill_json(order: Order, fill: Fill) -> dict[str, object]:
    return {
        "market": order.market,
        "uuid": fill.uuid,
        "price": dec(fill.price),
        "volume": dec(fill.volume),
        "funds": dec(fill.funds),
        "trend": fill.trend,
        "created_at": iso_kst(fill.created_at, micros=True),
        "side": order.side,
    }


def account_json(currency: str, holding: Holding, unit_currency: str = "KRW") -> dict[str, object]:
    """One ``/v1/accounts`` entry."""
    return {
        "currency": currency,
        "balance": dec(holding.balance),
        "locked": dec(holding.locked),
        "avg_buy_price": dec(holding.avg_buy_price),
        "avg_buy_price_modified": holding.avg_buy_price_modified,
        "unit_currency": unit_currency,
    }
