"""The public quotation endpoints, answered from the replayed market state (:class:`Tape`).

Quotation answers write numbers as JSON **numbers** (``docs/upbit-api.md`` §2.1). A market
that is listed but has printed no trade yet in the replay has no ticker, trades or book; it is
answered like an unknown code, 404 ``{"name":404,"message":"Code not found"}`` (UNCONFIRMED: §3.4
documents numeric names but not this answer), since the simulator has nothing to say.
Trades and candles are listed newest first (ccxt's example shows it; UNCONFIRMED in the docs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from model.market import Trade
from exchange import rules
from upbit_sim.errors import ApiError
from upbit_sim.markets import MarketList
from upbit_sim.params import Params
from upbit_sim.render import KST
from upbit_sim.tape import BOOK_LEVELS, Candle, Tape, Ticker

__all__ = ["CANDLE_UNITS", "Quotation", "number"]

CANDLE_UNITS: Final = frozenset({1, 3, 5, 10, 15, 30, 60, 240})
_MAX_TRADES: Final = 500  # UNCONFIRMED: the docs do not give the maximum count of trades/ticks
_MAX_CANDLES: Final = 200

Handler = Callable[[Params], object]


def number(value: Decimal) -> float:
    """A decimal as a JSON number (shortest float text: exact for Upbit's <= 15 significant digits)."""
    return float(value)


def _utc(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


class Quotation:
    """Handlers of ``/v1/market/all``, ``/v1/ticker``, ``/v1/trades/ticks``, candles and books."""

    def __init__(self, *, markets: MarketList, tape: Tape, rules_at: datetime | None = None) -> None:
        self._markets = markets
        self._tape = tape
        self._rules_at = rules_at

    def market_all(self, params: Params) -> list[dict[str, object]]:
        details = (params.text("isDetails") or params.text("is_details") or "false").lower() == "true"
        return [info.as_json(details=details) for info in self._markets]

    def ticker(self, params: Params) -> list[dict[str, object]]:
        return [_ticker_json(self._require_ticker(m)) for m in self._codes(params, "markets")]

    def ticker_all(self, params: Params) -> list[dict[str, object]]:
        quotes = [q.strip() for q in (params.text("quote_currencies") or "KRW").split(",") if q.strip()]
        result = []
        for market in self._tape.markets():
            ticker = self._tape.ticker(market)
            if ticker is not None and market.partition("-")[0] in quotes:
                result.append(_ticker_json(ticker))
        return result

    def trades_ticks(self, params: Params) -> list[dict[str, object]]:
        market = self._one_code(params)
        count = params.integer("count", default=1, low=1, high=_MAX_TRADES)
        cursor_text = params.text("cursor")
        try:
            cursor = int(cursor_text) if cursor_text is not None else None
        except ValueError:
            raise ApiError.validation("cursor does not have a valid value") from None
        ticker = self._require_ticker(market)
        return [_trade_json(t, ticker) for t in self._tape.trades(market, count=count, cursor=cursor)]

    def candles_minutes(self, unit_text: str, params: Params) -> list[dict[str, object]]:
        try:
            unit = int(unit_text)
        except ValueError:
            unit = -1
        if unit not in CANDLE_UNITS:
            raise ApiError.not_found(f"/v1/candles/minutes/{unit_text}")
        market = self._one_code(params)
        count = params.integer("count", default=1, low=1, high=_MAX_CANDLES)
        to_ms = _parse_to(params.text("to"))
        self._require_ticker(market)
        candles = self._tape.candles(market, unit=unit, count=count, to_ms=to_ms)
        return [_candle_json(market, unit, c) for c in candles]

    def orderbook(self, params: Params) -> list[dict[str, object]]:
        levels = params.integer("count", default=BOOK_LEVELS, low=1, high=BOOK_LEVELS)
        result = []
        for market in self._codes(params, "markets"):
            self._require_ticker(market)
            book = self._tape.book(market, levels=levels)
            assert book is not None
            result.append({
                "market": market,
                "timestamp": book.ts_ms,
                "total_ask_size": number(book.total_ask_size),
                "total_bid_size": number(book.total_bid_size),
                "orderbook_units": [
                    {"ask_price": number(a), "bid_price": number(b), "ask_size": number(asz), "bid_size": number(bsz)}
                    for a, asz, b, bsz in book.units
                ],
                "level": 0,  # the synthetic book is not grouped by price level
            })
        return result

    def orderbook_instruments(self, params: Params) -> list[dict[str, object]]:
        result: list[dict[str, object]] = []
        for market in self._codes(params, "markets"):
            last = self._tape.last_price(market)
            tick = rules.tick_size(last, market=market, at=self._rules_at) if last is not None else None
            result.append({
                "market": market,
                "quote_currency": market.partition("-")[0],
                "tick_size": format(tick.normalize(), "f") if tick is not None else None,
                "supported_levels": [0],
            })
        return result

    # --- helpers ------------------------------------------------------------------------

    def _codes(self, params: Params, key: str) -> list[str]:
        text = params.text(key)
        codes = [c.strip() for c in text.split(",") if c.strip()] if text else params.texts(key)
        if not codes:
            raise ApiError.missing_parameter()
        for code in codes:
            if code not in self._markets:
                raise ApiError(404, 404, "Code not found")
        return codes

    def _one_code(self, params: Params) -> str:
        market = params.text("market")
        if market is None:
            raise ApiError.missing_parameter()
        if market not in self._markets:
            raise ApiError(404, 404, "Code not found")
        return market

    def _require_ticker(self, market: str) -> Ticker:
        ticker = self._tape.ticker(market)
        if ticker is None:
            raise ApiError(404, 404, "Code not found")
        return ticker


def _parse_to(text: str | None) -> int | None:
    """``to``: ISO-8601 or ``yyyy-MM-dd HH:mm:ss``; without an offset it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError.validation("to does not have a valid value") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _ticker_json(t: Ticker) -> dict[str, object]:
    trade = t.trade
    utc, kst = _utc(trade.ts_ms), _utc(trade.ts_ms).astimezone(KST)
    return {
        "market": t.market,
        "trade_date": utc.strftime("%Y%m%d"),
        "trade_time": utc.strftime("%H%M%S"),
        "trade_date_kst": kst.strftime("%Y%m%d"),
        "trade_time_kst": kst.strftime("%H%M%S"),
        "trade_timestamp": trade.ts_ms,
        "opening_price": number(t.opening_price),
        "high_price": number(t.high_price),
        "low_price": number(t.low_price),
        "trade_price": number(trade.price),
        "prev_closing_price": number(t.prev_closing_price),
        "change": t.change,
        "change_price": number(t.change_price),
        "change_rate": number(abs(t.signed_change_rate)),
        "signed_change_price": number(t.signed_change_price),
        "signed_change_rate": number(t.signed_change_rate),
        "trade_volume": number(trade.volume),
        "acc_trade_price": number(t.acc_trade_price),
        "acc_trade_price_24h": number(t.acc_trade_price_24h),
        "acc_trade_volume": number(t.acc_trade_volume),
        "acc_trade_volume_24h": number(t.acc_trade_volume_24h),
        "highest_52_week_price": number(t.highest_52_week_price),
        "highest_52_week_date": _utc(t.highest_52_week_ts_ms).strftime("%Y-%m-%d"),
        "lowest_52_week_price": number(t.lowest_52_week_price),
        "lowest_52_week_date": _utc(t.lowest_52_week_ts_ms).strftime("%Y-%m-%d"),
        "timestamp": trade.ts_ms,
    }


def _trade_json(trade: Trade, ticker: Ticker) -> dict[str, object]:
    utc = _utc(trade.ts_ms)
    return {
        "market": trade.market,
        "trade_date_utc": utc.strftime("%Y-%m-%d"),
        "trade_time_utc": utc.strftime("%H:%M:%S"),
        "timestamp": trade.ts_ms,
        "trade_price": number(trade.price),
        "trade_volume": number(trade.volume),
        "prev_closing_price": number(ticker.prev_closing_price),
        "change_price": number(trade.price - ticker.prev_closing_price),
        "ask_bid": trade.side.value,
        "sequential_id": trade.seq,
    }


def _candle_json(market: str, unit: int, c: Candle) -> dict[str, object]:
    start = _utc(c.start_ms)
    return {
        "market": market,
        "candle_date_time_utc": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "candle_date_time_kst": (start + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S"),
        "opening_price": number(c.open),
        "high_price": number(c.high),
        "low_price": number(c.low),
        "trade_price": number(c.close),
        "timestamp": c.last_ts_ms,
        "candle_acc_trade_price": number(c.acc_price),
        "candle_acc_trade_volume": number(c.acc_volume),
        "unit": unit,
    }
