"""The simulated exchange: orders, balances and fills of every user, behind one lock.

The REST handlers call :class:`Venue` with a verified user (access key) and the request's
parameters; the replay calls :meth:`Venue.on_trade` for every recorded trade. Order placement:

1. an ``identifier`` already used by the user is refused — and a new one is **burned at once**,
   so it stays used even if the request then fails (Upbit's docs: unique across all of the
   user's orders, ever, errors included). The order-test endpoint checks but burns nothing
   (UNCONFIRMED: the docs do not say);
2. the field rules (:mod:`upbit_sim.orders`), the market, then the market rules from
   :mod:`exchange.rules` at ``rules_at``: tick grid (``invalid_price_*``), minimum total
   (``under_min_total_*``; a market sell is valued at the last trade), maximum total and volume
   precision (``create_*_error``; names UNCONFIRMED);
3. funds: a bid locks ``total × (1 + fee)`` of the quote currency, an ask locks its volume
   (``insufficient_funds_*`` otherwise);
4. the order rests in ``wait`` and fills against later trades (:mod:`upbit_sim.matching`). A
   ``post_only`` limit that would take liquidity when placed is cancelled at once (UNCONFIRMED:
   cancelled rather than refused).

Cancel answers the order as it was when the cancel was accepted (``state: "wait"``) and then
ends it (``cancel``), unlocking what it held. Cancelling an order that has already ended gives
``order_not_found`` (UNCONFIRMED). Orders are visible to lookups from ``visible_at`` on (the
``lookup_lag`` fault).

Not simulated: reserved (``watch``) orders and their cap of 20 per market, self-trade
prevention (``smp_type`` is checked and echoed; the simulated user never trades with itself),
the market-order guard against the 30 book levels (the book is synthetic), and key permissions.
"""

from __future__ import annotations

import itertools
import threading
import uuid as uuid_module
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from model.market import Trade
from exchange import rules
from model.clock import Clock
from upbit_sim.errors import ApiError
from upbit_sim.faults import Faults
from upbit_sim.ledger import Holding, Ledger
from upbit_sim.markets import MarketList
from upbit_sim.matching import base_currency, finish, match_trade, quote_of
from upbit_sim.orders import Order, OrderRequest, parse_order_request
from upbit_sim.params import Params
from upbit_sim.render import account_json, dec, order_json
from upbit_sim.tape import Tape

__all__ = ["OrderListener", "Venue"]

OrderListener = Callable[[Order], None]


class Venue:
    """Orders and balances of every simulated user (thread-safe; see the module docstring)."""

    def __init__(
        self,
        *,
        markets: MarketList,
        tape: Tape,
        ledger: Ledger,
        clock: Clock,
        faults: Faults,
        rules_at: datetime | None = None,
    ) -> None:
        self._markets = markets
        self._tape = tape
        self._ledger = ledger
        self._clock = clock
        self._faults = faults
        self._rules_at = rules_at
        self._lock = threading.RLock()
        self._orders: dict[str, Order] = {}
        self._user_orders: dict[str, list[Order]] = {}
        self._by_identifier: dict[tuple[str, str], Order] = {}
        self._used_identifiers: dict[str, set[str]] = {}
        self._open_by_market: dict[str, list[Order]] = {}
        self._seq = itertools.count(1)
        self._listeners: list[OrderListener] = []

    # --- accounts -----------------------------------------------------------------------

    def accounts(self, user: str) -> list[dict[str, object]]:
        """``GET /v1/accounts``: KRW always, other currencies while something is held."""
        with self._lock:
            holdings = self._ledger.holdings(user)
            rows = [account_json("KRW", holdings.get("KRW", Holding()))]
            rows += [account_json(c, h) for c, h in holdings.items() if c != "KRW" and h.total > 0]
            return rows

    def holding(self, user: str, currency: str) -> Holding:
        """A copy of one holding (for tests and the admin endpoint)."""
        with self._lock:
            h = self._ledger.holding(user, currency)
            return Holding(h.balance, h.locked, h.avg_buy_price, h.avg_buy_price_modified)

    def deposit(self, user: str, currency: str, amount: Decimal) -> None:
        """Top up a user's free balance."""
        with self._lock:
            self._ledger.deposit(user, currency, amount)

    def withdraw(self, user: str, currency: str, amount: Decimal) -> Decimal:
        """Take up to ``amount`` of a user's free balance away; what was taken."""
        with self._lock:
            return self._ledger.withdraw(user, currency, amount)

    def every_order(self, user: str) -> list[dict[str, object]]:
        """Every order of the user as the exchange itself knows it, oldest first, with its fills,
        whatever a lookup lag hides from the user's own requests (an oracle for tests and drills).
        ``placed_at`` is the exact time it was placed (``created_at`` is cut to the second, as Upbit's)."""
        with self._lock:
            orders = sorted(self._user_orders.get(user, []), key=lambda o: o.seq)
            return [{**order_json(o, with_trades=True), "placed_at": o.created_at.isoformat()} for o in orders]

    def chance(self, user: str, market: str | None) -> dict[str, object]:
        """``GET /v1/orders/chance``: fees, the market's order rules and both accounts."""
        if market is None:
            raise ApiError.validation("market is missing, market does not have a valid value")
        self._require_market(market)
        fee = dec(rules.fee_rate(market))
        quote, base = quote_of(market), base_currency(market)
        minimum = rules.min_order_total(market, at=self._rules_at)
        maximum = rules.max_order_total(market, at=self._rules_at)
        with self._lock:
            bid_account = account_json(quote, self._ledger.holdings(user).get(quote, Holding()))
            ask_account = account_json(base, self._ledger.holdings(user).get(base, Holding()))
        return {
            "bid_fee": fee, "ask_fee": fee, "maker_bid_fee": fee, "maker_ask_fee": fee,
            "market": {
                "id": market, "name": f"{base}/{quote}", "order_types": ["limit"],
                "order_sides": ["ask", "bid"],
                "bid_types": ["best_fok", "best_ioc", "limit", "limit_fok", "limit_ioc", "price"],
                "ask_types": ["best_fok", "best_ioc", "limit", "limit_fok", "limit_ioc", "market"],
                # min_total is a JSON number in the documented example, max_total a string
                "bid": {"currency": quote, "price_unit": None, "min_total": _number(minimum)},
                "ask": {"currency": base, "price_unit": None, "min_total": _number(minimum)},
                "max_total": dec(maximum) if maximum is not None else None,
                "state": "active",
            },
            "bid_account": bid_account,
            "ask_account": ask_account,
        }

    # --- orders -------------------------------------------------------------------------

    def place(self, user: str, params: Params, *, test: bool = False) -> dict[str, object]:
        """``POST /v1/orders`` (or ``/v1/orders/test`` with ``test``): validate, lock, rest."""
        with self._lock:
            identifier = params.text("identifier")
            if identifier is not None and not test and self._faults.take_identifier_taken():
                self._place_foreign(user, params.text("market") or "KRW-BTC", identifier)
            if identifier is not None:
                used = self._used_identifiers.setdefault(user, set())
                if identifier in used:
                    raise ApiError.duplicate_identifier()
                if not test:
                    used.add(identifier)  # burned now: stays used even if the request fails below
            request = parse_order_request(params)
            self._require_market(request.market)
            self._check_rules(request)
            fee_rate = rules.fee_rate(request.market)
            currency, amount, reserved_fee = _reservation(request, fee_rate)
            now = self._clock.now()
            order = Order(
                uuid=str(uuid_module.uuid4()), user=user, request=request, created_at=now,
                visible_at=self._clock.monotonic() + self._faults.lookup_lag_s, seq=next(self._seq),
                remaining_volume=None if request.spends_total else request.volume,
                remaining_funds=request.price if request.spends_total else None,
                reserved_fee=reserved_fee, remaining_fee=reserved_fee, locked=amount,
                taker=self._marketable(request),
            )
            if test:
                if self._ledger.free(user, currency) < amount:
                    raise ApiError.insufficient_funds(request.side, currency)
                return order_json(order)
            if not self._ledger.lock(user, currency, amount):
                raise ApiError.insufficient_funds(request.side, currency)
            self._orders[order.uuid] = order
            self._user_orders.setdefault(user, []).append(order)
            if identifier is not None:
                self._by_identifier[(user, identifier)] = order
            placed = order_json(order)
            if request.time_in_force == "post_only" and order.taker:
                finish(order, "cancel", self._ledger, now)
            else:
                self._open_by_market.setdefault(request.market, []).append(order)
            self._notify([order])
            return placed

    def _place_foreign(self, user: str, market: str, identifier: str) -> None:
        """``identifier_taken``: another order of the account takes ``identifier`` first (a small resting
        limit buy at half the last price). Nothing is placed when the account cannot pay for it."""
        last = self._tape.last_price(market)
        if last is None:
            return
        price = rules.round_price(last / 2, side="bid", market=market)
        volume = rules.round_volume(rules.min_order_total(market) * 2 / price)
        params = Params.from_json({"market": market, "side": "bid", "ord_type": "limit", "price": str(price),
                                   "volume": str(volume), "identifier": identifier})
        request = parse_order_request(params)
        currency, amount, reserved_fee = _reservation(request, rules.fee_rate(market))
        if not self._ledger.lock(user, currency, amount):
            return
        self._used_identifiers.setdefault(user, set()).add(identifier)
        order = Order(uuid=str(uuid_module.uuid4()), user=user, request=request, created_at=self._clock.now(),
                      visible_at=self._clock.monotonic(), seq=next(self._seq), remaining_volume=request.volume,
                      remaining_funds=None, reserved_fee=reserved_fee, remaining_fee=reserved_fee, locked=amount,
                      taker=False)
        self._orders[order.uuid] = order
        self._user_orders.setdefault(user, []).append(order)
        self._by_identifier[(user, identifier)] = order
        self._faults.foreign_placed(order.uuid)

    def order(self, user: str, uuid: str | None, identifier: str | None) -> dict[str, object]:
        """``GET /v1/order``: one order with its ``trades`` (``uuid`` wins over ``identifier``)."""
        with self._lock:
            return order_json(self._find(user, uuid, identifier), with_trades=True)

    def cancel(self, user: str, uuid: str | None, identifier: str | None) -> dict[str, object]:
        """``DELETE /v1/order``: answer the order as accepted (``wait``), then cancel it."""
        with self._lock:
            order = self._find(user, uuid, identifier)
            if not order.is_open:
                raise ApiError.order_not_found()
            accepted = order_json(order)
            finish(order, "cancel", self._ledger, self._clock.now())
            self._prune(order.market)
            self._notify([order])
            return accepted

    def cancel_batch(
        self,
        user: str,
        *,
        uuids: Sequence[str] = (),
        identifiers: Sequence[str] = (),
        side: str | None = None,
        markets: Sequence[str] = (),
        excluded: Sequence[str] = (),
        quotes: Sequence[str] = (),
        count: int | None = None,
        newest_first: bool = True,
    ) -> dict[str, object]:
        """Bulk cancel (``DELETE /v1/orders/open`` by filter, ``/v1/orders/uuids`` by ids).

        The answer shape, ``{"success":{"count","orders"},"failed":{"count","orders"}}`` with
        ``{uuid, market, identifier}`` rows, is UNCONFIRMED (docs/upbit-api.md §2.5).
        """
        with self._lock:
            candidates = [o for o in self._user_orders.get(user, []) if self._visible(o)]
            by_id = bool(uuids or identifiers)
            if by_id:
                wanted = [o for o in candidates if o.uuid in set(uuids) or o.request.identifier in set(identifiers)]
            else:
                wanted = [
                    o for o in candidates if o.is_open and (side is None or o.side == side)
                    and (not markets or o.market in markets) and o.market not in excluded
                    and (not quotes or quote_of(o.market) in quotes)
                ]
                wanted.sort(key=lambda o: o.seq, reverse=newest_first)
                wanted = wanted[:count] if count is not None else wanted
            success, failed = [], []
            for order in wanted:
                row = {"uuid": order.uuid, "market": order.market, "identifier": order.request.identifier}
                if order.is_open:
                    finish(order, "cancel", self._ledger, self._clock.now())
                    self._prune(order.market)
                    self._notify([order])
                    success.append(row)
                else:
                    failed.append(row)
            missing = [u for u in uuids if u not in {o.uuid for o in wanted}]
            failed += [{"uuid": u, "market": None, "identifier": None} for u in missing]
            return {"success": {"count": len(success), "orders": success},
                    "failed": {"count": len(failed), "orders": failed}}

    def orders(
        self,
        user: str,
        *,
        states: Sequence[str] | None = None,
        market: str | None = None,
        uuids: Sequence[str] = (),
        identifiers: Sequence[str] = (),
        created_from: datetime | None = None,
        created_until: datetime | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, object]]:
        """The user's visible orders matching every given filter, newest first by default."""
        with self._lock:
            found = [o for o in self._user_orders.get(user, []) if self._visible(o)]
            if states is not None:
                found = [o for o in found if o.state in states]
            if market is not None:
                found = [o for o in found if o.market == market]
            if uuids:
                found = [o for o in found if o.uuid in set(uuids)]
            if identifiers:
                found = [o for o in found if o.request.identifier in set(identifiers)]
            if created_from is not None:
                found = [o for o in found if o.created_at >= created_from]
            if created_until is not None:
                found = [o for o in found if o.created_at <= created_until]
            found.sort(key=lambda o: o.seq, reverse=newest_first)
            return [order_json(o) for o in found]

    # --- the replay ---------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        """Execute a printed trade against the open orders of its market."""
        with self._lock:
            open_orders = self._open_by_market.get(trade.market)
            if not open_orders:
                return
            changed = match_trade(
                list(open_orders), trade, ledger=self._ledger, fee_rate=rules.fee_rate(trade.market),
                now=self._clock.now(), new_uuid=lambda: str(uuid_module.uuid4()),
            )
            self._prune(trade.market)
            self._notify(changed)

    def on_order_change(self, listener: OrderListener) -> None:
        """Call ``listener`` (under the venue lock: keep it short) whenever an order changes."""
        with self._lock:
            self._listeners.append(listener)

    # --- helpers ------------------------------------------------------------------------

    def _require_market(self, market: str) -> None:
        try:
            rules.quote_currency(market)
        except ValueError:
            raise ApiError.validation("market does not have a valid value") from None
        if market not in self._markets:
            # UNCONFIRMED: the error Upbit gives for an unlisted market id.
            raise ApiError.validation("market does not have a valid value")

    def _check_rules(self, request: OrderRequest) -> None:
        market, side, at = request.market, request.side, self._rules_at
        price, volume = request.price, request.volume
        if volume is not None and rules.round_volume(volume) != volume:
            raise ApiError.create_error(side, f"volume has more than {rules.VOLUME_DECIMALS} decimal places")
        if request.ord_type == "limit" and price is not None and not rules.is_valid_price(price, market=market, at=at):
            raise ApiError.invalid_price(side)
        if request.ord_type == "limit" and price is not None and volume is not None:
            total: Decimal | None = price * volume
        elif request.spends_total:
            total = price
        else:
            last = self._tape.last_price(market)
            total = volume * last if volume is not None and last is not None else None
        if total is None:
            return
        minimum = rules.min_order_total(market, at=at)
        if total < minimum:
            raise ApiError.under_min_total(side, dec(minimum), quote_of(market))
        maximum = rules.max_order_total(market, at=at)
        if maximum is not None and total > maximum:
            raise ApiError.create_error(side, f"order total is over the {dec(maximum)} {quote_of(market)} maximum")

    def _marketable(self, request: OrderRequest) -> bool:
        if request.ord_type != "limit" or request.price is None:
            return True
        book = self._tape.book(request.market, levels=1)
        if book is None:
            return False
        best_ask, _, best_bid, _ = book.units[0]
        return request.price >= best_ask if request.side == "bid" else request.price <= best_bid

    def _find(self, user: str, uuid: str | None, identifier: str | None) -> Order:
        if uuid is None and identifier is None:  # the docs: one is required (error name UNCONFIRMED)
            raise ApiError.validation("uuid or identifier is required")
        order = self._orders.get(uuid) if uuid is not None else self._by_identifier.get((user, identifier or ""))
        if order is None or order.user != user or not self._visible(order):
            raise ApiError.order_not_found()
        return order

    def _visible(self, order: Order) -> bool:
        return self._clock.monotonic() >= order.visible_at

    def _prune(self, market: str) -> None:
        self._open_by_market[market] = [o for o in self._open_by_market.get(market, []) if o.is_open]

    def _notify(self, orders: list[Order]) -> None:
        for order in orders:
            for listener in self._listeners:
                listener(order)


def _reservation(request: OrderRequest, fee_rate: Decimal) -> tuple[str, Decimal, Decimal]:
    """``(currency, amount to lock, reserved fee)`` for a new order."""
    if request.side == "ask":
        assert request.volume is not None
        return base_currency(request.market), request.volume, Decimal(0)
    assert request.price is not None
    total = request.price if request.spends_total else request.price * (request.volume or Decimal(0))
    fee = total * fee_rate
    return quote_of(request.market), total + fee, fee


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
