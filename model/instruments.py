"""Venues and venue-qualified instrument ids: what a market code means depends on where it trades.

Upbit names a market ``QUOTE-BASE`` (``KRW-BTC``); Binance names a symbol ``BASEQUOTE``
(``BTCUSDT``), and its spot and USDⓈ-M futures markets share symbols but are different
instruments. So an instrument is a :class:`Venue` and the venue's own symbol, written
``venue:symbol`` (``upbit:KRW-BTC``, ``binance-usdm:BTCUSDT``). A bare Upbit market code, as
settings and the Upbit-only parts of the system write it, is an Upbit instrument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["InstrumentId", "Venue"]


class Venue(StrEnum):
    """Where an instrument trades."""

    UPBIT = "upbit"  # Upbit spot (KRW, BTC and USDT markets)
    BINANCE = "binance"  # Binance spot
    BINANCE_USDM = "binance-usdm"  # Binance USDⓈ-M futures (perpetuals)


_SYMBOL = {
    Venue.UPBIT: re.compile(r"^[A-Z]{2,5}-[A-Z0-9]{1,15}$"),  # QUOTE-BASE
    Venue.BINANCE: re.compile(r"^[A-Z0-9]{2,20}$"),  # BASEQUOTE
    Venue.BINANCE_USDM: re.compile(r"^[A-Z0-9]{2,20}$"),
}


@dataclass(frozen=True, slots=True)
class InstrumentId:
    """One instrument on one venue; ``str()`` is ``venue:symbol``."""

    venue: Venue
    symbol: str

    def __post_init__(self) -> None:
        if not isinstance(self.venue, Venue):
            raise ValueError(f"unknown venue {self.venue!r}; known: {', '.join(Venue)}")
        if not _SYMBOL[self.venue].match(self.symbol):
            raise ValueError(f"{self.symbol!r} is not a {self.venue} symbol")

    def __str__(self) -> str:
        return f"{self.venue}:{self.symbol}"

    @classmethod
    def parse(cls, text: str) -> InstrumentId:
        """``venue:symbol``, or a bare Upbit market code (``KRW-BTC``)."""
        venue, sep, symbol = text.partition(":")
        if not sep:
            return cls(Venue.UPBIT, text)
        try:
            return cls(Venue(venue), symbol)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an instrument (venue:symbol): {exc}") from None
