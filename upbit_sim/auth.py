"""REST authentication as Upbit does it: a signed JWT per request (``docs/upbit-api.md`` §1), sans-I/O.

A private request carries ``Authorization: Bearer <jwt>``. The token's payload holds
``access_key``, a fresh ``nonce`` and, when the request has parameters, ``query_hash`` (lower-case
hex SHA-512 of the parameter string) with ``query_hash_alg: "SHA512"``.

Checks, in this order, each with Upbit's error (status 401):

1. no ``Authorization`` header → ``no_authorization_token`` (name UNCONFIRMED);
2. not ``Bearer <jwt>``, unreadable token, or an algorithm other than **HS256 or HS512**
   (``none``, HS384, RS256 … are refused; HS384 is UNCONFIRMED at Upbit) → ``jwt_verification``;
3. no or unknown ``access_key`` → ``invalid_access_key``;
4. bad signature, or an ``exp`` claim in the past → ``jwt_verification``;
5. the key is configured as expired → ``expired_access_key``;
6. no ``nonce`` → ``jwt_verification``; a nonce this key already used → ``nonce_used`` (a nonce
   counts as used once the signature has verified, whatever happens to the request after);
7. parameters present but ``query_hash`` missing or different → ``invalid_query_payload``.

Which parameter string is hashed differs between clients (§1.3). :func:`accepted_hashes` accepts
every reading seen in the wild for the parameters that arrived: the raw ``k=v&…`` form in arrival
order (official sample, ccxt ``rawencode``), the percent-encoded form (``urlencode``), pyupbit's
percent-encoded form with ``[]`` kept, and the query string exactly as received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Final
from urllib.parse import urlencode

import orjson

from upbit_sim.errors import ApiError

__all__ = ["ALLOWED_ALGORITHMS", "Authenticator", "accepted_hashes", "json_pairs", "raw_param_string"]

#: The JWT algorithms the live server is known to accept (docs use HS512, ccxt and pyupbit HS256).
ALLOWED_ALGORITHMS: Final = ("HS256", "HS512")
_DIGESTS: Final = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}

_NONCES_KEPT: Final = 200_000  # per key; older nonces are forgotten (a real server keeps a window too)


def raw_param_string(pairs: Sequence[tuple[str, str]]) -> str:
    """``k=v&k2=v2`` in the given order, nothing percent-encoded (what most clients hash)."""
    return "&".join(f"{key}={value}" for key, value in pairs)


def accepted_hashes(pairs: Sequence[tuple[str, str]], raw_query: str | None = None) -> frozenset[str]:
    """SHA-512 hex digests of every accepted spelling of the parameters (see the module docstring).

    Args:
        pairs: the parameters as decoded ``(key, value)`` pairs in arrival order, arrays as
            repeated ``key[]`` entries.
        raw_query: the URL query string exactly as received (still percent-encoded), if any.

    """
    encoded = urlencode(list(pairs))
    forms = {raw_param_string(pairs), encoded, encoded.replace("%5B%5D=", "[]=")}
    if raw_query:
        forms.add(raw_query)
    return frozenset(hashlib.sha512(form.encode("utf-8")).hexdigest() for form in forms)


def json_pairs(body: Mapping[str, object]) -> list[tuple[str, str]]:
    """A JSON body's parameters as the ``(key, value)`` pairs a client hashes, in body order.

    Arrays become repeated ``key[]`` entries; ``null`` values are left out (clients drop them
    before hashing); booleans are written ``true``/``false``.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if value is None:
            continue
        if isinstance(value, list):
            array_key = key if key.endswith("[]") else f"{key}[]"
            pairs.extend((array_key, _scalar_text(item)) for item in value)
        else:
            pairs.append((key, _scalar_text(value)))
    return pairs


def _split(token: str) -> tuple[dict[str, object], dict[str, object], bytes, bytes]:
    """``(header, claims, signing input, signature)`` of a compact JWS; unreadable → 401."""
    parts = token.split(".")
    if len(parts) != 3:  # noqa: PLR2004 - header.payload.signature
        raise ApiError.jwt_verification("not a JWT (header.payload.signature)")
    try:
        header, claims = (orjson.loads(_b64url(part)) for part in parts[:2])
        signature = _b64url(parts[2])
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise ApiError.jwt_verification(f"unreadable token: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ApiError.jwt_verification("token header and payload must be JSON objects")
    return header, claims, signing_input, signature


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Authenticator:
    """Verify request JWTs against the configured keys; remembers nonces per key (thread-safe)."""

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        expired: frozenset[str] = frozenset(),
        now: Callable[[], float] = time.time,
    ) -> None:
        """Args:
        keys: access key → secret key.
        expired: access keys that are known but expired (answered with ``expired_access_key``).
        now: epoch seconds, for an ``exp`` claim.
        """
        self._keys = dict(keys)
        self._expired = expired
        self._now = now
        self._lock = threading.Lock()
        self._nonces: dict[str, set[str]] = {}
        self._nonce_order: dict[str, deque[str]] = {}

    def authenticate(
        self,
        authorization: str | None,
        pairs: Sequence[tuple[str, str]],
        raw_query: str | None = None,
    ) -> str:
        """Return the access key of a valid request, or raise :class:`ApiError` (status 401).

        Args:
            authorization: the ``Authorization`` header, or ``None`` when absent.
            pairs: the request's parameters (see :func:`accepted_hashes`).
            raw_query: the URL query string as received, if the parameters came in the URL.

        """
        if authorization is None:
            raise ApiError.no_token()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError.jwt_verification("expected 'Bearer <jwt>'")
        header, claims, signing_input, signature = _split(token.strip())
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise ApiError.jwt_verification(f"algorithm {alg!r} is not accepted")
        access_key = claims.get("access_key")
        if not isinstance(access_key, str) or access_key not in self._keys:
            raise ApiError.invalid_access_key()
        expected = hmac.new(self._keys[access_key].encode("utf-8"), signing_input, _DIGESTS[alg]).digest()
        if not hmac.compare_digest(expected, signature):
            raise ApiError.jwt_verification("signature verification failed")
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp <= self._now():
            raise ApiError.jwt_verification("the token has expired")
        if access_key in self._expired:
            raise ApiError.expired_access_key()
        nonce = claims.get("nonce")
        if nonce is None or (isinstance(nonce, str) and not nonce) or isinstance(nonce, (dict, list)):
            raise ApiError.jwt_verification("nonce is missing")
        self._use_nonce(access_key, str(nonce))
        if pairs:
            self._check_query_hash(claims, pairs, raw_query)
        return access_key

    def _use_nonce(self, access_key: str, nonce: str) -> None:
        with self._lock:
            seen = self._nonces.setdefault(access_key, set())
            if nonce in seen:
                raise ApiError.nonce_used()
            order = self._nonce_order.setdefault(access_key, deque())
            seen.add(nonce)
            order.append(nonce)
            if len(order) > _NONCES_KEPT:
                seen.discard(order.popleft())

    @staticmethod
    def _check_query_hash(claims: Mapping[str, object], pairs: Sequence[tuple[str, str]], raw_query: str | None) -> None:
        query_hash = claims.get("query_hash")
        alg = claims.get("query_hash_alg", "SHA512")
        if not isinstance(query_hash, str) or not isinstance(alg, str) or alg.upper() != "SHA512":
            raise ApiError.invalid_query_payload()
        if query_hash.lower() not in accepted_hashes(pairs, raw_query):
            raise ApiError.invalid_query_payload()
