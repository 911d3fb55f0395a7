"""The WebSocket subscription request: parse and check it like Upbit does (sans-I/O).

A request is one JSON **array** (``docs/upbit-api.md`` §5.2)::

    [{"ticket":"<unique>"},
     {"type":"trade","codes":["KRW-BTC"],"is_only_realtime":true},
     {"type":"orderbook","codes":["KRW-BTC.15"]},
     {"format":"SIMPLE"}]

Errors, each a :class:`SubscriptionError` carrying Upbit's error name: not a JSON array of objects
→ ``WRONG_FORMAT``; no ticket → ``NO_TICKET``; no type object → ``NO_TYPE``; a public type
without codes → ``NO_CODES``; an unknown type, a lower-case or malformed code, or an unknown
format → ``INVALID_PARAM`` (``WRONG_FORMAT`` for the format). ``myOrder``/``myAsset`` are accepted
only on the private endpoint; myOrder ``codes`` are optional (empty: every market).

Orderbook codes may carry a size, ``KRW-BTC.15``; the size is one of 1, 5, 15, 30 and anything
else means 30 (since 2025-07-02). The old camelCase ``isOnlyRealtime``/``isOnlySnapshot``, still
sent by pyupbit, are honoured (UNCONFIRMED whether Upbit still does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from market.frames import MARKET_CODE
from upbit_sim.wire import FORMATS

__all__ = ["PRIVATE_TYPES", "PUBLIC_TYPES", "Subscription", "SubscriptionError", "TypeRequest", "parse_subscription"]

PUBLIC_TYPES: Final = frozenset({"trade", "ticker", "orderbook"})
PRIVATE_TYPES: Final = frozenset({"myOrder", "myAsset"})
_BOOK_SIZES: Final = frozenset({1, 5, 15, 30})


class SubscriptionError(ValueError):
    """A request Upbit refuses with an error frame ``{"error":{"name","message"}}``."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    def frame(self) -> bytes:
        return orjson.dumps({"error": {"name": self.name, "message": self.message}})


@dataclass(frozen=True, slots=True)
class TypeRequest:
    """One ``{"type":…}`` object of a request."""

    type: str
    codes: frozenset[str]  # empty for myOrder (all markets) and myAsset
    book_sizes: dict[str, int]  # orderbook: code -> levels
    only_snapshot: bool
    only_realtime: bool

    def wants(self, code: str) -> bool:
        return not self.codes or code in self.codes


@dataclass(frozen=True, slots=True)
class Subscription:
    """A valid request: its ticket, type objects and format."""

    ticket: str
    types: tuple[TypeRequest, ...]
    format: str

    def of_type(self, kind: str) -> TypeRequest | None:
        return next((t for t in self.types if t.type == kind), None)


def parse_subscription(message: str | bytes, *, private: bool) -> Subscription:
    """Parse a request received on the public (or ``private``) endpoint; raise SubscriptionError."""
    try:
        document = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise SubscriptionError("WRONG_FORMAT", "요청 형식이 올바르지 않습니다. (not JSON)") from None
    if not isinstance(document, list) or not document or not all(isinstance(part, dict) for part in document):
        raise SubscriptionError("WRONG_FORMAT", "요청 형식이 올바르지 않습니다. (expected an array of objects)")
    tickets = [part["ticket"] for part in document if "ticket" in part]
    if not tickets or not isinstance(tickets[0], str) or not tickets[0]:
        raise SubscriptionError("NO_TICKET", "ticket이 존재하지 않습니다.")
    types = tuple(_type_request(part, private=private) for part in document if "type" in part)
    if not types:
        raise SubscriptionError("NO_TYPE", "type이 존재하지 않습니다.")
    formats = [part["format"] for part in document if "format" in part]
    fmt = formats[0] if formats else "DEFAULT"
    if fmt not in FORMATS:
        raise SubscriptionError("WRONG_FORMAT", f"지원하지 않는 format 입니다: {fmt!r}")
    return Subscription(ticket=tickets[0], types=types, format=str(fmt))


def _type_request(part: dict[str, object], *, private: bool) -> TypeRequest:
    kind = part["type"]
    allowed = PRIVATE_TYPES if private else PUBLIC_TYPES
    if not isinstance(kind, str) or kind not in allowed:
        raise SubscriptionError("INVALID_PARAM", f"지원하지 않는 type 입니다: {kind!r}")
    raw_codes = part.get("codes")
    if raw_codes is None and kind in PRIVATE_TYPES:
        raw_codes = []
    if not isinstance(raw_codes, list) or (not raw_codes and kind in PUBLIC_TYPES):
        raise SubscriptionError("NO_CODES", "codes가 존재하지 않습니다.")
    codes: set[str] = set()
    sizes: dict[str, int] = {}
    for raw in raw_codes:
        if not isinstance(raw, str):
            raise SubscriptionError("INVALID_PARAM", f"잘못된 code 입니다: {raw!r}")
        code, _, size = raw.partition(".") if kind == "orderbook" else (raw, "", "")
        if MARKET_CODE.fullmatch(code) is None:
            raise SubscriptionError("INVALID_PARAM", f"code는 대문자여야 합니다 (e.g. KRW-BTC): {raw!r}")
        codes.add(code)
        if kind == "orderbook":
            sizes[code] = int(size) if size.isascii() and size.isdigit() and int(size) in _BOOK_SIZES else 30
    return TypeRequest(
        type=kind,
        codes=frozenset(codes),
        book_sizes=sizes,
        only_snapshot=_flag(part, "is_only_snapshot", "isOnlySnapshot"),
        only_realtime=_flag(part, "is_only_realtime", "isOnlyRealtime"),
    )


def _flag(part: dict[str, object], key: str, camel: str) -> bool:
    value = part.get(key, part.get(camel, False))
    return value is True
