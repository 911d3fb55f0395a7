"""Upbit WebSocket messages on the wire: trade, ticker, orderbook, myOrder, myAsset (sans-I/O).

Each message is one UTF-8 JSON object sent as a **binary** frame, with numbers as JSON numbers
and ``stream_type`` ``SNAPSHOT`` or ``REALTIME`` (``docs/upbit-api.md`` §5). ``DEFAULT`` uses the long
key names, ``SIMPLE`` the short ones of its §5.5 tables; ``JSON_LIST`` and ``SIMPLE_LIST``
send the same objects wrapped in a JSON array. myOrder/myAsset keys without a documented SIMPLE
spelling keep their DEFAULT name in SIMPLE (UNCONFIRMED); orderbook ``lv`` is UNCONFIRMED too
(``as``/``bs`` are seen in our recordings). A myOrder ``trade`` event carries the fill's price and
volume (``price`` is documented as the fill price when state=trade; ``volume`` is UNCONFIRMED).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import orjson

from upbit_sim.ledger import Holding
from upbit_sim.orders import Fill, Order
from upbit_sim.quotation import number
from upbit_sim.tape import Book, Print, Ticker

__all__ = ["FORMATS", "asset_message", "encode", "my_order_message", "orderbook_message", "ticker_message",
           "trade_message"]

FORMATS: Final = frozenset({"DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"})

_SIMPLE: Final[Mapping[str, str]] = {
    # common
    "type": "ty", "code": "cd", "timestamp": "tms", "stream_type": "st",
    # trade
    "trade_price": "tp", "trade_volume": "tv", "ask_bid": "ab", "prev_closing_price": "pcp", "change": "c",
    "change_price": "cp", "trade_date": "td", "trade_time": "ttm", "trade_timestamp": "ttms",
    "sequential_id": "sid", "best_ask_price": "bap", "best_ask_size": "bas", "best_bid_price": "bbp",
    "best_bid_size": "bbs",
    # ticker
    "opening_price": "op", "high_price": "hp", "low_price": "lp", "signed_change_price": "scp",
    "change_rate": "cr", "signed_change_rate": "scr", "acc_trade_volume": "atv", "acc_trade_volume_24h": "atv24h",
    "acc_trade_price": "atp", "acc_trade_price_24h": "atp24h", "acc_ask_volume": "aav", "acc_bid_volume": "abv",
    "highest_52_week_price": "h52wp", "highest_52_week_date": "h52wdt", "lowest_52_week_price": "l52wp",
    "lowest_52_week_date": "l52wdt", "market_state": "ms", "is_trading_suspended": "its",
    "delisting_date": "dd", "market_warning": "mw",
    # orderbook
    "total_ask_size": "tas", "total_bid_size": "tbs", "orderbook_units": "obu", "ask_price": "ap",
    "bid_price": "bp", "ask_size": "as", "bid_size": "bs", "level": "lv",
    # myOrder (documented SIMPLE keys only)
    "uuid": "uid", "order_type": "ot", "state": "s", "trade_uuid": "tuid", "price": "p", "avg_price": "ap",
}
# ``trade_date`` is ``td`` in trade messages but ``tdt`` in ticker messages. (``ap`` is both the
# orderbook's ask_price and myOrder's avg_price, as documented: never in the same message.)
_TRADE_DATE_KEY: Final = {"ticker": "tdt"}


def encode(message: dict[str, object], fmt: str) -> bytes:
    """Serialise a DEFAULT-keyed message in ``fmt`` (DEFAULT, SIMPLE, JSON_LIST, SIMPLE_LIST)."""
    if fmt in ("SIMPLE", "SIMPLE_LIST"):
        message = _simple(message, str(message.get("type", "")))
    payload: object = [message] if fmt.endswith("_LIST") else message
    return orjson.dumps(payload)


def _simple(message: dict[str, object], kind: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in message.items():
        short = _TRADE_DATE_KEY.get(kind, "td") if key == "trade_date" else _SIMPLE.get(key, key)
        if isinstance(value, list):
            value = [_simple(v, kind) if isinstance(v, dict) else v for v in value]
        out[short] = value
    return out


def trade_message(p: Print, *, stream_type: str) -> dict[str, object]:
    t = p.trade
    moment = datetime.fromtimestamp(t.ts_ms / 1000, UTC)
    return {
        "type": "trade", "code": t.market, "timestamp": t.ts_ms,
        "trade_date": moment.strftime("%Y-%m-%d"), "trade_time": moment.strftime("%H:%M:%S"),
        "trade_timestamp": t.ts_ms, "trade_price": number(t.price), "trade_volume": number(t.volume),
        "ask_bid": t.side.value, "prev_closing_price": number(p.prev_closing_price), "change": p.change,
        "change_price": number(p.change_price), "sequential_id": t.seq,
        "best_ask_price": number(p.best_ask_price), "best_ask_size": number(p.best_ask_size),
        "best_bid_price": number(p.best_bid_price), "best_bid_size": number(p.best_bid_size),
        "stream_type": stream_type,
    }


def ticker_message(k: Ticker, *, stream_type: str) -> dict[str, object]:
    t = k.trade
    moment = datetime.fromtimestamp(t.ts_ms / 1000, UTC)
    return {
        "type": "ticker", "code": k.market, "opening_price": number(k.opening_price),
        "high_price": number(k.high_price), "low_price": number(k.low_price), "trade_price": number(t.price),
        "prev_closing_price": number(k.prev_closing_price), "change": k.change,
        "change_price": number(k.change_price), "signed_change_price": number(k.signed_change_price),
        "change_rate": number(abs(k.signed_change_rate)), "signed_change_rate": number(k.signed_change_rate),
        "trade_volume": number(t.volume), "acc_trade_volume": number(k.acc_trade_volume),
        "acc_trade_volume_24h": number(k.acc_trade_volume_24h), "acc_trade_price": number(k.acc_trade_price),
        "acc_trade_price_24h": number(k.acc_trade_price_24h), "trade_date": moment.strftime("%Y%m%d"),
        "trade_time": moment.strftime("%H%M%S"), "trade_timestamp": t.ts_ms, "ask_bid": t.side.value,
        "acc_ask_volume": number(k.acc_ask_volume), "acc_bid_volume": number(k.acc_bid_volume),
        "highest_52_week_price": number(k.highest_52_week_price),
        "highest_52_week_date": _date(k.highest_52_week_ts_ms),
        "lowest_52_week_price": number(k.lowest_52_week_price), "lowest_52_week_date": _date(k.lowest_52_week_ts_ms),
        "market_state": "ACTIVE", "is_trading_suspended": False, "delisting_date": None,
        "market_warning": "NONE", "timestamp": t.ts_ms, "stream_type": stream_type,
    }


def orderbook_message(book: Book, *, stream_type: str) -> dict[str, object]:
    return {
        "type": "orderbook", "code": book.market, "timestamp": book.ts_ms,
        "total_ask_size": number(book.total_ask_size), "total_bid_size": number(book.total_bid_size),
        "orderbook_units": [
            {"ask_price": number(a), "bid_price": number(b), "ask_size": number(asz), "bid_size": number(bsz)}
            for a, asz, b, bsz in book.units
        ],
        "level": 0, "stream_type": stream_type,
    }


def my_order_message(order: Order, *, state: str, fill: Fill | None, now_ms: int) -> dict[str, object]:
    """A myOrder event: ``state`` is wait, trade (with the ``fill``), done or cancel."""
    r = order.request
    avg = order.executed_funds / order.executed_volume if order.executed_volume > 0 else None
    created_ms = int(order.created_at.timestamp() * 1000)
    return {
        "type": "myOrder", "code": r.market, "uuid": order.uuid, "ask_bid": r.side.upper(),
        "order_type": r.ord_type, "state": state, "trade_uuid": fill.uuid if fill is not None else None,
        "price": number(fill.price) if fill is not None else _maybe(r.price),
        "avg_price": _maybe(avg), "volume": number(fill.volume) if fill is not None else _maybe(r.volume),
        "remaining_volume": _maybe(order.remaining_volume), "executed_volume": number(order.executed_volume),
        "trades_count": len(order.fills), "reserved_fee": number(order.reserved_fee),
        "remaining_fee": number(order.remaining_fee), "paid_fee": number(order.paid_fee),
        "locked": number(order.locked), "executed_funds": number(order.executed_funds),
        "time_in_force": r.time_in_force, "identifier": r.identifier, "smp_type": r.smp_type,
        "prevented_volume": 0, "prevented_locked": 0,
        "trade_timestamp": int(fill.created_at.timestamp() * 1000) if fill is not None else None,
        "order_timestamp": created_ms, "timestamp": now_ms, "stream_type": "REALTIME",
    }


def asset_message(holdings: Mapping[str, Holding], *, asset_uuid: str, now_ms: int) -> dict[str, object]:
    """A myAsset event with the given holdings."""
    return {
        "type": "myAsset", "asset_uuid": asset_uuid,
        "assets": [{"currency": c, "balance": number(h.balance), "locked": number(h.locked)}
                   for c, h in holdings.items()],
        "asset_timestamp": now_ms, "timestamp": now_ms, "stream_type": "REALTIME",
    }


def _maybe(value: object) -> float | None:
    return number(value) if isinstance(value, Decimal) else None


def _date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")
