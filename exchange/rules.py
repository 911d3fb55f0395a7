"""Upbit exchange rules in ``Decimal``: tick sizes, minimum order totals, volume precision, fees.

Pure functions, no I/O. Everything that changed over time takes ``at`` (the instant the rule is
wanted for; ``None`` = now), so a recording from 2021 or 2024 validates against the rules of its
time. A naive ``at`` is read as UTC. Change instants are given in KST (UTC+9), the exchange's zone.

KRW market tick tables (lower bound inclusive, upper bound exclusive), all from the Upbit docs
(see ``docs/upbit-api.md`` §4 for the sources):

* before 2024-01-29: the old table (≥2M → 1000, 1M–2M → 500, … 100–1k → 1, <0.1 → 0.0001);
* 2024-01-29: everything below 10,000 KRW got finer (1k–10k → 1, 100–1k → 0.1, …);
* 2024-10-14: 16 listed coins went back to 1 KRW in the 100–1,000 band. CONFLICT: the changelog
  announced the regular maintenance of 2024-10-01, the KRW market page says "from 2024-10-14"; we
  follow the market page. (A 1-KRW price is valid under both, so only validation of 0.1-step
  prices of those coins inside that fortnight is affected.)
* 2025-03-21 01:00 KST (after the 00:00–01:00 maintenance): USDT/KRW and USDC/KRW use 0.5 KRW in
  the 1,000–10,000 band.
* 2025-07-31: the current table (1M–2M → 1000, new 50k and 5k breakpoints, 100–1k → 1 for all).
  The hour of the switch is UNCONFIRMED (we use 00:00 KST). Below 100 KRW the 2025 table is
  UNCONFIRMED (the page excerpt was cut off); we keep the 2024 values there, as documented before.
  Whether the USDT/USDC 0.5-KRW exception survived the 2025 change is UNCONFIRMED; the documented
  2025 table has no exception, so we apply it to every KRW market (a 1-KRW step is valid under
  either reading, so ``round_price`` never produces a rejected price either way).

The authoritative per-market tick is ``GET /v1/orderbook/instruments`` (``UpbitClient.instruments``).

**Plausibility of exchange data** (the last section): what a market id, a trade price, a trade
volume and a trade time must look like before anything of ours computes with them. Each check
returns the problem as text (``None`` when fine), so every parser raises its own error type with
its own context (file and line, frame field, response). A market id is ``QUOTE-BASE``, both parts
non-empty upper-case ASCII letters and digits. Prices lie in [``MIN_PRICE``, ``MAX_PRICE``] and
volumes in [``MIN_VOLUME``, ``MAX_VOLUME``], with at most ``MAX_DIGITS`` significant digits:
``1E+400000`` is a finite ``Decimal`` but no price, and quantizing it, or storing it in a
``numeric`` column, fails far from where it came in. Trade times are epoch milliseconds from
2009-01-01 to 2100-01-01 (historical files are fine; a time in seconds is caught and named).

BTC market: a flat 0.00000001 BTC tick. USDT market: a flat 0.001 USDT tick until 2024-08-19, a
price-banded table since. Minimum order totals: 5,000 KRW (the KRW page title names it, the body
was cut off in our copy: UNCONFIRMED from a primary page); BTC 0.0005 → 0.00005 and USDT
0.0005 → 0.5 on 2024-08-19 (hour UNCONFIRMED, 00:00 KST used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Literal

__all__ = [
    "MARKET_ID",
    "MAX_PRICE",
    "MAX_TS_MS",
    "MAX_VOLUME",
    "MIN_ORDER_TOTAL_KRW",
    "MIN_PRICE",
    "MIN_TS_MS",
    "MIN_VOLUME",
    "VOLUME_DECIMALS",
    "check_order",
    "epoch_ms_problem",
    "is_market_id",
    "market_id_problem",
    "price_problem",
    "volume_problem",
    "fee_rate",
    "is_valid_price",
    "max_order_total",
    "min_order_total",
    "quote_currency",
    "round_price",
    "round_volume",
    "tick_size",
]

MIN_ORDER_TOTAL_KRW = Decimal(5000)
"""Smallest order total on KRW markets (``under_min_total_*`` below it)."""

VOLUME_DECIMALS = 8
"""Order volumes carry at most this many decimal places."""

_VOLUME_QUANTUM = Decimal(1).scaleb(-VOLUME_DECIMALS)
KST = timezone(timedelta(hours=9), "KST")

Side = Literal["bid", "ask"]
OrdType = Literal["limit", "price", "market", "best"]

ORD_TYPES: frozenset[str] = frozenset({"limit", "price", "market", "best"})
SIDES: frozenset[str] = frozenset({"bid", "ask"})
TIME_IN_FORCE: frozenset[str] = frozenset({"ioc", "fok", "post_only"})


@dataclass(frozen=True, slots=True)
class _Band:
    lower: Decimal  # inclusive
    tick: Decimal


def _table(*rows: tuple[str, str]) -> tuple[_Band, ...]:
    """Bands from ``(lower bound, tick)`` rows, highest band first."""
    bands = tuple(_Band(Decimal(lo), Decimal(t)) for lo, t in rows)
    assert all(a.lower > b.lower for a, b in zip(bands, bands[1:], strict=False))
    return bands


# Shared tail below 10 KRW for the 2024 and 2025 tables (see module docstring).
_KRW_TAIL_2024 = (
    ("10", "0.01"),
    ("1", "0.001"),
    ("0.1", "0.0001"),
    ("0.01", "0.00001"),
    ("0.001", "0.000001"),
    ("0.0001", "0.0000001"),
    ("0", "0.00000001"),
)

_KRW_2023 = _table(
    ("2000000", "1000"), ("1000000", "500"), ("500000", "100"), ("100000", "50"), ("10000", "10"),
    ("1000", "5"), ("100", "1"), ("10", "0.1"), ("1", "0.01"), ("0.1", "0.001"), ("0", "0.0001"),
)
_KRW_2024 = _table(
    ("2000000", "1000"), ("1000000", "500"), ("500000", "100"), ("100000", "50"), ("10000", "10"),
    ("1000", "1"), ("100", "0.1"), *_KRW_TAIL_2024,
)
_KRW_2024_16 = _table(  # the 16 coins of 2024-10-14: 1 KRW in the 100-1,000 band
    ("2000000", "1000"), ("1000000", "500"), ("500000", "100"), ("100000", "50"), ("10000", "10"),
    ("1000", "1"), ("100", "1"), *_KRW_TAIL_2024,
)
_KRW_2025_STABLE = _table(  # USDT/KRW, USDC/KRW from 2025-03-21: 0.5 KRW in the 1,000-10,000 band
    ("2000000", "1000"), ("1000000", "500"), ("500000", "100"), ("100000", "50"), ("10000", "10"),
    ("1000", "0.5"), ("100", "0.1"), *_KRW_TAIL_2024,
)
_KRW_2025 = _table(
    ("1000000", "1000"), ("500000", "500"), ("100000", "100"), ("50000", "50"), ("10000", "10"),
    ("5000", "5"), ("1000", "1"), ("100", "1"), *_KRW_TAIL_2024,
)
_USDT_2024 = _table(
    ("10", "0.01"), ("1", "0.001"), ("0.1", "0.0001"), ("0.01", "0.00001"), ("0.001", "0.000001"),
    ("0.0001", "0.0000001"), ("0", "0.00000001"),
)
_USDT_OLD = _table(("0", "0.001"))
_BTC = _table(("0", "0.00000001"))

KRW_2024_CHANGE = datetime(2024, 1, 29, tzinfo=KST)
KRW_16_COINS_CHANGE = datetime(2024, 10, 14, tzinfo=KST)
KRW_STABLECOIN_CHANGE = datetime(2025, 3, 21, 1, tzinfo=KST)
KRW_2025_CHANGE = datetime(2025, 7, 31, tzinfo=KST)
USDT_BTC_2024_CHANGE = datetime(2024, 8, 19, tzinfo=KST)

KRW_16_COINS: frozenset[str] = frozenset(
    f"KRW-{c}" for c in ("ADA", "ALGO", "BLUR", "CELO", "ELF", "EOS", "GRS", "GRT", "ICX", "MANA",
                          "MINA", "POL", "SAND", "SEI", "STG", "TRX")
)
KRW_STABLECOINS: frozenset[str] = frozenset({"KRW-USDT", "KRW-USDC"})

# Orders/chance example: KRW max_total "1000000000.0" (per-market value: orders/chance market.max_total).
_MAX_TOTAL_KRW = Decimal(1_000_000_000)
# BTC market maximum order: 20 BTC, 10 BTC since 2025-05-19 15:00 KST.
_BTC_MAX_CHANGE = datetime(2025, 5, 19, 15, tzinfo=KST)


def _instant(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def quote_currency(market: str) -> str:
    """The quote currency of a quote-first market id (``KRW-BTC`` → ``KRW``)."""
    if not is_market_id(market):
        raise ValueError(f"not an Upbit market id (QUOTE-BASE, upper case): {market!r}")
    quote = market.partition("-")[0]
    if quote not in {"KRW", "BTC", "USDT"}:
        raise ValueError(f"unknown quote currency {quote!r} in market {market!r} (KRW, BTC or USDT)")
    return quote


def _bands(market: str, at: datetime | None) -> tuple[_Band, ...]:
    quote = quote_currency(market)
    when = _instant(at)
    if quote == "BTC":
        return _BTC
    if quote == "USDT":
        return _USDT_2024 if when >= USDT_BTC_2024_CHANGE else _USDT_OLD
    if when >= KRW_2025_CHANGE:
        return _KRW_2025
    if when < KRW_2024_CHANGE:
        return _KRW_2023
    if market in KRW_STABLECOINS and when >= KRW_STABLECOIN_CHANGE:
        return _KRW_2025_STABLE
    if market in KRW_16_COINS and when >= KRW_16_COINS_CHANGE:
        return _KRW_2024_16
    return _KRW_2024


def _positive(value: Decimal, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} must be a positive finite number, got {value}")
    return value


def _band(price: Decimal, bands: tuple[_Band, ...]) -> _Band:
    for band in bands:
        if price >= band.lower:
            return band
    return bands[-1]  # unreachable: the last band starts at 0


def tick_size(price: Decimal, *, market: str = "KRW-BTC", at: datetime | None = None) -> Decimal:
    """The price step for ``price`` on ``market`` at ``at`` (the band's lower bound is inclusive)."""
    return _band(_positive(price, "price"), _bands(market, at)).tick


def is_valid_price(price: Decimal, *, market: str = "KRW-BTC", at: datetime | None = None) -> bool:
    """Whether ``price`` sits on the tick grid of its band (and is positive)."""
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        return False
    return price % _band(price, _bands(market, at)).tick == 0


def round_price(price: Decimal, *, side: Side, market: str = "KRW-BTC",
                at: datetime | None = None) -> Decimal:
    """``price`` moved onto a valid tick: a bid rounds down, an ask rounds up.

    A bid never pays more and an ask never sells for less than asked. Rounding up can cross into
    the next band (e.g. 999,999 → 1,000,000); the result is then on that band's grid. Raises
    ``ValueError`` when a bid is below the smallest tick (nothing valid lies below it).
    """
    _positive(price, "price")
    if side not in SIDES:
        raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
    bands = _bands(market, at)
    rounding = ROUND_FLOOR if side == "bid" else ROUND_CEILING
    result = price
    for _ in range(len(bands) + 1):
        tick = _band(result, bands).tick
        if result % tick == 0:
            return result
        result = (result / tick).to_integral_value(rounding=rounding) * tick
        if result <= 0:
            raise ValueError(f"no valid bid price at or below {price} on {market}: below the smallest tick")
    raise AssertionError(f"rounding {price} did not converge")  # pragma: no cover - tables are nested


def round_volume(volume: Decimal) -> Decimal:
    """``volume`` truncated (rounded down) to ``VOLUME_DECIMALS`` places."""
    if not isinstance(volume, Decimal) or not volume.is_finite() or volume < 0:
        raise ValueError(f"volume must be a finite Decimal >= 0, got {volume!r}")
    return volume.quantize(_VOLUME_QUANTUM, rounding=ROUND_FLOOR)


def min_order_total(market: str, *, at: datetime | None = None) -> Decimal:
    """The smallest order total (price × volume, in the quote currency) ``market`` accepts."""
    quote = quote_currency(market)
    if quote == "KRW":
        return MIN_ORDER_TOTAL_KRW
    newer = _instant(at) >= USDT_BTC_2024_CHANGE
    if quote == "BTC":
        return Decimal("0.00005") if newer else Decimal("0.0005")
    return Decimal("0.5") if newer else Decimal("0.0005")


def max_order_total(market: str, *, at: datetime | None = None) -> Decimal | None:
    """The largest order total documented for ``market`` (``None`` when none is documented)."""
    quote = quote_currency(market)
    if quote == "KRW":
        return _MAX_TOTAL_KRW
    if quote == "BTC":
        return Decimal(10) if _instant(at) >= _BTC_MAX_CHANGE else Decimal(20)
    return None


def fee_rate(market: str) -> Decimal:
    """The default taker/maker fee rate, charged in the quote currency.

    KRW: 0.05 % (orders/chance ``bid_fee``/``ask_fee`` "0.0005"). BTC and USDT markets: 0.25 %,
    ccxt's default, UNCONFIRMED from Upbit. The authoritative value is ``orders/chance``.
    """
    return Decimal("0.0005") if quote_currency(market) == "KRW" else Decimal("0.0025")


def _decimal_or_problem(value: object, what: str, problems: list[str]) -> Decimal | None:
    if value is None:
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"{what} {value!r} is not a number")
        return None
    if not number.is_finite() or number <= 0:
        problems.append(f"{what} must be positive, got {number}")
        return None
    return number


def check_order(*, market: str, side: str, ord_type: str, price: Decimal | None,  # noqa: C901, PLR0912
                volume: Decimal | None, time_in_force: str | None = None,
                at: datetime | None = None) -> list[str]:
    """Problems with an order, in words a person can act on; ``[]`` when Upbit should accept it.

    Field rules (docs/upbit-api.md §2.3, POST /v1/orders): ``limit`` needs price and volume; ``price``
    (market buy by total) is a bid with ``price`` = total and no volume; ``market`` (market sell)
    is an ask with volume and no price; ``best`` needs ``time_in_force`` ioc/fok, a bid sends the
    total as ``price``, an ask sends ``volume``. ``post_only`` only with ``limit``; ioc/fok only
    with ``limit`` or ``best``. Then: tick grid, volume precision, minimum and maximum total.
    """
    problems: list[str] = []
    try:
        quote = quote_currency(market)
    except ValueError as exc:
        return [str(exc)]
    if side not in SIDES:
        problems.append(f"side must be 'bid' (buy) or 'ask' (sell), got {side!r}")
    if ord_type not in ORD_TYPES:
        problems.append(f"ord_type must be one of limit, price, market, best; got {ord_type!r}")
    if time_in_force is not None and time_in_force not in TIME_IN_FORCE:
        problems.append(f"time_in_force must be ioc, fok or post_only; got {time_in_force!r}")
    p = _decimal_or_problem(price, "price", problems)
    v = _decimal_or_problem(volume, "volume", problems)
    if problems:
        return problems

    needs_price = ord_type == "limit" or (ord_type in {"price", "best"} and side == "bid")
    needs_volume = ord_type == "limit" or (ord_type in {"market", "best"} and side == "ask")
    if ord_type == "price" and side != "bid":
        problems.append("ord_type 'price' (market buy by total) is for bids only; sell with ord_type 'market'")
    if ord_type == "market" and side != "ask":
        problems.append("ord_type 'market' (market sell by volume) is for asks only; buy with ord_type 'price'")
    if needs_price and price is None:
        problems.append(f"a {ord_type} {side} needs price" + (" (the total to spend)" if ord_type != "limit" else ""))
    if not needs_price and price is not None:
        problems.append(f"a {ord_type} {side} must not send price (send it as null or omit it)")
    if needs_volume and volume is None:
        problems.append(f"a {ord_type} {side} needs volume")
    if not needs_volume and volume is not None:
        problems.append(f"a {ord_type} {side} must not send volume (send it as null or omit it)")
    if ord_type == "best" and time_in_force not in {"ioc", "fok"}:
        problems.append("a best order needs time_in_force 'ioc' or 'fok'")
    if time_in_force == "post_only" and ord_type != "limit":
        problems.append("time_in_force 'post_only' is only for limit orders")
    if time_in_force in {"ioc", "fok"} and ord_type not in {"limit", "best"}:
        problems.append(f"time_in_force {time_in_force!r} is only for limit or best orders")

    if v is not None and round_volume(v) != v:
        problems.append(f"volume {v:f} has more than {VOLUME_DECIMALS} decimal places (use {round_volume(v):f})")
    if p is not None and ord_type == "limit" and not is_valid_price(p, market=market, at=at):
        tick = tick_size(p, market=market, at=at)
        lower = p - p % tick
        problems.append(
            f"price {p:f} is not a multiple of the {tick:f} {quote} tick for that price on {market} "
            f"(nearest valid: {lower:f} or {round_price(p, side='ask', market=market, at=at):f})"
        )
    total = p * v if ord_type == "limit" and p is not None and v is not None else (
        p if ord_type in {"price", "best"} and side == "bid" else None)
    if total is not None:
        minimum = min_order_total(market, at=at)
        if total < minimum:
            problems.append(f"order total {total.normalize():f} {quote} is under the {minimum} {quote} minimum")
        maximum = max_order_total(market, at=at)
        if maximum is not None and total > maximum:
            problems.append(f"order total {total.normalize():f} {quote} is over the {maximum} {quote} maximum")
    return problems


# --- plausibility of exchange data (see the module docstring) -----------------------------------

MARKET_ID = re.compile(r"[A-Z0-9]+-[A-Z0-9]+", re.ASCII)
"""An Upbit market id: ``QUOTE-BASE``, both parts non-empty upper-case ASCII letters or digits."""

MIN_PRICE = Decimal("1e-12")
MAX_PRICE = Decimal("1e12")
"""A trade price lies in [1e-12, 1e12] (Upbit's finest tick is 1e-8; BTC in KRW is about 1e8)."""
MIN_VOLUME = Decimal("1e-12")
MAX_VOLUME = Decimal("1e15")
"""A trade volume lies in [1e-12, 1e15] (volumes have 8 decimals; a minute of a meme coin is < 1e12)."""
MAX_DIGITS = 34
"""Significant digits a price or volume may have (decimal128's; our decimal contexts hold them)."""

MIN_TS_MS = 1_230_768_000_000  # 2009-01-01T00:00:00Z: no crypto trade is older
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z: a generous future bound (files are historical)


def is_market_id(market: object) -> bool:
    """True for ``KRW-BTC``, ``BTC-FCT2``; False for ``KRW-``, ``krw-btc``, ``KRW-B-C``, ``KRW-₿``."""
    return isinstance(market, str) and MARKET_ID.fullmatch(market) is not None


def market_id_problem(market: object) -> str | None:
    """What is wrong with ``market`` as an Upbit market id, or ``None``."""
    if is_market_id(market):
        return None
    return f"expected a market code like KRW-BTC (QUOTE-BASE, upper-case letters and digits), got {market!r}"


def price_problem(value: Decimal) -> str | None:
    """What is wrong with ``value`` as a trade price (finite, in range, not absurdly precise), or ``None``."""
    return _magnitude_problem(value, MIN_PRICE, MAX_PRICE, "price")


def volume_problem(value: Decimal) -> str | None:
    """What is wrong with ``value`` as a trade volume (finite, > 0, in range), or ``None``."""
    return _magnitude_problem(value, MIN_VOLUME, MAX_VOLUME, "volume")


def _magnitude_problem(value: Decimal, low: Decimal, high: Decimal, what: str) -> str | None:
    allowed = f"a {what} from {low} to {high}"
    if not value.is_finite():
        return f"{value} is not a finite number; allowed: {allowed}"
    if value <= 0:
        return f"must be positive, got {value}; allowed: {allowed}"
    if value > high:
        return f"{_short(value)} is too large; allowed: {allowed}"
    if value < low:
        return f"{_short(value)} is too small; allowed: {allowed}"
    if len(value.as_tuple().digits) > MAX_DIGITS:
        return f"has more than {MAX_DIGITS} significant digits; allowed: {allowed}"
    return None


def epoch_ms_problem(ts_ms: int) -> str | None:
    """What is wrong with ``ts_ms`` as a trade time in epoch milliseconds, or ``None``.

    A time in seconds (or microseconds) is named as such: data in seconds would otherwise land in
    January 1970 without a word.
    """
    if MIN_TS_MS <= ts_ms < MAX_TS_MS:
        return None
    allowed = f"epoch milliseconds from {MIN_TS_MS} (2009-01-01) to {MAX_TS_MS} (2100-01-01)"
    if MIN_TS_MS <= ts_ms * 1000 < MAX_TS_MS:
        return f"{ts_ms} looks like seconds, expected milliseconds (e.g. {ts_ms * 1000}); allowed: {allowed}"
    if MIN_TS_MS <= ts_ms // 1000 < MAX_TS_MS:
        return f"{ts_ms} looks like microseconds, expected milliseconds (e.g. {ts_ms // 1000}); allowed: {allowed}"
    return f"{_short(ts_ms)} is not a plausible trade time; allowed: {allowed}"


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
