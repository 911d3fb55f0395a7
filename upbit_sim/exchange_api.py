"""The private (exchange) endpoints: request parameters in, :class:`Venue` calls, JSON out.

==========================  ===========================================================
endpoint                    parameters
==========================  ===========================================================
GET /v1/accounts            —
GET /v1/orders/chance       ``market``
POST /v1/orders             see :mod:`upbit_sim.orders`; answers 201 with the order
POST /v1/orders/test        the same; validates, creates nothing, answers 201
GET /v1/order               ``uuid`` or ``identifier`` (uuid wins); with ``trades``
DELETE /v1/order            ``uuid`` or ``identifier``; the order as accepted (``wait``)
GET /v1/orders/open         ``market``, ``state`` (wait|watch) or ``states[]``, ``page``,
                            ``limit`` (≤100), ``order_by`` (desc|asc)
GET /v1/orders/closed       ``market``, ``state`` (done|cancel) or ``states[]``,
                            ``start_time``, ``end_time`` (order creation time), ``limit`` (≤1000)
GET /v1/orders/uuids        ``uuids[]`` or ``identifiers[]``, ``market``, ``order_by``
GET /v1/orders (legacy)     ``market``, ``state``/``states[]`` (default wait), ``uuids[]``,
                            ``identifiers[]``, ``page``, ``limit``, ``order_by``
DELETE /v1/orders/open      ``cancel_side`` (all|ask|bid), ``pairs``, ``excluded_pairs``,
                            ``quote_currencies`` (comma lists), ``count`` (≤300, default 20)
DELETE /v1/orders/uuids     ``uuids[]`` or ``identifiers[]`` (≤20)
==========================  ===========================================================

The status of a successful POST /v1/orders is 201 (the docs list 201 Created for creation;
UNCONFIRMED for this endpoint). The simulator has no reserved (``watch``) orders, so ``watch``
lists are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from upbit_sim.errors import ApiError
from upbit_sim.params import Params
from upbit_sim.venue import Venue

__all__ = ["ExchangeApi"]

_OPEN_STATES = ("wait", "watch")
_CLOSED_STATES = ("done", "cancel")
_ALL_STATES = (*_OPEN_STATES, *_CLOSED_STATES)


class ExchangeApi:
    """One method per private endpoint; each takes the verified user and the parameters."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue

    def accounts(self, user: str, _params: Params) -> object:
        return self._venue.accounts(user)

    def chance(self, user: str, params: Params) -> object:
        return self._venue.chance(user, params.text("market"))

    def place(self, user: str, params: Params) -> object:
        return self._venue.place(user, params)

    def place_test(self, user: str, params: Params) -> object:
        return self._venue.place(user, params, test=True)

    def order(self, user: str, params: Params) -> object:
        return self._venue.order(user, params.text("uuid"), params.text("identifier"))

    def cancel(self, user: str, params: Params) -> object:
        return self._venue.cancel(user, params.text("uuid"), params.text("identifier"))

    def cancel_open(self, user: str, params: Params) -> object:
        side = params.text("cancel_side") or "all"
        if side not in ("all", "ask", "bid"):
            raise ApiError.validation("cancel_side does not have a valid value (all, ask or bid)")
        return self._venue.cancel_batch(
            user, side=None if side == "all" else side, markets=_csv(params, "pairs"),
            excluded=_csv(params, "excluded_pairs"), quotes=_csv(params, "quote_currencies"),
            count=params.integer("count", default=20, low=1, high=300), newest_first=_desc(params),
        )

    def cancel_by_ids(self, user: str, params: Params) -> object:
        uuids, identifiers = params.texts("uuids"), params.texts("identifiers")
        if not uuids and not identifiers:
            raise ApiError.validation("uuids or identifiers is required")
        if len(uuids) + len(identifiers) > 20:  # noqa: PLR2004 - the documented batch size
            raise ApiError.validation("at most 20 orders per request")
        return self._venue.cancel_batch(user, uuids=uuids, identifiers=identifiers)

    def open_orders(self, user: str, params: Params) -> object:
        states = _states(params, allowed=_OPEN_STATES, default=("wait",))
        orders = self._venue.orders(user, states=states, market=params.text("market"), newest_first=_desc(params))
        return _page(orders, params, max_limit=100)

    def closed_orders(self, user: str, params: Params) -> object:
        states = _states(params, allowed=_CLOSED_STATES, default=_CLOSED_STATES)
        orders = self._venue.orders(
            user, states=states, market=params.text("market"), newest_first=_desc(params),
            created_from=_time(params, "start_time"), created_until=_time(params, "end_time"),
        )
        limit = params.integer("limit", default=100, low=1, high=1000)
        return orders[:limit]

    def orders_by_ids(self, user: str, params: Params) -> object:
        uuids, identifiers = params.texts("uuids"), params.texts("identifiers")
        if not uuids and not identifiers:
            raise ApiError.validation("uuids or identifiers is required")
        return self._venue.orders(
            user, market=params.text("market"), uuids=uuids, identifiers=identifiers, newest_first=_desc(params)
        )

    def legacy_orders(self, user: str, params: Params) -> object:
        uuids, identifiers = params.texts("uuids"), params.texts("identifiers")
        default = _ALL_STATES if uuids or identifiers else ("wait",)
        states = _states(params, allowed=_ALL_STATES, default=default)
        orders = self._venue.orders(
            user, states=states, market=params.text("market"), uuids=uuids, identifiers=identifiers,
            newest_first=_desc(params),
        )
        return _page(orders, params, max_limit=100)


def _states(params: Params, *, allowed: Sequence[str], default: Sequence[str]) -> list[str]:
    states = params.texts("states") or ([s] if (s := params.text("state")) is not None else list(default))
    for state in states:
        if state not in allowed:
            raise ApiError.validation(f"state does not have a valid value (one of {', '.join(allowed)})")
    return states


def _csv(params: Params, key: str) -> list[str]:
    return [part.strip() for part in (params.text(key) or "").split(",") if part.strip()]


def _desc(params: Params) -> bool:
    order_by = params.text("order_by") or "desc"
    if order_by not in ("asc", "desc"):
        raise ApiError.validation("order_by does not have a valid value (asc or desc)")
    return order_by == "desc"


def _page(orders: list[dict[str, object]], params: Params, *, max_limit: int) -> list[dict[str, object]]:
    page = params.integer("page", default=1, low=1, high=1_000_000)
    limit = params.integer("limit", default=100, low=1, high=max_limit)
    return orders[(page - 1) * limit : page * limit]


def _time(params: Params, key: str) -> datetime | None:
    text = params.text(key)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError.validation(f"{key} does not have a valid value") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
