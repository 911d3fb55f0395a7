"""Our exchange errors: one hierarchy, classified once, with a hint a person can act on.

Upbit answers errors as ``{"error": {"name": …, "message": …}}`` with a documented HTTP status
(docs/upbit-api.md §3); ``name`` is occasionally a number. :func:`from_response` turns such an answer
into one of the classes below, :func:`network_error` does the same for a transport failure, and
:func:`is_retryable` is the single retry policy (used by ``rest.py``'s tenacity decorators).

No vendor exception or secret crosses this module: messages are built from the exchange's own
text plus our words, and :func:`redact` masks any credential that might appear in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import TypedDict, Unpack

from config.secret import mask_secret

__all__ = [
    "AuthFailed",
    "CircuitOpen",
    "CredentialsMissing",
    "DuplicateIdentifier",
    "ErrorKind",
    "ExchangeError",
    "InsufficientFunds",
    "InvalidOrder",
    "MalformedResponse",
    "OrderNotFound",
    "OrderOutcomeUnknown",
    "OrderRejectedByVenue",
    "RateLimited",
    "TransientExchangeError",
    "UnderMinimum",
    "from_response",
    "is_retryable",
    "network_error",
    "redact",
]


class ErrorKind(StrEnum):
    """What went wrong, as far as the caller's policy is concerned."""

    INVALID_KEY = "invalid_key"              # wrong, expired or unknown key; token rejected
    INVALID_SIGNATURE = "invalid_signature"  # query_hash mismatch: a client bug, not a key problem
    IP_NOT_ALLOWED = "ip_not_allowed"
    NONCE = "nonce"                          # nonce reused (clock skew / nonce problems)
    PERMISSION = "permission"                # key lacks the permission, or an agreement is missing
    RATE_LIMITED = "rate_limited"            # 429
    BLOCKED = "blocked"                      # 418: temporarily blocked after ignoring 429s
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNDER_MINIMUM = "under_minimum"
    INVALID_ORDER = "invalid_order"          # off-tick price, bad volume, bad fields
    DUPLICATE_IDENTIFIER = "duplicate_identifier"
    MARKET_OFFLINE = "market_offline"
    NOT_FOUND = "not_found"
    NETWORK = "network"                      # connection refused/reset, timeout
    SERVER = "server"                        # 5xx
    MALFORMED = "malformed"                  # an answer we cannot parse
    CIRCUIT_OPEN = "circuit_open"            # our breaker refuses calls for now
    CONFIG = "config"                        # e.g. no keys for a private call
    UNKNOWN = "unknown"


_HINTS: dict[ErrorKind, str] = {
    ErrorKind.INVALID_KEY: "check UPBIT_ACCESS_KEY/UPBIT_SECRET_KEY: the key may be wrong, revoked or expired",
    ErrorKind.INVALID_SIGNATURE: "the query_hash did not match the parameters sent: a signing bug in the client",
    ErrorKind.IP_NOT_ALLOWED: "add this machine's public IP to the key's allow-list on upbit.com (Open API management)",
    ErrorKind.NONCE: "a nonce was reused: make sure every request gets a fresh UUID4 nonce",
    ErrorKind.PERMISSION: "give the API key the needed permission (or accept the required agreement) on upbit.com",
    ErrorKind.RATE_LIMITED: "too many requests: slow down; the client waits before retrying",
    ErrorKind.BLOCKED: "temporarily blocked for ignoring 429s: stop sending until the block ends",
    ErrorKind.INSUFFICIENT_FUNDS: "not enough available balance: reduce the order or free locked funds",
    ErrorKind.UNDER_MINIMUM: "order total is below the market minimum (5,000 KRW on KRW markets)",
    ErrorKind.INVALID_ORDER: "fix the order fields: price on the tick grid, volume precision, ord_type field rules",
    ErrorKind.DUPLICATE_IDENTIFIER: "that identifier was used before: look the order up by identifier, never reuse one",
    ErrorKind.MARKET_OFFLINE: "the market is not orderable right now (e.g. after maintenance): try later",
    ErrorKind.NOT_FOUND: "no such order (or route): check the uuid/identifier",
    ErrorKind.NETWORK: "network problem reaching Upbit: check connectivity; idempotent calls are retried",
    ErrorKind.SERVER: "Upbit answered with a server error: usually temporary",
    ErrorKind.MALFORMED: "Upbit's answer could not be parsed: usually temporary; report it if it persists",
    ErrorKind.CIRCUIT_OPEN: "calls to this endpoint group are paused after repeated failures: wait for the breaker",
    ErrorKind.CONFIG: "configure UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY for private endpoints",
    ErrorKind.UNKNOWN: "unexpected answer from Upbit: see the message",
}


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by its mask (``AbCd…XyZ0`` or ``****``)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, mask_secret(secret))
    return text


class ExchangeError(Exception):
    """Base of every error the exchange layer raises: status, Upbit name/message, kind, hint."""

    default_kind = ErrorKind.UNKNOWN

    def __init__(self, message: str, *, status: int | None = None, name: str | None = None,
                 kind: ErrorKind | None = None, hint: str | None = None, endpoint: str = "") -> None:
        self.status = status
        self.name = name
        self.message = message
        self.kind = kind or self.default_kind
        self.hint = hint or _HINTS[self.kind]
        self.endpoint = endpoint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        status = f"HTTP {self.status} " if self.status is not None else ""
        name = f"{self.name}: " if self.name else ""
        return f"{where}{status}{name}{self.message} [{self.kind}] (fix: {self.hint})"


class WhereFields(TypedDict, total=False):
    """Where an error came from: the HTTP status, the venue's error name and the endpoint."""

    status: int | None
    name: str | None
    endpoint: str


class ErrorFields(WhereFields, total=False):
    """The keyword fields every :class:`ExchangeError` takes, passed through by its subclasses."""

    kind: ErrorKind | None
    hint: str | None


class TransientExchangeError(ExchangeError):
    """A failure that may go away by itself: network trouble, a 5xx."""

    default_kind = ErrorKind.SERVER


class RateLimited(ExchangeError):
    """HTTP 429 (``kind=RATE_LIMITED``) or 418 (``kind=BLOCKED``); ``retry_after`` in seconds if known."""

    default_kind = ErrorKind.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None, group: str | None = None,
                 **kw: Unpack[ErrorFields]) -> None:
        self.retry_after = retry_after
        self.group = group
        super().__init__(message, **kw)


class AuthFailed(ExchangeError):
    """The exchange refused our credentials or their use (401/403)."""

    default_kind = ErrorKind.INVALID_KEY


class CredentialsMissing(ExchangeError):
    """A private endpoint was called on a client built without keys."""

    default_kind = ErrorKind.CONFIG


class OrderRejectedByVenue(ExchangeError):
    """The exchange refused an order (or an order-related request) as invalid (400)."""

    default_kind = ErrorKind.INVALID_ORDER


class InsufficientFunds(OrderRejectedByVenue):
    default_kind = ErrorKind.INSUFFICIENT_FUNDS


class UnderMinimum(OrderRejectedByVenue):
    default_kind = ErrorKind.UNDER_MINIMUM


class InvalidOrder(OrderRejectedByVenue):
    default_kind = ErrorKind.INVALID_ORDER


class DuplicateIdentifier(OrderRejectedByVenue):
    """The identifier was used before (even a failed order burns its identifier)."""

    default_kind = ErrorKind.DUPLICATE_IDENTIFIER

    def __init__(self, message: str, *, identifier: str | None = None, **kw: Unpack[ErrorFields]) -> None:
        self.identifier = identifier
        super().__init__(message, **kw)


class OrderNotFound(ExchangeError):
    default_kind = ErrorKind.NOT_FOUND


class MalformedResponse(ExchangeError):
    """A 2xx answer we could not parse into the documented shape."""

    default_kind = ErrorKind.MALFORMED


class CircuitOpen(ExchangeError):
    """Our circuit breaker for this endpoint group is open: the call was not sent."""

    default_kind = ErrorKind.CIRCUIT_OPEN

    def __init__(self, message: str, *, group: str, **kw: Unpack[ErrorFields]) -> None:
        self.group = group
        super().__init__(message, **kw)


class OrderOutcomeUnknown(ExchangeError):
    """An order POST may or may not have been accepted (timeout, reset, 5xx): never retried.

    The caller must look the order up by ``identifier`` (``UpbitClient.get_order(identifier=…)``).
    """

    default_kind = ErrorKind.NETWORK

    def __init__(self, identifier: str, *, cause: str = "", **kw: Unpack[ErrorFields]) -> None:
        self.identifier = identifier
        message = f"outcome of order {identifier!r} unknown ({cause}); look it up by identifier"
        super().__init__(message, **kw)


_RETRYABLE_KINDS = frozenset({ErrorKind.NETWORK, ErrorKind.SERVER, ErrorKind.RATE_LIMITED})


def is_retryable(exc: BaseException) -> bool:
    """Whether repeating the same idempotent request may succeed: network, 5xx, 429.

    Never for an unknown order outcome (look it up instead), a 418 block, an open breaker, or
    anything the exchange refused on its merits. Only our own exception types count.
    """
    if isinstance(exc, OrderOutcomeUnknown | CircuitOpen):
        return False
    return isinstance(exc, ExchangeError) and exc.kind in _RETRYABLE_KINDS


# ---- classification of Upbit's answers --------------------------------------------------------

_BY_NAME: dict[str, tuple[type[ExchangeError], ErrorKind]] = {
    "invalid_access_key": (AuthFailed, ErrorKind.INVALID_KEY),
    "jwt_verification": (AuthFailed, ErrorKind.INVALID_KEY),
    "expired_access_key": (AuthFailed, ErrorKind.INVALID_KEY),
    "no_authorization_token": (AuthFailed, ErrorKind.INVALID_KEY),
    "invalid_query_payload": (AuthFailed, ErrorKind.INVALID_SIGNATURE),
    "nonce_used": (AuthFailed, ErrorKind.NONCE),
    "no_authorization_i_p": (AuthFailed, ErrorKind.IP_NOT_ALLOWED),
    "no_authorization_ip": (AuthFailed, ErrorKind.IP_NOT_ALLOWED),
    "out_of_scope": (AuthFailed, ErrorKind.PERMISSION),
    "thirdparty_agreement_required": (AuthFailed, ErrorKind.PERMISSION),
    "insufficient_funds_ask": (InsufficientFunds, ErrorKind.INSUFFICIENT_FUNDS),
    "insufficient_funds_bid": (InsufficientFunds, ErrorKind.INSUFFICIENT_FUNDS),
    "under_min_total_ask": (UnderMinimum, ErrorKind.UNDER_MINIMUM),
    "under_min_total_bid": (UnderMinimum, ErrorKind.UNDER_MINIMUM),
    "invalid_price_ask": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "invalid_price_bid": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "invalid_volume_ask": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "invalid_volume_bid": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "volume_too_large": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "invalid_funds": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "create_ask_error": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "create_bid_error": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "validation_error": (InvalidOrder, ErrorKind.INVALID_ORDER),
    "market_offline": (OrderRejectedByVenue, ErrorKind.MARKET_OFFLINE),
    "order_not_found": (OrderNotFound, ErrorKind.NOT_FOUND),
}

_DUPLICATE_WORDS = re.compile(r"duplicat|already|reuse|re-use|중복|이미|재사용", re.IGNORECASE)
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec|seconds?|초)", re.IGNORECASE)


def _is_duplicate_identifier(name: str, message: str) -> bool:
    # UNCONFIRMED: Upbit documents that a used identifier is rejected but not the error name.
    # We accept any 400 whose name or message talks about the identifier being used already.
    text = f"{name} {message}"
    return "identifier" in name.lower() or ("identifier" in text.lower() and bool(_DUPLICATE_WORDS.search(text)))


def _retry_after(headers: dict[str, str] | None, message: str) -> float | None:
    raw = (headers or {}).get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    match = _SECONDS.search(message)
    return float(match.group(1)) if match else None


def from_response(status: int, body: object, *, endpoint: str = "", identifier: str | None = None,
                  headers: dict[str, str] | None = None, group: str | None = None,
                  secrets: Iterable[str | None] = ()) -> ExchangeError:
    """Classify a non-2xx answer: HTTP ``status`` and the decoded JSON ``body`` (or its text).

    ``body`` may be Upbit's ``{"error": {...}}`` object, a plain text (429 is said to be plain
    text, UNCONFIRMED) or anything else; the status decides when the name does not.
    """
    name: str | None = None
    message = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        raw_name = err.get("name")
        name = None if raw_name is None else str(raw_name)  # numeric names happen (e.g. 400)
        message = str(err.get("message") or "")
    elif isinstance(body, str | bytes):
        message = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).strip()[:300]
    message = redact(message or f"HTTP {status}", secrets)
    kw: WhereFields = {"status": status, "name": name, "endpoint": endpoint}

    if status == 429:
        return RateLimited(message, retry_after=_retry_after(headers, message), group=group, **kw)
    if status == 418:
        return RateLimited(message, retry_after=_retry_after(headers, message), group=group,
                           kind=ErrorKind.BLOCKED, **kw)
    if status >= 500:
        return TransientExchangeError(message, kind=ErrorKind.SERVER, **kw)
    if status == 400 and _is_duplicate_identifier(name or "", message):
        return DuplicateIdentifier(message, identifier=identifier, **kw)
    if name is not None and name in _BY_NAME:
        cls, kind = _BY_NAME[name]
        return cls(message, kind=kind, **kw)
    if name is not None and name.startswith("insufficient_funds"):
        return InsufficientFunds(message, **kw)
    if name is not None and name.startswith("under_min_total"):
        return UnderMinimum(message, **kw)
    if status in {401, 403}:
        # UNCONFIRMED which codes moved from 401 to 403 ("key permission or security setting").
        return AuthFailed(message, kind=ErrorKind.PERMISSION if status == 403 else ErrorKind.INVALID_KEY, **kw)
    if status == 404:
        return OrderNotFound(message, **kw)
    if status == 400:
        return OrderRejectedByVenue(message, kind=ErrorKind.INVALID_ORDER, **kw)
    return ExchangeError(message, kind=ErrorKind.UNKNOWN, **kw)


def network_error(what: str, *, endpoint: str = "", secrets: Iterable[str | None] = ()) -> TransientExchangeError:
    """A transport failure (connection refused/reset, timeout) as our transient error."""
    return TransientExchangeError(redact(what, secrets), kind=ErrorKind.NETWORK, endpoint=endpoint)
