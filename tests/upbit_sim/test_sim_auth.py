"""upbit_sim.auth: JWT verification, query_hash forms, nonces — as values and over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

import jwt
import pytest
import requests

from tests.upbit_sim.conftest import ACCESS, SECRET
from tests.upbit_sim.sim_client import SignedClient, error_name, make_token
from upbit_sim import SimServer
from upbit_sim.auth import Authenticator, accepted_hashes, json_pairs
from upbit_sim.errors import ApiError

PAIRS = [("market", "KRW-BTC"), ("states[]", "wait"), ("states[]", "done"), ("to", "2024-01-01T00:00:00+09:00")]


def _auth(**kw: object) -> Authenticator:
    return Authenticator({ACCESS: SECRET}, **kw)  # type: ignore[arg-type]


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _hash(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


def _refused(auth: Authenticator, header: str | None, pairs: list[tuple[str, str]] = PAIRS) -> ApiError:
    with pytest.raises(ApiError) as info:
        auth.authenticate(header, pairs)
    assert info.value.status == 401
    return info.value


@pytest.mark.parametrize("alg", ["HS256", "HS512"])
def test_accepts_hs256_and_hs512(alg: str) -> None:
    assert _auth().authenticate(_bearer(make_token(ACCESS, SECRET, PAIRS, alg=alg)), PAIRS) == ACCESS


@pytest.mark.parametrize(
    "form",
    [
        "market=KRW-BTC&states[]=wait&states[]=done&to=2024-01-01T00:00:00+09:00",  # raw (official sample, ccxt)
        urlencode(PAIRS),  # fully percent-encoded
        urlencode(PAIRS).replace("%5B%5D=", "[]="),  # pyupbit
    ],
)
def test_accepts_every_known_spelling_of_the_parameters(form: str) -> None:
    token = make_token(ACCESS, SECRET, [("x", "1")], query_hash=_hash(form))
    assert _auth().authenticate(_bearer(token), PAIRS) == ACCESS


def test_accepts_the_query_string_exactly_as_received() -> None:
    raw = "market=KRW-BTC&to=2024-01-01T00%3A00%3A00%2B09%3A00"
    pairs = [("market", "KRW-BTC"), ("to", "2024-01-01T00:00:00+09:00")]
    assert _hash(raw) in accepted_hashes(pairs, raw)


def test_json_body_pairs_keep_order_and_expand_arrays() -> None:
    body = {"market": "KRW-BTC", "volume": None, "uuids": ["a", "b"], "price": 100, "post": True}
    assert json_pairs(body) == [("market", "KRW-BTC"), ("uuids[]", "a"), ("uuids[]", "b"), ("price", "100"),
                                ("post", "true")]


def test_no_header_and_malformed_bearer() -> None:
    assert _refused(_auth(), None).name == "no_authorization_token"
    assert _refused(_auth(), "Token abc").name == "jwt_verification"
    assert _refused(_auth(), "Bearer not.a.jwt").name == "jwt_verification"
    assert _refused(_auth(), "Bearer onlyonepart").name == "jwt_verification"


def test_rejects_alg_none_and_other_algorithms() -> None:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    payload = {"access_key": ACCESS, "nonce": "n-1"}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."
    assert _refused(_auth(), _bearer(unsigned), []).name == "jwt_verification"
    hs384 = jwt.encode(payload, SECRET, algorithm="HS384")
    assert _refused(_auth(), _bearer(hs384), []).name == "jwt_verification"
    # an HS256 header over an HS512 signature does not verify either
    header, body, _sig = jwt.encode(payload, SECRET, algorithm="HS256").split(".")
    forged_sig = jwt.encode(payload, SECRET, algorithm="HS512").split(".")[2]
    assert _refused(_auth(), _bearer(f"{header}.{body}.{forged_sig}"), []).name == "jwt_verification"


def test_unknown_key_wrong_secret_and_expired_key() -> None:
    assert _refused(_auth(), _bearer(make_token("NOPE", SECRET, PAIRS))).name == "invalid_access_key"
    assert _refused(_auth(), _bearer(make_token(ACCESS, "wrong" * 13, PAIRS))).name == "jwt_verification"
    expired = _auth(expired=frozenset({ACCESS}))
    assert _refused(expired, _bearer(make_token(ACCESS, SECRET, PAIRS))).name == "expired_access_key"


def test_an_exp_claim_in_the_past_is_refused() -> None:
    auth = Authenticator({ACCESS: SECRET}, now=lambda: 2_000_000_000.0)
    token = make_token(ACCESS, SECRET, PAIRS, extra={"exp": 1_999_999_999})
    assert _refused(auth, _bearer(token)).name == "jwt_verification"
    fresh = make_token(ACCESS, SECRET, PAIRS, extra={"exp": 2_000_000_100})
    assert auth.authenticate(_bearer(fresh), PAIRS) == ACCESS


def test_nonce_is_single_use_per_key() -> None:
    auth = Authenticator({ACCESS: SECRET, "B": "b-secret" * 8})
    assert auth.authenticate(_bearer(make_token(ACCESS, SECRET, nonce="same")), []) == ACCESS
    assert _refused(auth, _bearer(make_token(ACCESS, SECRET, nonce="same")), []).name == "nonce_used"
    assert auth.authenticate(_bearer(make_token("B", "b-secret" * 8, nonce="same")), []) == "B"  # per key
    assert _refused(auth, _bearer(make_token(ACCESS, SECRET, extra={"nonce": ""})), []).name == "jwt_verification"


def test_a_bad_signature_does_not_burn_the_nonce() -> None:
    auth = _auth()
    _refused(auth, _bearer(make_token(ACCESS, "wrong" * 13, nonce="n-7")), [])
    assert auth.authenticate(_bearer(make_token(ACCESS, SECRET, nonce="n-7")), []) == ACCESS


def test_query_hash_missing_wrong_or_wrong_alg() -> None:
    assert _refused(_auth(), _bearer(make_token(ACCESS, SECRET, PAIRS, query_hash=""))).name == "invalid_query_payload"
    assert _refused(_auth(), _bearer(make_token(ACCESS, SECRET, PAIRS, query_hash=_hash("x=1")))).name == (
        "invalid_query_payload"
    )
    token = make_token(ACCESS, SECRET, PAIRS, extra={"query_hash_alg": "SHA256"})
    assert _refused(_auth(), _bearer(token)).name == "invalid_query_payload"


# --- over HTTP -----------------------------------------------------------------------------------


def test_http_errors_have_upbit_bodies_and_statuses(sim: SimServer, client: SignedClient) -> None:
    assert client.get("/v1/accounts").status_code == 200
    no_token = requests.get(sim.rest_url + "/v1/accounts", timeout=5)
    assert (no_token.status_code, error_name(no_token)) == (401, "no_authorization_token")
    assert set(no_token.json()["error"]) == {"name", "message"}
    wrong = SignedClient(sim.rest_url, ACCESS, "wrong" * 13).get("/v1/accounts")
    assert (wrong.status_code, error_name(wrong)) == (401, "jwt_verification")
    unknown = SignedClient(sim.rest_url, "NOPE", SECRET).get("/v1/accounts")
    assert (unknown.status_code, error_name(unknown)) == (401, "invalid_access_key")
    reused = [client.get("/v1/accounts", nonce="fixed") for _ in range(2)]
    assert [r.status_code for r in reused] == [200, 401] and error_name(reused[1]) == "nonce_used"
    tampered = client.session.get(sim.rest_url + "/v1/orders/chance", params={"market": "KRW-ETH"},
                                  headers=client.headers({"market": "KRW-BTC"}), timeout=5)
    assert (tampered.status_code, error_name(tampered)) == (401, "invalid_query_payload")


def test_http_post_body_is_hashed_as_a_query_string(client: SignedClient) -> None:
    body = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "50000000", "volume": "0.001"}
    assert client.post("/v1/orders/test", body).status_code == 201
    reordered = client.session.post(client.base_url + "/v1/orders/test", json=body,
                                     headers=client.headers(dict(reversed(body.items()))), timeout=5)
    assert error_name(reordered) == "invalid_query_payload"  # the hash covers the body order


def test_http_percent_encoded_url_with_a_raw_hash(sim: SimServer, client: SignedClient) -> None:
    params = [("market", "KRW-BTC"), ("start_time", "2026-01-01T00:00:00+09:00")]
    response = client.get("/v1/orders/closed", params)  # requests percent-encodes ':' and '+'
    assert response.status_code == 200, response.text
