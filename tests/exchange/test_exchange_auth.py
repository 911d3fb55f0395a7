"""exchange.auth: the parameter string, query_hash and JWT, checked against ccxt's upbit.sign()."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal as D
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import ccxt
import jwt
import pytest

from exchange.auth import (
    authorization_header,
    body_json,
    encoded_query,
    make_token,
    param_pairs,
    query_hash,
    query_string,
)

ACCESS = "AccessKey0123456789abcdefghijkl"
SECRET = "SecretKey0123456789abcdefghijklmnopq"
NONCE = "8f1b2c3d-0000-4000-8000-123456789abc"


def _ccxt() -> ccxt.upbit:
    exchange = ccxt.upbit({"apiKey": ACCESS, "secret": SECRET})
    exchange.uuid = lambda: NONCE  # ccxt's nonce source for upbit.sign(); fixed for comparison
    return exchange


def _claims(token: str) -> dict[str, str]:
    return jwt.decode(token, SECRET, algorithms=["HS256"])


def _bearer(headers: dict[str, str]) -> str:
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


# ---- the parameter string ---------------------------------------------------------------------

def test_param_string_is_raw_in_insertion_order_with_arrays_repeated() -> None:
    pairs = param_pairs({"market": "KRW-BTC", "states": ["wait", "watch"], "page": 1, "skip": None,
                         "uuids[]": ("a", "b"), "price": D("100000000.0"), "flag": True})
    assert query_string(pairs) == ("market=KRW-BTC&states[]=wait&states[]=watch&page=1&uuids[]=a&uuids[]=b"
                                   "&price=100000000.0&flag=true")
    assert encoded_query(pairs) == ("market=KRW-BTC&states%5B%5D=wait&states%5B%5D=watch&page=1&uuids%5B%5D=a"
                                    "&uuids%5B%5D=b&price=100000000.0&flag=true")
    assert body_json(param_pairs({"a": "1", "ids": ["x", "y"]})) == {"a": "1", "ids[]": ["x", "y"]}


def test_query_hash_matches_the_official_sample_recipe() -> None:
    """The official Python sample: sha512(unquote(urlencode(params, doseq=True)))."""
    params = {"market": "KRW-BTC", "states[]": ["wait", "watch"], "start_time": "2024-01-01T00:00:00+09:00"}
    expected = hashlib.sha512(unquote(urlencode(params, doseq=True)).encode()).hexdigest()
    pairs = param_pairs(params)
    assert query_hash(pairs) == expected
    assert len(expected) == 128 and expected == expected.lower()
    # The URL form is percent-encoded (':' and '+' must be, per the FAQ) and decodes to the same pairs.
    assert "%2B09%3A00" in encoded_query(pairs)
    assert tuple(parse_qsl(encoded_query(pairs))) == pairs


def test_token_claims_and_header() -> None:
    pairs = param_pairs({"market": "KRW-BTC"})
    token = make_token(ACCESS, SECRET, pairs, nonce_factory=lambda: NONCE)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert _claims(token) == {"access_key": ACCESS, "nonce": NONCE, "query_hash": query_hash(pairs),
                              "query_hash_alg": "SHA512"}
    assert _claims(make_token(ACCESS, SECRET, nonce_factory=lambda: NONCE)) == {"access_key": ACCESS, "nonce": NONCE}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "wrong-secret-of-thirty-two-bytes-x", algorithms=["HS256"])


def test_default_nonces_are_fresh_uuid4s() -> None:
    nonces = {_claims(make_token(ACCESS, SECRET))["nonce"] for _ in range(20)}
    assert len(nonces) == 20
    assert all(len(n) == 36 and n[14] == "4" for n in nonces)


def test_missing_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="required"):
        make_token("", SECRET)


# ---- equality with ccxt -----------------------------------------------------------------------

@pytest.mark.parametrize(("path", "method", "params"), [
    ("accounts", "GET", {}),
    ("orders/chance", "GET", {"market": "KRW-BTC"}),
    ("order", "GET", {"uuid": "cdd92199-2897-4e14-9448-f923320408ad"}),
    ("order", "GET", {"identifier": "bot-1:2024-01-01T00:00:00+09:00"}),
    ("order", "DELETE", {"uuid": "cdd92199-2897-4e14-9448-f923320408ad"}),
    ("orders/open", "GET", {"market": "KRW-BTC", "state": "wait", "page": 1, "limit": 100, "order_by": "desc"}),
    ("orders/closed", "GET", {"market": "KRW-BTC", "state": "done", "start_time": "2024-06-01T00:00:00+09:00",
                              "limit": 1000}),
])
def test_get_and_delete_sign_exactly_like_ccxt(path: str, method: str, params: dict[str, object]) -> None:
    theirs = _ccxt().sign(path, ["private"], method, dict(params))
    pairs = param_pairs(params)  # type: ignore[arg-type]
    ours = authorization_header(ACCESS, SECRET, pairs, nonce_factory=lambda: NONCE)
    # Same token byte for byte: same header, same claims in the same order, same HS256 signature.
    assert _bearer(ours) == _bearer(theirs["headers"])
    their_query = urlsplit(theirs["url"]).query
    assert tuple(parse_qsl(their_query)) == tuple(parse_qsl(encoded_query(pairs)))
    if pairs:
        assert _claims(_bearer(theirs["headers"]))["query_hash"] == query_hash(pairs)
        assert unquote(their_query) == query_string(pairs)


def test_order_post_signs_exactly_like_ccxt() -> None:
    params = {"market": "KRW-BTC", "side": "bid", "volume": "0.01", "price": "100000000", "ord_type": "limit",
              "identifier": "bot-2024-06-01T00:00:00+09:00-1"}
    theirs = _ccxt().sign("orders", ["private"], "POST", dict(params))
    pairs = param_pairs(params)
    ours = authorization_header(ACCESS, SECRET, pairs, nonce_factory=lambda: NONCE)
    assert _bearer(ours) == _bearer(theirs["headers"])
    assert json.loads(theirs["body"]) == body_json(pairs)
    assert list(json.loads(theirs["body"])) == list(body_json(pairs))  # same key order
    assert "?" not in theirs["url"]


def test_decimal_parameters_hash_like_their_string_spelling() -> None:
    """We pass Decimals; ccxt passes strings. Plain notation makes the hashes equal."""
    ours = param_pairs({"market": "KRW-BTC", "side": "ask", "volume": D("0.00012345"), "price": D("1.2E+8"),
                        "ord_type": "limit"})
    theirs = _ccxt().sign("orders", ["private"], "POST", {"market": "KRW-BTC", "side": "ask", "volume": "0.00012345",
                                                          "price": "120000000", "ord_type": "limit"})
    assert _claims(_bearer(theirs["headers"]))["query_hash"] == query_hash(ours)
