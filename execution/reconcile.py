"""Reconciliation, the pure part: the exchange's balances and open orders against our ledger.

Values in, a :class:`Report` out; no I/O. :mod:`execution.reconcile_run` decides everything around
a comparison — when one is due, when it waits, what it writes — and states the whole
reconciliation contract; ``actors/account.py`` gathers the values and writes the outcome.

**Balances.** For every currency either side knows, ``delta = actual - expected``, where
*actual* is the exchange's ``balance + locked`` and *expected* is the baseline plus our fills
(``persistence.account.expected_balances``). A KRW delta is its own value. A coin delta is
valued at the price given for that coin (a ticker price, else the account's ``avg_buy_price``).
A delta is a :class:`Difference` when ``|value| > tolerance_krw`` (a value of exactly the
tolerance is fine), or when a coin delta has no positive price to value it (``value_krw`` is
then ``None``: an amount we cannot value is never assumed small).

**Unknown orders.** An open order on the exchange whose uuid is none of our attempts' uuids and
whose identifier is none of our attempts' identifiers. It is reported, never adopted. When its
identifier carries our bot's prefix (``{bot}-``), the report says so: the database may have lost
an attempt.

**Missing orders.** One of our ``submitted`` attempts whose order the exchange does not know:
it is not among the open orders and a lookup answered "not found" — although the attempt is older
than :data:`MISSING_AFTER_S`. The exchange lists a new order late (the lookup window's reason), so
a "not found" for a younger one proves nothing: the balances wait (it is unsettled).

**Settled.** Balances can only be compared when our ledger and the exchange describe the same
moment. :func:`unsettled` lists why they may not: an attempt whose outcome is ``unknown``; a
``submitted`` attempt whose order the exchange already finished (execution has not recorded it
yet), or whose executed volume or paid fee differs from what we recorded (fills in flight).
A ``submitted`` order resting on the book with every fill recorded is settled.

**Confirmation.** :func:`confirm` keeps only the findings of a second, fresh observation that
the first one had too, so a race between two reads is never reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from model.reasons import Status
from model.reconciliation import ExchangeOrder, OurOrder, format_amount

_ZERO = Decimal(0)

__all__ = [
    "QUOTE", "Difference", "Report", "confirm", "compare_balances",
    "find_missing", "find_unknown", "match_open", "raw_deltas", "reconcile", "unsettled",
]

QUOTE = "KRW"
MISSING_AFTER_S = 30.0
"""A submitted order the exchange has not listed for this long is missing; before, it may just be listed late."""


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + format_amount(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One currency whose exchange total is not what our ledger expects."""

    currency: str
    expected: Decimal
    actual: Decimal
    value_krw: Decimal | None  # |actual - expected| in KRW; None: no price to value the coin

    @property
    def delta(self) -> Decimal:
        return self.actual - self.expected

    def text(self) -> str:
        value = "no price to value it" if self.value_krw is None else f"{format_amount(self.value_krw)} KRW"
        return (f"{self.currency}: expected {format_amount(self.expected)}, exchange has {format_amount(self.actual)} "
                f"({_signed(self.delta)}, {value})")

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "expected": str(self.expected), "actual": str(self.actual),
                "delta": str(self.delta), "value_krw": None if self.value_krw is None else str(self.value_krw)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The outcome of one reconciliation (ok when nothing at all was found)."""

    differences: tuple[Difference, ...] = ()
    unknown_orders: tuple[ExchangeOrder, ...] = ()
    missing_orders: tuple[OurOrder, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.differences or self.unknown_orders or self.missing_orders)

    def summary(self) -> str:
        """One text for alerts and the halt flag's ``why``."""
        if self.ok:
            return "reconciliation ok: balances match our ledger; no unknown or missing orders"
        parts = [d.text() for d in self.differences]
        parts += [f"unknown open order {o.text()}" for o in self.unknown_orders]
        parts += [f"{o.text()} is submitted but unknown to the exchange" for o in self.missing_orders]
        n = len(parts)
        return f"reconciliation found {n} problem{'s' if n != 1 else ''}: " + "; ".join(parts)

    def signature(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
        """What the findings are about (currencies, order uuids, attempt ids), to tell a new finding
        from the same one seen again."""
        return signature_of(self.to_json())

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {"differences": [d.to_json() for d in self.differences],
                "unknown_orders": [o.to_json() for o in self.unknown_orders],
                "missing_orders": [o.to_json() for o in self.missing_orders]}


def signature_of(report_json: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[
        tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """:meth:`Report.signature` of a report as stored (``Report.to_json`` lists)."""
    return (tuple(sorted(str(d["currency"]) for d in report_json.get("differences", ()))),
            tuple(sorted(str(o["uuid"]) for o in report_json.get("unknown_orders", ()))),
            tuple(sorted(int(o["attempt_id"]) for o in report_json.get("missing_orders", ()))))


# ---- balances ------------------------------------------------------------------------------


def raw_deltas(actual: Mapping[str, Decimal], expected: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """``actual - expected`` for every currency where it is not zero (a missing side counts as 0)."""
    deltas = {}
    for currency in sorted(set(actual) | set(expected)):
        delta = actual.get(currency, _ZERO) - expected.get(currency, _ZERO)
        if delta != 0:
            deltas[currency] = delta
    return deltas


def compare_balances(actual: Mapping[str, Decimal], expected: Mapping[str, Decimal], *,
                     prices: Mapping[str, Decimal], tolerance_krw: Decimal) -> tuple[Difference, ...]:
    """The currencies whose delta is worth more than ``tolerance_krw`` (or cannot be valued)."""
    if tolerance_krw < 0:
        raise ValueError(f"tolerance_krw must not be negative, got {tolerance_krw}")
    found = []
    for currency, delta in raw_deltas(actual, expected).items():
        if currency == QUOTE:
            value: Decimal | None = abs(delta)
        else:
            price = prices.get(currency)
            value = abs(delta) * price if price is not None and price > 0 else None
        if value is None or value > tolerance_krw:
            found.append(Difference(currency=currency, expected=expected.get(currency, _ZERO),
                                    actual=actual.get(currency, _ZERO), value_krw=value))
    return tuple(found)


# ---- orders --------------------------------------------------------------------------------


def match_open(ours: Iterable[OurOrder], open_orders: Iterable[ExchangeOrder]) -> dict[int, ExchangeOrder]:
    """Our attempts found among the exchange's open orders (by uuid, else by identifier)."""
    by_uuid = {o.uuid: o for o in open_orders}
    by_identifier = {o.identifier: o for o in by_uuid.values() if o.identifier}
    seen = {}
    for attempt in ours:
        order = by_uuid.get(attempt.uuid or "") or by_identifier.get(attempt.identifier)
        if order is not None:
            seen[attempt.attempt_id] = order
    return seen


def unsettled(ours: Iterable[OurOrder], seen: Mapping[int, ExchangeOrder | None]) -> tuple[str, ...]:
    """Why balances cannot be compared now (empty: they can). ``seen``: attempt id → the order the
    exchange showed (``None``: it answered "not found"; absent: not looked up)."""
    why = []
    for attempt in ours:
        if attempt.status != Status.SUBMITTED:
            why.append(f"{attempt.text()}: outcome {attempt.status}")
            continue
        if attempt.attempt_id not in seen:
            why.append(f"{attempt.text()}: not looked up")
            continue
        order = seen[attempt.attempt_id]
        if order is None:
            if attempt.age_s < MISSING_AFTER_S:
                why.append(f"{attempt.text()}: not listed by the exchange yet ({attempt.age_s:.1f} s old)")
            continue  # missing: reported, and it moved no balance
        if order.is_final:
            why.append(f"{attempt.text()}: {order.state} on the exchange, not yet recorded")
        elif order.executed_volume != attempt.executed_volume or order.paid_fee != attempt.paid_fee:
            why.append(f"{attempt.text()}: fills not yet recorded")
    return tuple(why)


def find_unknown(open_orders: Iterable[ExchangeOrder], *, known_uuids: frozenset[str] | set[str],
                 known_identifiers: frozenset[str] | set[str], prefix: str = "") -> tuple[ExchangeOrder, ...]:
    """Open orders none of our attempts knows, by uuid or by identifier."""
    unknown = []
    for order in open_orders:
        if order.uuid in known_uuids or (order.identifier is not None and order.identifier in known_identifiers):
            continue
        ours = bool(prefix) and order.identifier is not None and order.identifier.startswith(prefix)
        unknown.append(replace(order, ours_by_prefix=True) if ours else order)
    return tuple(unknown)


def find_missing(ours: Iterable[OurOrder], seen: Mapping[int, ExchangeOrder | None]) -> tuple[OurOrder, ...]:
    """Our ``submitted`` attempts whose lookup answered "not found"."""
    return tuple(a for a in ours if a.status == Status.SUBMITTED and a.attempt_id in seen
                 and seen[a.attempt_id] is None and a.age_s >= MISSING_AFTER_S)


def reconcile(*, actual: Mapping[str, Decimal], expected: Mapping[str, Decimal], prices: Mapping[str, Decimal],
              tolerance_krw: Decimal, open_orders: Sequence[ExchangeOrder], known_uuids: frozenset[str] | set[str],
              known_identifiers: frozenset[str] | set[str], ours: Sequence[OurOrder] = (),
              seen: Mapping[int, ExchangeOrder | None] | None = None, prefix: str = "") -> Report:
    """Everything at once: balance differences, unknown open orders, missing orders."""
    return Report(
        differences=compare_balances(actual, expected, prices=prices, tolerance_krw=tolerance_krw),
        unknown_orders=find_unknown(open_orders, known_uuids=known_uuids, known_identifiers=known_identifiers,
                                    prefix=prefix),
        missing_orders=find_missing(ours, seen or {}),
    )


def confirm(first: Report, second: Report) -> Report:
    """The findings of ``second`` (fresh values) that ``first`` had too."""
    currencies = {d.currency for d in first.differences}
    uuids = {o.uuid for o in first.unknown_orders}
    attempts = {o.attempt_id for o in first.missing_orders}
    return Report(differences=tuple(d for d in second.differences if d.currency in currencies),
                  unknown_orders=tuple(o for o in second.unknown_orders if o.uuid in uuids),
                  missing_orders=tuple(o for o in second.missing_orders if o.attempt_id in attempts))
