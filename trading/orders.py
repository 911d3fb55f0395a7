"""Order attempts derived from intents: deterministic identifiers and the request Upbit would get.

The identifier is a pure function of persisted data, ``{bot}-{intent}-{attempt}``, so a restarted
execution node computes the same value for the same attempt, and the database's unique key on it
makes a second row for one attempt impossible. Upbit refuses a reused identifier even after a
failed request, so a genuine retry is a new attempt number, never the same identifier.

Requests follow Upbit's ``POST /v1/orders`` forms for market orders: a buy spends a KRW total
(``ord_type=price``, ``price`` = total, no volume); a sell sells a volume (``ord_type=market``,
``volume``, no price). Values are decimal strings, never floats.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from persistence.attempts import Intent

_BOT = re.compile(r"^[a-z0-9]{1,12}$")


def identifier(bot_id: str, intent_id: int, attempt: int) -> str:
    """``{bot}-{intent}-{attempt}``; validated so it can never collide across bots or attempts."""
    if not _BOT.match(bot_id):
        raise ValueError(f"bot id must match {_BOT.pattern}, got {bot_id!r}")
    if intent_id < 1 or attempt < 1:
        raise ValueError(f"intent id and attempt must be >= 1, got {intent_id}, {attempt}")
    return f"{bot_id}-{intent_id}-{attempt}"


def market_order_request(intent: Intent, ident: str) -> dict[str, str]:
    """The body of the market order Upbit would receive for this intent."""
    if intent.side == "buy":
        total = intent.amount_krw.quantize(Decimal(1), rounding=ROUND_DOWN)
        return {"market": intent.market, "side": "bid", "ord_type": "price", "price": str(total),
                "identifier": ident}
    if intent.side == "sell":
        return {"market": intent.market, "side": "ask", "ord_type": "market", "volume": str(intent.volume),
                "identifier": ident}
    raise ValueError(f"intent {intent.paper_trade_id} has unknown side {intent.side!r}")
