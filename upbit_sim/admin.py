"""The simulator's own HTTP endpoints (``/_sim/…``), for control from another process.

======================  ================================================================
request                 effect
======================  ================================================================
GET  /_sim/status       ``{"status":"UP","rest_url",…,"replayed":N,"faults":[…]}``
POST /_sim/faults       arm faults: ``{"fault":"fail_next","n":2,"status":503}``, a list of
                        such objects, or ``{"faults":[…]}``; answers the armed names
DELETE /_sim/faults     disarm every fault
POST /_sim/trades       print trades now: ``{"market":"KRW-BTC","price":"100000000",
                        "volume":"0.01","side":"BID"}`` or a list (``ts_ms``/``seq`` optional)
POST /_sim/advance      replay the next ``{"n":N}`` recorded trades (manual replay only)
POST /_sim/deposit      ``{"access_key":…,"currency":"KRW","amount":"1000"}``
======================  ================================================================

Bad documents are answered 400 with ``{"error":{"name":"bad_request","message":…}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Protocol

import orjson

from model.market import Side, Trade, TradeSource
from upbit_sim.faults import Faults

__all__ = ["AdminApi", "SimControl"]


class SimControl(Protocol):
    """What the admin endpoints can do to a running simulator."""

    @property
    def faults(self) -> Faults: ...

    def feed(self, trade: Trade) -> None: ...

    def advance(self, n: int = 1) -> int: ...

    def deposit(self, access_key: str, currency: str, amount: Decimal) -> None: ...

    def status(self) -> dict[str, object]: ...


class _BadRequest(ValueError):
    pass


class AdminApi:
    """Handle ``/_sim/…`` requests against a :class:`SimControl`."""

    def __init__(self, control: Callable[[], SimControl]) -> None:
        """``control``: returns the simulator (late-bound: the server is built before it runs)."""
        self._control = control

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        """Return ``(status, JSON-able answer)``."""
        sim = self._control()
        try:
            if (method, path) == ("GET", "/_sim/status"):
                return 200, sim.status()
            if (method, path) == ("DELETE", "/_sim/faults"):
                sim.faults.clear()
                return 200, {"ok": True}
            document = _load(body)
            if (method, path) == ("POST", "/_sim/faults"):
                return 200, {"ok": True, "armed": _arm(sim.faults, document)}
            if (method, path) == ("POST", "/_sim/trades"):
                items = document if isinstance(document, list) else [document]
                for item in items:
                    sim.feed(_trade(item))
                return 200, {"ok": True, "printed": len(items)}
            if (method, path) == ("POST", "/_sim/advance"):
                n = document.get("n", 1) if isinstance(document, dict) else None
                if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                    raise _BadRequest("'n' must be a positive integer")
                return 200, {"ok": True, "replayed": sim.advance(n)}
            if (method, path) == ("POST", "/_sim/deposit"):
                if not isinstance(document, dict):
                    raise _BadRequest("expected an object")
                sim.deposit(_text(document, "access_key"), _text(document, "currency"), _decimal(document, "amount"))
                return 200, {"ok": True}
        except (_BadRequest, ValueError) as exc:
            return 400, {"error": {"name": "bad_request", "message": str(exc)}}
        return 404, {"error": {"name": "not_found", "message": f"no admin route {method} {path}"}}


def _load(body: bytes) -> object:
    try:
        return orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(f"body is not JSON: {exc}") from exc


def _arm(faults: Faults, document: object) -> list[str]:
    if isinstance(document, dict) and "faults" in document:
        document = document["faults"]
    items = document if isinstance(document, list) else [document]
    armed = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("fault"), str):
            raise _BadRequest('each fault must be an object with a "fault" name, e.g. {"fault":"ws_drop"}')
        params = {k: v for k, v in item.items() if k != "fault"}
        faults.inject(item["fault"], params)
        armed.append(item["fault"])
    return armed


def _trade(item: object) -> Trade:
    if not isinstance(item, dict):
        raise _BadRequest("a trade must be an object")
    side_text = str(item.get("side", "BID")).upper()
    if side_text not in ("BID", "ASK"):
        raise _BadRequest(f"side must be BID or ASK, got {side_text!r}")
    ts_ms = item.get("ts_ms", 0)
    seq = item.get("seq", -1)
    if not isinstance(ts_ms, int) or not isinstance(seq, int):
        raise _BadRequest("ts_ms and seq must be integers")
    return Trade(
        market=_text(item, "market"), ts_ms=ts_ms, price=_decimal(item, "price"), volume=_decimal(item, "volume"),
        side=Side(side_text), seq=seq, source=TradeSource.LIVE,
    )


def _text(document: dict[str, object], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"{key!r} must be a non-empty string")
    return value


def _decimal(document: dict[str, object], key: str) -> Decimal:
    value = document.get(key)
    try:
        number = Decimal(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise _BadRequest(f"{key!r} must be a decimal number (a string is best), got {value!r}")
    return number
