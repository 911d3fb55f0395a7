"""Order attempts derived from intents: identifiers unique for the life of an installation, and the
request Upbit would get.

The identifier is ``{bot}-{intent}-{attempt}-{nonce}``. The nonce is random (:func:`new_nonce`,
8 characters of ``[a-z0-9]``: about 2.8e12 values), drawn when the attempt row is built and
*persisted with it before the request leaves*: a restarted execution node reads the identifier
back from its row, never recomputes it. Intent and attempt numbers come from the database and
repeat after ``--reset``, on a fresh or restored database, or between two installations sharing a
``BOT_ID`` on one account; the nonce makes each identifier new anyway, so an identifier we send
can never name an order placed by another life of the database or by another installation. (If
one ever did, the engine would not adopt it unless it matched our request in every field.)

Upbit refuses a reused identifier even after a failed request, so a genuine retry is a new
attempt with a new identifier, never the same one.

Requests follow Upbit's ``POST /v1/orders`` forms for market orders: a buy spends a KRW total
(``ord_type=price``, ``price`` = total, no volume); a sell sells a volume (``ord_type=market``,
``volume``, no price). Values are decimal strings, never floats.
"""

from __future__ import annotations

import re
import secrets
import string
from decimal import ROUND_DOWN, Decimal

from model.intents import Intent

_BOT = re.compile(r"^[a-z0-9]{1,12}$")
_NONCE = re.compile(r"^[a-z0-9]{4,16}$")
_ALPHABET = string.ascii_lowercase + string.digits
NONCE_LENGTH = 8


def new_nonce() -> str:
    """A fresh random nonce for one attempt's identifier (``secrets``: not guessable either)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(NONCE_LENGTH))


def identifier(bot_id: str, intent_id: int, attempt: int, nonce: str) -> str:
    """``{bot}-{intent}-{attempt}-{nonce}``; validated so its parts cannot run into each other."""
    if not _BOT.match(bot_id):
        raise ValueError(f"bot id must match {_BOT.pattern}, got {bot_id!r}")
    if intent_id < 1 or attempt < 1:
        raise ValueError(f"intent id and attempt must be >= 1, got {intent_id}, {attempt}")
    if not _NONCE.match(nonce):
        raise ValueError(f"nonce must match {_NONCE.pattern}, got {nonce!r}")
    return f"{bot_id}-{intent_id}-{attempt}-{nonce}"


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
