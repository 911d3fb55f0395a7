"""Upbit request signing (pure functions; docs/upbit-api.md §1).

A private request carries ``Authorization: Bearer <jwt>``. The JWT's claims are ``access_key``
and a fresh ``nonce`` (a UUID4), and, when the request has parameters, ``query_hash`` (the
lower-case hex SHA-512 of the parameter string) and ``query_hash_alg: "SHA512"``. It is signed
HS256 with the secret key, as ccxt and pyupbit do (the docs' example token is HS512; the server
accepts both, see the CONFLICT note in docs/upbit-api.md §1.2).

The parameter string is ``k=v&k2=v2`` in insertion order, *not* percent-encoded, with array values
written as ``key[]=v`` once per value. It is the same string for a GET/DELETE query and for a POST
body (the body's parameters written as a query string, not the JSON text). The URL itself carries
the percent-encoded form (``:`` and ``+`` in dates must be encoded, docs/upbit-api.md §1.3).

Parameters are normalised once by :func:`param_pairs` and every other function takes its output,
so the hashed string, the URL query and the JSON body can never disagree.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TypeAlias
from urllib.parse import quote, urlencode

import jwt

__all__ = [
    "JWT_ALGORITHM",
    "Pairs",
    "ParamValue",
    "authorization_header",
    "body_json",
    "encoded_query",
    "make_token",
    "new_nonce",
    "param_pairs",
    "query_hash",
    "query_string",
]

JWT_ALGORITHM = "HS256"
QUERY_HASH_ALG = "SHA512"

Scalar: TypeAlias = str | int | Decimal | bool
ParamValue: TypeAlias = Scalar | Sequence[Scalar] | None
Pairs: TypeAlias = tuple[tuple[str, str], ...]
"""Normalised parameters: ``(key, text)`` in order, array keys already ending in ``[]``."""

NonceFactory: TypeAlias = Callable[[], str]


def new_nonce() -> str:
    """A fresh UUID4 string (the default nonce factory)."""
    return str(uuid.uuid4())


def _text(value: Scalar) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"parameter value must be finite, got {value}")
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"unsupported parameter value type {type(value).__name__}")


def param_pairs(params: Mapping[str, ParamValue] | None) -> Pairs:
    """Normalise request parameters into ordered ``(key, text)`` pairs.

    ``None`` values are dropped (an omitted parameter). A list or tuple becomes one pair per
    element under ``key[]`` (``states=["wait", "watch"]`` → ``states[]=wait&states[]=watch``; a key
    already spelled ``states[]`` is kept). Decimals are written in plain notation, booleans as
    ``true``/``false``.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            array_key = key if key.endswith("[]") else f"{key}[]"
            pairs.extend((array_key, _text(v)) for v in value)
        else:
            pairs.append((key, _text(value)))  # type: ignore[arg-type]  # a scalar: the list case is above
    return tuple(pairs)


def query_string(pairs: Pairs) -> str:
    """The exact string Upbit hashes: ``k=v&…`` in order, not percent-encoded."""
    return "&".join(f"{k}={v}" for k, v in pairs)


def encoded_query(pairs: Pairs) -> str:
    """The percent-encoded query for the URL (same pairs, same order)."""
    return urlencode(pairs, quote_via=quote, safe="")


def body_json(pairs: Pairs) -> dict[str, str | list[str]]:
    """The JSON body for a POST: the same pairs as an object (array keys hold lists)."""
    body: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            existing = body.setdefault(key, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            body[key] = value
    return body


def query_hash(pairs: Pairs) -> str:
    """Lower-case hex SHA-512 of :func:`query_string` (128 characters)."""
    return hashlib.sha512(query_string(pairs).encode("utf-8")).hexdigest()


def make_token(access_key: str, secret_key: str, pairs: Pairs = (), *,
               nonce_factory: NonceFactory = new_nonce) -> str:
    """The signed JWT for one request with parameters ``pairs`` (empty: no query_hash claims)."""
    if not access_key or not secret_key:
        raise ValueError("access key and secret key are both required to sign a request")
    claims: dict[str, str] = {"access_key": access_key, "nonce": nonce_factory()}
    if pairs:
        claims["query_hash"] = query_hash(pairs)
        claims["query_hash_alg"] = QUERY_HASH_ALG
    return jwt.encode(claims, secret_key, algorithm=JWT_ALGORITHM)


def authorization_header(access_key: str, secret_key: str, pairs: Pairs = (), *,
                         nonce_factory: NonceFactory = new_nonce) -> dict[str, str]:
    """``{"Authorization": "Bearer <jwt>"}`` for one request."""
    token = make_token(access_key, secret_key, pairs, nonce_factory=nonce_factory)
    return {"Authorization": f"Bearer {token}"}
