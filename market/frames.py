"""Upbit WebSocket trade frames: decoding (sans-I/O) and the subscription request.

The public quotation WebSocket (``wss://api.upbit.com/websocket/v1``) sends each message as one
binary frame holding UTF-8 JSON. A ``trade`` message comes in one of two key spellings, chosen by
the ``format`` of the subscription:

=================  ===========  ======================================================
DEFAULT            SIMPLE       meaning
=================  ===========  ======================================================
``type``           ``ty``       ``"trade"`` (``"orderbook"``, ``"ticker"`` … are skipped)
``code``           ``cd``       market code, quote first: ``KRW-BTC``
``trade_timestamp``  ``ttms``   trade time, epoch milliseconds UTC
``trade_price``    ``tp``       price (JSON number)
``trade_volume``   ``tv``       volume (JSON number)
``ask_bid``        ``ab``       taker side: ``ASK`` (seller-initiated) or ``BID``
``sequential_id``  ``sid``      unique per trade; **not** a delivery order
=================  ===========  ======================================================

Other keys (``timestamp``/``tms``, ``trade_date``/``td``, ``prev_closing_price``/``pcp``,
``stream_type``/``st`` …) are ignored.

Numbers are turned into :class:`~decimal.Decimal` exactly as written when they have at most 15
significant digits (every Upbit price and 8-decimal volume below 10^7): orjson parses a JSON
number into the nearest double, and ``Decimal(repr(x))`` takes that double's *shortest* decimal
form, which is the original text for such numbers (``46.48838371`` stays ``46.48838371``,
``2.1E-7`` stays ``2.1E-7``). No binary floating-point arithmetic is ever done on the value.

Besides trades, the server sends ``{"status":"UP"}`` (keepalive answer) and, when a request is
wrong, ``{"error":{"name":"WRONG_FORMAT","message":"…"}}``. The first decodes to ``None``; the
second raises :class:`UpbitStreamError`. Anything else that does not hold a well-formed trade
raises :class:`FrameError`, naming the field and the problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

import orjson

from model.market import Side, Trade, TradeSource
from exchange import rules

__all__ = [
    "MARKET_CODE",
    "FrameError",
    "UpbitStreamError",
    "decode_trade",
    "subscription_message",
]

#: Upbit market codes: quote currency, dash, base currency, upper case (``KRW-BTC``, ``BTC-FCT2``).
MARKET_CODE: Final = rules.MARKET_ID

_EXCERPT_CHARS: Final = 160
_SIDES: Final = {"BID": Side.BID, "ASK": Side.ASK}


class FrameError(ValueError):
    """A frame that should hold a trade is not valid JSON or a field is missing or wrong."""

    def __init__(self, field: str, problem: str, frame: bytes | bytearray | memoryview | str) -> None:
        self.field = field
        self.problem = problem
        self.excerpt = _excerpt(frame)
        super().__init__(f"bad Upbit trade frame: {field} {problem} (frame: {self.excerpt})")


class UpbitStreamError(Exception):
    """The server answered with an error frame: ``{"error":{"name":…,"message":…}}``.

    This means our request was refused (``WRONG_FORMAT``, ``NO_TICKET``, ``NO_CODES``,
    ``INVALID_PARAM``, ``INVALID_AUTH`` …), not that a trade was malformed.
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"Upbit WebSocket error {name}: {message}")


@dataclass(frozen=True, slots=True)
class _Keys:
    """The key names of one trade format."""

    type: str
    code: str
    ts: str
    price: str
    volume: str
    side: str
    seq: str


_SIMPLE_KEYS: Final = _Keys("ty", "cd", "ttms", "tp", "tv", "ab", "sid")
_DEFAULT_KEYS: Final = _Keys(
    "type", "code", "trade_timestamp", "trade_price", "trade_volume", "ask_bid", "sequential_id"
)


def decode_trade(
    frame: bytes | bytearray | memoryview | str,
    *,
    source: TradeSource = TradeSource.LIVE,
    offset: int = -1,
) -> Trade | None:
    """Decode one WebSocket message into a :class:`Trade`, or ``None`` if it is not a trade.

    Args:
        frame: the message as received (binary frames are bytes, text frames str), UTF-8 JSON.
        source: recorded on the trade (``LIVE`` for the live feed, ``CAPTURE`` for a recording).
        offset: the trade's position in a recording, or -1 for a live trade.

    Returns:
        The trade for a ``trade`` message in DEFAULT or SIMPLE format; ``None`` for other message
        types (orderbook, ticker …) and for status messages such as ``{"status":"UP"}``.

    Raises:
        UpbitStreamError: the message is an error frame from the server.
        FrameError: the message is not a JSON object, has no message type, or is a trade with a
            missing or invalid field.

    """
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise FrameError("frame", f"is not valid UTF-8 JSON ({exc})", frame) from exc
    if not isinstance(obj, dict):
        raise FrameError("frame", f"is a JSON {_json_type(obj)}, expected an object", frame)

    keys = _trade_keys(obj, frame)
    if keys is None:
        return None

    code = _require(obj, keys.code, frame)
    if not isinstance(code, str):
        raise FrameError(keys.code, f"has wrong type {_json_type(code)}, expected string", frame)
    if MARKET_CODE.fullmatch(code) is None:
        raise FrameError(keys.code, f"is not a market code like 'KRW-BTC': {code!r}", frame)

    ts_ms = _require_int(obj, keys.ts, frame)
    problem = rules.epoch_ms_problem(ts_ms)
    if problem is not None:
        raise FrameError(keys.ts, f"must be an epoch-millisecond time: {problem}", frame)

    price = _require_decimal(obj, keys.price, frame)
    problem = rules.price_problem(price)
    if problem is not None:
        raise FrameError(keys.price, problem, frame)
    volume = _require_decimal(obj, keys.volume, frame)
    problem = rules.volume_problem(volume)
    if problem is not None:
        raise FrameError(keys.volume, problem, frame)

    side_text = _require(obj, keys.side, frame)
    side = _SIDES.get(side_text) if isinstance(side_text, str) else None
    if side is None:
        raise FrameError(keys.side, f"is an unknown side {side_text!r} (expected 'ASK' or 'BID')", frame)

    seq = _require_int(obj, keys.seq, frame)
    if seq < 0:
        raise FrameError(keys.seq, f"must not be negative, got {seq}", frame)

    return Trade(
        market=code,
        ts_ms=ts_ms,
        price=price,
        volume=volume,
        side=side,
        seq=seq,
        source=source,
        offset=offset,
    )


def subscription_message(
    markets: Iterable[str],
    ticket: str,
    fmt: Literal["DEFAULT", "SIMPLE"] = "SIMPLE",
    *,
    only_realtime: bool = True,
) -> bytes:
    """Build the request that subscribes to the trades of ``markets``, as UTF-8 JSON bytes.

    Upbit expects it as a text frame: ``[{"ticket":…},{"type":"trade","codes":[…],
    "is_only_realtime":true},{"format":"SIMPLE"}]``. Codes keep their order; duplicates are
    dropped.

    Args:
        markets: market codes, upper case (``KRW-BTC``).
        ticket: a unique id for this connection (a UUID4 string is customary).
        fmt: ``SIMPLE`` (short keys, smaller frames) or ``DEFAULT``; both decode with
            :func:`decode_trade`.
        only_realtime: ``True`` to skip the snapshot (the last trade) sent on subscribing.

    Raises:
        ValueError: no markets, a code that is not an upper-case market code, an empty ticket,
            or an unsupported format.

    """
    codes = list(dict.fromkeys(markets))
    if not codes:
        raise ValueError("subscription needs at least one market code")
    for code in codes:
        if not isinstance(code, str) or MARKET_CODE.fullmatch(code) is None:
            raise ValueError(f"not an upper-case Upbit market code like 'KRW-BTC': {code!r}")
    if not ticket:
        raise ValueError("subscription ticket must not be empty")
    if fmt not in ("DEFAULT", "SIMPLE"):
        raise ValueError(f"unsupported format {fmt!r} (expected 'DEFAULT' or 'SIMPLE')")
    return orjson.dumps(
        [
            {"ticket": ticket},
            {"type": "trade", "codes": codes, "is_only_realtime": only_realtime},
            {"format": fmt},
        ]
    )


# --- helpers ----------------------------------------------------------------------------


def _trade_keys(obj: dict[str, object], frame: bytes | bytearray | memoryview | str) -> _Keys | None:
    """Return the key names of a trade message, or ``None`` for any other message type."""
    if "ty" in obj:
        keys = _SIMPLE_KEYS
    elif "type" in obj:
        keys = _DEFAULT_KEYS
    elif "error" in obj:
        raise _stream_error(obj["error"], frame)
    elif "status" in obj:
        return None
    else:
        raise FrameError("type", "is missing (neither 'ty' nor 'type' is present)", frame)
    kind = obj[keys.type]
    if not isinstance(kind, str):
        raise FrameError(keys.type, f"has wrong type {_json_type(kind)}, expected string", frame)
    return keys if kind == "trade" else None


def _require(obj: dict[str, object], key: str, frame: bytes | bytearray | memoryview | str) -> object:
    try:
        return obj[key]
    except KeyError:
        raise FrameError(key, "is missing", frame) from None


def _require_int(obj: dict[str, object], key: str, frame: bytes | bytearray | memoryview | str) -> int:
    value = _require(obj, key, frame)
    if type(value) is not int:  # bool is an int subclass: excluded on purpose
        raise FrameError(key, f"has wrong type {_json_type(value)}, expected integer", frame)
    return value


def _require_decimal(obj: dict[str, object], key: str, frame: bytes | bytearray | memoryview | str) -> Decimal:
    value = _require(obj, key, frame)
    if type(value) is float:
        return Decimal(repr(value))  # the double's shortest repr: exact text for <= 15 digits
    if type(value) is int:
        return Decimal(value)
    raise FrameError(key, f"has wrong type {_json_type(value)}, expected number", frame)


def _stream_error(error: object, frame: bytes | bytearray | memoryview | str) -> UpbitStreamError:
    if not isinstance(error, dict):
        raise FrameError("error", f"has wrong type {_json_type(error)}, expected object", frame)
    name = error.get("name")
    message = error.get("message")
    # ``name`` is occasionally numeric in REST errors; keep whatever the server said, as text.
    return UpbitStreamError(
        str(name) if name is not None else "UNKNOWN",
        str(message) if message is not None else "",
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _excerpt(frame: bytes | bytearray | memoryview | str) -> str:
    text = frame if isinstance(frame, str) else bytes(frame[: _EXCERPT_CHARS * 4]).decode("utf-8", "replace")
    if len(text) > _EXCERPT_CHARS:
        return text[:_EXCERPT_CHARS] + "…"
    return text
