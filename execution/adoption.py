"""Adoption: whether an order the exchange shows under our identifier is the order we asked for.

When the outcome of a request is unknown (a timeout, a reset, a 5xx, a duplicate-identifier
answer, a crash), execution looks the identifier up and *adopts* what it finds: from then on its
fills are our ledger's. An identifier is only a name, though. An order found under it may have
been placed by someone else (another installation sharing the account, a restored database, a
deliberate collision), so it is adopted only when it is, field by field, the order we requested:

* ``market``, ``side`` and ``ord_type`` equal;
* every amount our request carries equal, as a number (``price`` for a market buy's KRW total
  or a limit price, ``volume`` for a sell or a limit order);
* every amount our request leaves out absent (or zero) on the order: a market buy found with a
  volume, or a market sell found with a price, is somebody else's order.

:func:`mismatches` lists every difference (empty = adopt). A mismatch is never adopted; the
engine records the attempt as not placed, raises a critical alert and halts entries.

Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Protocol

__all__ = ["FoundOrder", "mismatches"]

_TEXT_FIELDS = ("market", "side", "ord_type")
_AMOUNT_FIELDS = ("price", "volume")


class FoundOrder(Protocol):
    """What adoption reads of an exchange order (``exchange.models.Order`` has it)."""

    @property
    def market(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def ord_type(self) -> str: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def volume(self) -> Decimal | None: ...


def _amount(text: object) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def mismatches(order: FoundOrder, request: Mapping[str, str]) -> tuple[str, ...]:
    """Every field in which ``order`` differs from ``request``; ``()`` when it is our order."""
    found: list[str] = []
    for name in _TEXT_FIELDS:
        ours, theirs = request.get(name), getattr(order, name)
        if ours != theirs:
            found.append(f"{name} {theirs!r}, we asked for {ours!r}")
    for name in _AMOUNT_FIELDS:
        amount: Decimal | None = getattr(order, name)
        if name in request:
            asked = _amount(request[name])
            if asked is None or amount is None or amount != asked:
                found.append(f"{name} {amount if amount is not None else 'none'}, we asked for {request[name]}")
        elif amount is not None and amount != 0:
            found.append(f"{name} {amount}, we asked for none")
    return tuple(found)
