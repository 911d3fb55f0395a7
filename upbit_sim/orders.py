"""Orders: the request rules of ``POST /v1/orders`` and the order record the venue keeps.

:func:`parse_order_request` checks a request's fields the way Upbit does (``docs/upbit-api.md`` §2.3,
"POST /v1/orders") and returns an :class:`OrderRequest` or raises :class:`ApiError`:

==========  =====  ==========================================  ================================
ord_type    side   needs                                       must not send
==========  =====  ==========================================  ================================
``limit``   both   ``price`` (on the tick grid) and ``volume``  —
``price``   bid    ``price`` = the total to spend               ``volume``
``market``  ask    ``volume``                                   ``price``
``best``    bid    ``price`` (total), ``time_in_force`` ioc/fok  ``volume``
``best``    ask    ``volume``, ``time_in_force`` ioc/fok        ``price``
==========  =====  ==========================================  ================================

``time_in_force``: ``ioc``/``fok`` only with limit or best; ``post_only`` only with limit and not
together with an ``smp_type`` other than ``none``. Missing or unreadable fields give
``validation_error``; fields that break the combination rules give ``create_bid_error`` /
``create_ask_error`` (the documented cause: a price sent with a market order). Tick, minimum
total and balance are checked by the venue with the market's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from upbit_sim.errors import ApiError
from upbit_sim.params import Params

__all__ = ["Fill", "Order", "OrderRequest", "parse_order_request"]

ORD_TYPES: Final = frozenset({"limit", "price", "market", "best"})
SIDES: Final = frozenset({"bid", "ask"})
TIME_IN_FORCE: Final = frozenset({"ioc", "fok", "post_only"})
SMP_TYPES: Final = frozenset({"cancel_maker", "cancel_taker", "reduce", "none"})
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A well-formed order request (combination rules checked; market rules not yet)."""

    market: str
    side: str  # bid | ask
    ord_type: str  # limit | price | market | best
    price: Decimal | None  # limit price, or the total to spend for price / best bids
    volume: Decimal | None
    time_in_force: str | None
    smp_type: str | None
    identifier: str | None

    @property
    def spends_total(self) -> bool:
        """A market-style buy by quote amount (``price``, or ``best`` bid)."""
        return self.side == "bid" and self.ord_type in ("price", "best")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One execution of an order (a row of GET /v1/order ``trades``)."""

    uuid: str
    price: Decimal
    volume: Decimal
    funds: Decimal
    fee: Decimal
    trend: str  # up | down
    created_at: datetime


@dataclass(slots=True, kw_only=True)
class Order:
    """An order as the venue keeps it; mutated only under the venue's lock."""

    uuid: str
    user: str
    request: OrderRequest
    created_at: datetime
    visible_at: float  # monotonic time from which lookups see it (the lookup_lag fault)
    seq: int  # placement order: time priority among equal prices
    state: str = "wait"  # wait | done | cancel
    remaining_volume: Decimal | None = None  # None for orders by total
    remaining_funds: Decimal | None = None  # quote left to spend, for orders by total
    executed_volume: Decimal = _ZERO
    executed_funds: Decimal = _ZERO
    reserved_fee: Decimal = _ZERO
    remaining_fee: Decimal = _ZERO
    paid_fee: Decimal = _ZERO
    locked: Decimal = _ZERO  # what this order still holds (quote for bids, base for asks)
    taker: bool = False  # marketable when placed: its first fill takes the trade's price
    evaluated: bool = False  # has seen at least one trade since placement
    fills: list[Fill] = field(default_factory=list)
    ended_at: datetime | None = None

    @property
    def market(self) -> str:
        return self.request.market

    @property
    def side(self) -> str:
        return self.request.side

    @property
    def is_open(self) -> bool:
        return self.state == "wait"


def parse_order_request(params: Params) -> OrderRequest:
    """Check the fields of an order request (see the module docstring); raise :class:`ApiError`."""
    market = params.text("market")
    if market is None:
        raise ApiError.validation("market is missing, market does not have a valid value")
    side = params.text("side")
    if side not in SIDES:
        raise ApiError.validation("side is missing, side does not have a valid value")
    ord_type = params.text("ord_type")
    if ord_type not in ORD_TYPES:
        raise ApiError.validation("ord_type is missing, ord_type does not have a valid value")
    price = params.decimal("price")
    volume = params.decimal("volume")
    tif = params.text("time_in_force")
    if tif is not None and tif not in TIME_IN_FORCE:
        raise ApiError.validation("time_in_force does not have a valid value")
    smp = params.text("smp_type")
    if smp is not None and smp not in SMP_TYPES:
        raise ApiError.validation("smp_type does not have a valid value")
    identifier = params.text("identifier")

    request = OrderRequest(
        market=market, side=side, ord_type=ord_type, price=price, volume=volume,
        time_in_force=tif, smp_type=smp, identifier=identifier,
    )
    _check_combination(request)
    return request


def _check_combination(r: OrderRequest) -> None:
    def refuse(message: str) -> ApiError:
        return ApiError.create_error(r.side, message)

    needs_price = r.ord_type == "limit" or r.spends_total
    needs_volume = r.ord_type == "limit" or (r.side == "ask" and r.ord_type in ("market", "best"))
    if r.ord_type == "price" and r.side != "bid":
        raise refuse("ord_type price (market buy by total) is for bids only")
    if r.ord_type == "market" and r.side != "ask":
        raise refuse("ord_type market (market sell by volume) is for asks only")
    if needs_price and r.price is None:
        raise ApiError.validation("price is missing, price does not have a valid value")
    if needs_volume and r.volume is None:
        raise ApiError.validation("volume is missing, volume does not have a valid value")
    if not needs_price and r.price is not None:
        raise refuse(f"a {r.ord_type} {r.side} order must not send price")
    if not needs_volume and r.volume is not None:
        raise refuse(f"a {r.ord_type} {r.side} order must not send volume")
    if r.ord_type == "best" and r.time_in_force not in ("ioc", "fok"):
        raise refuse("a best order needs time_in_force ioc or fok")
    if r.time_in_force in ("ioc", "fok") and r.ord_type not in ("limit", "best"):
        raise refuse(f"time_in_force {r.time_in_force} is only for limit or best orders")
    if r.time_in_force == "post_only":
        if r.ord_type != "limit":
            raise refuse("time_in_force post_only is only for limit orders")
        if r.smp_type not in (None, "none"):
            raise refuse("time_in_force post_only cannot be combined with smp_type")
