"""Orders as reconciliation compares them: the exchange's (:class:`ExchangeOrder`) and ours (:class:`OurOrder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_ZERO = Decimal(0)

_FINAL_STATES = frozenset({"done", "cancel"})

def format_amount(value: Decimal) -> str:
    """``1,234.5`` — exact, grouped, no exponent, no trailing zeros."""
    normal = value.normalize()
    if normal == normal.to_integral_value():
        normal = normal.quantize(Decimal(1))
    return f"{normal:,f}"

@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeOrder:
    """An order as the exchange showed it (open list or lookup): what reconciliation needs of it."""

    uuid: str
    identifier: str | None
    market: str
    side: str
    ord_type: str
    state: str
    price: Decimal | None = None
    volume: Decimal | None = None
    executed_volume: Decimal = _ZERO
    paid_fee: Decimal = _ZERO
    ours_by_prefix: bool = False  # set by find_unknown: the identifier carries our bot's prefix

    @classmethod
    def from_order(cls, order: Any) -> ExchangeOrder:
        """From an ``exchange.models.Order`` (duck-typed, so this module stays free of the client)."""
        return cls(uuid=order.uuid, identifier=order.identifier, market=order.market, side=order.side,
                   ord_type=order.ord_type, state=order.state, price=order.price, volume=order.volume,
                   executed_volume=order.executed_volume, paid_fee=order.paid_fee)

    @property
    def is_final(self) -> bool:
        return self.state in _FINAL_STATES

    def text(self) -> str:
        what = f"{self.market} {self.side} {self.ord_type}"
        if self.price is not None:
            what += f" {format_amount(self.volume) if self.volume is not None else '?'} @ {format_amount(self.price)}"
        ident = f"identifier {self.identifier!r}" if self.identifier else "no identifier"
        prefix = ", carries our prefix: an attempt may be lost" if self.ours_by_prefix else ""
        return f"{self.uuid} ({what}, {ident}{prefix})"

    def to_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "identifier": self.identifier, "market": self.market, "side": self.side,
                "ord_type": self.ord_type, "state": self.state,
                "price": None if self.price is None else str(self.price),
                "volume": None if self.volume is None else str(self.volume),
                "executed_volume": str(self.executed_volume), "ours_by_prefix": self.ours_by_prefix}

@dataclass(frozen=True, slots=True, kw_only=True)
class OurOrder:
    """One of our live attempts that is not final (``submitted`` or ``unknown``)."""

    attempt_id: int
    identifier: str
    status: str
    market: str
    uuid: str | None = None
    executed_volume: Decimal = _ZERO
    paid_fee: Decimal = _ZERO
    age_s: float = float("inf")  # seconds since the attempt was created (the database's clock)

    def text(self) -> str:
        return f"attempt {self.attempt_id} ({self.identifier}, {self.market}, uuid {self.uuid or 'unknown'})"

    def to_json(self) -> dict[str, Any]:
        return {"attempt_id": self.attempt_id, "identifier": self.identifier, "status": self.status,
                "market": self.market, "uuid": self.uuid}
