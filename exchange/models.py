"""Typed, immutable views of Upbit's REST answers, with exact ``Decimal`` money.

Exchange endpoints send decimals as strings (``"0.005"``), quotation endpoints as JSON numbers;
``rest.py`` decodes JSON with ``parse_float=Decimal`` so neither ever passes through a float. Each
``from_json`` raises ``KeyError``/``TypeError``/``ValueError``/``ArithmeticError`` on a malformed
item; ``rest.py`` turns those into ``MalformedResponse``. Unknown extra fields are ignored.

Every decimal is finite and of a sane magnitude (``|x|`` at most 1e20, none of ``1E+400000``'s
kind, at most 40 significant digits); a trade tick must also pass ``exchange.rules``' plausibility
checks (market id, price, volume, epoch-millisecond time, side), since it becomes a ``Trade``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from exchange import rules

__all__ = [
    "Account", "Candle", "ChanceSide", "Instrument", "Market", "MarketChance", "Order", "OrderChance",
    "OrderTrade", "Orderbook", "OrderbookUnit", "Ticker", "TradeTick",
]

Json = Mapping[str, Any]


def dec(value: object) -> Decimal:
    """An exact Decimal from a JSON string or number (never from a float)."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise TypeError(f"expected a decimal string or number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        result = Decimal(value)
    else:
        raise TypeError(f"expected a decimal string or number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    if result and not _TINY <= abs(result) <= _HUGE or len(result.as_tuple().digits) > _DIGITS:
        raise ValueError(f"not a number of a sane magnitude: {str(result)[:40]}")
    return result


_HUGE = Decimal("1e20")  # more than any balance, price or volume Upbit has: 1E+400000 fails later, far away
_TINY = Decimal("1e-20")
_DIGITS = 40


def opt_dec(value: object) -> Decimal | None:
    return None if value is None else dec(value)


def ts(value: str) -> datetime:
    """An ISO-8601 time (``+09:00``, ``Z`` or naive UTC) as an aware datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = dec(value)
    if number != number.to_integral_value():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    currency: str
    balance: Decimal
    locked: Decimal
    avg_buy_price: Decimal
    avg_buy_price_modified: bool
    unit_currency: str

    @classmethod
    def from_json(cls, d: Json) -> Account:
        return cls(currency=str(d["currency"]), balance=dec(d["balance"]), locked=dec(d["locked"]),
                   avg_buy_price=dec(d.get("avg_buy_price", "0")),
                   avg_buy_price_modified=bool(d.get("avg_buy_price_modified", False)),
                   unit_currency=str(d.get("unit_currency", "KRW")))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChanceSide:
    currency: str
    min_total: Decimal
    price_unit: Decimal | None

    @classmethod
    def from_json(cls, d: Json) -> ChanceSide:
        return cls(currency=str(d["currency"]), min_total=dec(d["min_total"]), price_unit=opt_dec(d.get("price_unit")))


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketChance:
    id: str
    name: str
    order_types: tuple[str, ...]
    order_sides: tuple[str, ...]
    state: str
    max_total: Decimal | None
    bid: ChanceSide
    ask: ChanceSide

    @classmethod
    def from_json(cls, d: Json) -> MarketChance:
        return cls(id=str(d["id"]), name=str(d.get("name", d["id"])),
                   order_types=tuple(map(str, d.get("order_types") or ())),
                   order_sides=tuple(map(str, d.get("order_sides") or ())), state=str(d.get("state", "")),
                   max_total=opt_dec(d.get("max_total")), bid=ChanceSide.from_json(d["bid"]),
                   ask=ChanceSide.from_json(d["ask"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderChance:
    bid_fee: Decimal
    ask_fee: Decimal
    maker_bid_fee: Decimal | None
    maker_ask_fee: Decimal | None
    market: MarketChance
    bid_account: Account
    ask_account: Account

    @classmethod
    def from_json(cls, d: Json) -> OrderChance:
        return cls(bid_fee=dec(d["bid_fee"]), ask_fee=dec(d["ask_fee"]), maker_bid_fee=opt_dec(d.get("maker_bid_fee")),
                   maker_ask_fee=opt_dec(d.get("maker_ask_fee")), market=MarketChance.from_json(d["market"]),
                   bid_account=Account.from_json(d["bid_account"]), ask_account=Account.from_json(d["ask_account"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTrade:
    market: str
    uuid: str
    price: Decimal
    volume: Decimal
    funds: Decimal
    side: str
    created_at: datetime
    trend: str | None = None

    @classmethod
    def from_json(cls, d: Json) -> OrderTrade:
        return cls(market=str(d["market"]), uuid=str(d["uuid"]), price=dec(d["price"]), volume=dec(d["volume"]),
                   funds=dec(d["funds"]), side=str(d["side"]), created_at=ts(d["created_at"]),
                   trend=_opt_str(d.get("trend")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    uuid: str
    identifier: str | None
    market: str
    side: str
    ord_type: str
    state: str
    price: Decimal | None
    volume: Decimal | None
    remaining_volume: Decimal | None
    executed_volume: Decimal
    reserved_fee: Decimal
    remaining_fee: Decimal
    paid_fee: Decimal
    locked: Decimal
    trades_count: int
    created_at: datetime
    time_in_force: str | None = None
    smp_type: str | None = None
    prevented_volume: Decimal | None = None
    prevented_locked: Decimal | None = None
    executed_funds: Decimal | None = None
    trades: tuple[OrderTrade, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.state in {"wait", "watch"}

    @classmethod
    def from_json(cls, d: Json) -> Order:
        return cls(
            uuid=str(d["uuid"]), identifier=_opt_str(d.get("identifier")), market=str(d["market"]),
            side=str(d["side"]), ord_type=str(d["ord_type"]), state=str(d["state"]), price=opt_dec(d.get("price")),
            volume=opt_dec(d.get("volume")), remaining_volume=opt_dec(d.get("remaining_volume")),
            executed_volume=dec(d.get("executed_volume", "0")), reserved_fee=dec(d.get("reserved_fee", "0")),
            remaining_fee=dec(d.get("remaining_fee", "0")), paid_fee=dec(d.get("paid_fee", "0")),
            locked=dec(d.get("locked", "0")), trades_count=_int(d.get("trades_count", 0)),
            created_at=ts(d["created_at"]), time_in_force=_opt_str(d.get("time_in_force")),
            smp_type=_opt_str(d.get("smp_type")), prevented_volume=opt_dec(d.get("prevented_volume")),
            prevented_locked=opt_dec(d.get("prevented_locked")), executed_funds=opt_dec(d.get("executed_funds")),
            trades=tuple(OrderTrade.from_json(t) for t in d.get("trades") or ()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Market:
    market: str
    korean_name: str
    english_name: str
    warning: bool = False
    cautions: frozenset[str] = frozenset()  # market_event.caution flags that are true

    @classmethod
    def from_json(cls, d: Json) -> Market:
        event = d.get("market_event") or {}
        caution = event.get("caution") or {}
        warning = bool(event.get("warning", False)) or d.get("market_warning") in {"CAUTION", "WARNING"}
        return cls(market=str(d["market"]), korean_name=str(d.get("korean_name", "")),
                   english_name=str(d.get("english_name", "")), warning=warning,
                   cautions=frozenset(str(k) for k, v in caution.items() if v is True))


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticker:
    market: str
    trade_price: Decimal
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    prev_closing_price: Decimal
    change: str
    signed_change_price: Decimal
    signed_change_rate: Decimal
    trade_volume: Decimal
    acc_trade_price: Decimal
    acc_trade_price_24h: Decimal
    acc_trade_volume: Decimal
    acc_trade_volume_24h: Decimal
    trade_timestamp: int
    timestamp: int

    @classmethod
    def from_json(cls, d: Json) -> Ticker:
        return cls(market=str(d["market"]), trade_price=dec(d["trade_price"]), opening_price=dec(d["opening_price"]),
                   high_price=dec(d["high_price"]), low_price=dec(d["low_price"]),
                   prev_closing_price=dec(d["prev_closing_price"]), change=str(d["change"]),
                   signed_change_price=dec(d["signed_change_price"]), signed_change_rate=dec(d["signed_change_rate"]),
                   trade_volume=dec(d["trade_volume"]), acc_trade_price=dec(d["acc_trade_price"]),
                   acc_trade_price_24h=dec(d["acc_trade_price_24h"]), acc_trade_volume=dec(d["acc_trade_volume"]),
                   acc_trade_volume_24h=dec(d["acc_trade_volume_24h"]),
                   trade_timestamp=_int(d.get("trade_timestamp", d["timestamp"])), timestamp=_int(d["timestamp"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeTick:
    market: str
    timestamp: int
    trade_price: Decimal
    trade_volume: Decimal
    ask_bid: str  # the taker side: ASK = a sell hit the bid
    sequential_id: int
    prev_closing_price: Decimal | None = None
    change_price: Decimal | None = None

    @classmethod
    def from_json(cls, d: Json) -> TradeTick:
        tick = cls(market=str(d["market"]), timestamp=_int(d["timestamp"]), trade_price=dec(d["trade_price"]),
                   trade_volume=dec(d["trade_volume"]), ask_bid=str(d["ask_bid"]), sequential_id=_int(d["sequential_id"]),
                   prev_closing_price=opt_dec(d.get("prev_closing_price")), change_price=opt_dec(d.get("change_price")))
        problem = (rules.market_id_problem(tick.market) or rules.epoch_ms_problem(tick.timestamp)
                   or rules.price_problem(tick.trade_price) or rules.volume_problem(tick.trade_volume)
                   or (None if tick.ask_bid in {"ASK", "BID"} else f"ask_bid must be ASK or BID, got {tick.ask_bid!r}")
                   or (None if tick.sequential_id >= 0 else "sequential_id must not be negative"))
        if problem is not None:
            raise ValueError(f"not a plausible trade: {problem}")
        return tick


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle:
    market: str
    start: datetime  # candle_date_time_utc, aware UTC
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    trade_price: Decimal  # the close
    volume: Decimal       # candle_acc_trade_volume
    value: Decimal        # candle_acc_trade_price
    timestamp: int
    unit: int

    @classmethod
    def from_json(cls, d: Json) -> Candle:
        return cls(market=str(d["market"]), start=ts(d["candle_date_time_utc"]).astimezone(UTC),
                   opening_price=dec(d["opening_price"]), high_price=dec(d["high_price"]), low_price=dec(d["low_price"]),
                   trade_price=dec(d["trade_price"]), volume=dec(d["candle_acc_trade_volume"]),
                   value=dec(d["candle_acc_trade_price"]), timestamp=_int(d["timestamp"]), unit=_int(d.get("unit", 1)))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderbookUnit:
    ask_price: Decimal
    bid_price: Decimal
    ask_size: Decimal
    bid_size: Decimal

    @classmethod
    def from_json(cls, d: Json) -> OrderbookUnit:
        return cls(ask_price=dec(d["ask_price"]), bid_price=dec(d["bid_price"]), ask_size=dec(d["ask_size"]),
                   bid_size=dec(d["bid_size"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Orderbook:
    market: str
    timestamp: int
    total_ask_size: Decimal
    total_bid_size: Decimal
    units: tuple[OrderbookUnit, ...]
    level: Decimal | None = None

    @classmethod
    def from_json(cls, d: Json) -> Orderbook:
        return cls(market=str(d["market"]), timestamp=_int(d["timestamp"]), total_ask_size=dec(d["total_ask_size"]),
                   total_bid_size=dec(d["total_bid_size"]),
                   units=tuple(OrderbookUnit.from_json(u) for u in d["orderbook_units"]), level=opt_dec(d.get("level")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    market: str
    quote_currency: str
    tick_size: Decimal
    supported_levels: tuple[Decimal, ...]

    @classmethod
    def from_json(cls, d: Json) -> Instrument:
        return cls(market=str(d["market"]), quote_currency=str(d["quote_currency"]), tick_size=dec(d["tick_size"]),
                   supported_levels=tuple(dec(x) for x in d.get("supported_levels") or ()))
