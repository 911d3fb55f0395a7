"""Account balances of the simulated users, in ``Decimal``: free, locked and average buy price.

One :class:`Ledger` holds every user (access key) and currency. It is plain bookkeeping with no
locking of its own: the :class:`~upbit_sim.venue.Venue` calls it under its lock. Every change
keeps ``balance >= 0`` and ``locked >= 0``; a violation is a simulator bug and raises.

Upbit's ``avg_buy_price`` is the volume-weighted average of the prices paid for what is held,
fees excluded (whether Upbit includes fees is UNCONFIRMED); selling leaves it unchanged, and it
resets to 0 when the holding reaches zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Holding", "Ledger"]

_ZERO = Decimal(0)


@dataclass(slots=True)
class Holding:
    """One currency of one user: ``balance`` is free to use, ``locked`` is held by open orders."""

    balance: Decimal = _ZERO
    locked: Decimal = _ZERO
    avg_buy_price: Decimal = _ZERO
    avg_buy_price_modified: bool = False

    @property
    def total(self) -> Decimal:
        return self.balance + self.locked


class Ledger:
    """Balances per access key and currency (not thread-safe: the venue serialises access)."""

    def __init__(self, balances: Mapping[str, Mapping[str, Decimal]] | None = None) -> None:
        """``balances``: access key → currency → starting free balance."""
        self._users: dict[str, dict[str, Holding]] = {}
        for user, currencies in (balances or {}).items():
            for currency, amount in currencies.items():
                self.deposit(user, currency, Decimal(amount))

    def holdings(self, user: str) -> dict[str, Holding]:
        """The user's holdings by currency (KRW first, then in the order they appeared)."""
        holdings = self._users.get(user, {})
        ordered = sorted(holdings.items(), key=lambda item: item[0] != "KRW")
        return dict(ordered)

    def holding(self, user: str, currency: str) -> Holding:
        """The user's holding of ``currency`` (created empty if new)."""
        return self._users.setdefault(user, {}).setdefault(currency, Holding())

    def free(self, user: str, currency: str) -> Decimal:
        holding = self._users.get(user, {}).get(currency)
        return holding.balance if holding is not None else _ZERO

    def deposit(self, user: str, currency: str, amount: Decimal) -> None:
        """Add ``amount`` to the free balance (a starting balance or a test top-up)."""
        _non_negative(amount, "deposit")
        self.holding(user, currency).balance += amount

    def withdraw(self, user: str, currency: str, amount: Decimal) -> Decimal:
        """Take up to ``amount`` out of the free balance (a withdrawal behind the bot's back); what was taken."""
        _non_negative(amount, "withdraw")
        holding = self.holding(user, currency)
        taken = min(amount, holding.balance)
        holding.balance -= taken
        self._reset_avg_if_empty(holding)
        return taken

    def lock(self, user: str, currency: str, amount: Decimal) -> bool:
        """Move ``amount`` from free to locked; ``False`` (nothing changed) if not enough is free."""
        _non_negative(amount, "lock")
        holding = self.holding(user, currency)
        if holding.balance < amount:
            return False
        holding.balance -= amount
        holding.locked += amount
        return True

    def unlock(self, user: str, currency: str, amount: Decimal) -> None:
        """Move ``amount`` from locked back to free (an order ended with funds left)."""
        _non_negative(amount, "unlock")
        holding = self.holding(user, currency)
        _enough(holding.locked, amount, f"unlock {amount} {currency}")
        holding.locked -= amount
        holding.balance += amount

    def spend_locked(self, user: str, currency: str, amount: Decimal) -> None:
        """Remove ``amount`` from locked funds (it paid for a fill)."""
        _non_negative(amount, "spend")
        holding = self.holding(user, currency)
        _enough(holding.locked, amount, f"spend {amount} locked {currency}")
        holding.locked -= amount
        self._reset_avg_if_empty(holding)

    def receive_bought(self, user: str, currency: str, volume: Decimal, price: Decimal) -> None:
        """Credit ``volume`` bought at ``price`` and update the average buy price."""
        _non_negative(volume, "receive")
        holding = self.holding(user, currency)
        held = holding.total
        if held + volume > 0:
            holding.avg_buy_price = (held * holding.avg_buy_price + volume * price) / (held + volume)
        holding.balance += volume

    def receive(self, user: str, currency: str, amount: Decimal) -> None:
        """Credit ``amount`` of quote currency (the proceeds of a sale, net of fee)."""
        _non_negative(amount, "receive")
        self.holding(user, currency).balance += amount

    @staticmethod
    def _reset_avg_if_empty(holding: Holding) -> None:
        if holding.total == 0:
            holding.avg_buy_price = _ZERO


def _non_negative(amount: Decimal, what: str) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValueError(f"{what}: amount must be a finite Decimal >= 0, got {amount!r}")


def _enough(have: Decimal, need: Decimal, what: str) -> None:
    if have < need:
        raise AssertionError(f"simulator ledger bug: cannot {what}, only {have} there")
