"""A small signing client for the simulator tests, written the way Upbit's official sample signs.

``query_hash`` is the SHA-512 of ``unquote(urlencode(params, doseq=True))``: the raw ``k=v&…``
string in parameter order, arrays as repeated ``key[]``. GET/DELETE parameters go in the URL,
POST parameters as a JSON body. Every knob of the token can be overridden to build bad requests.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
import requests

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


def query_string(params: Params) -> str:
    """The raw, non-percent-encoded parameter string the official sample hashes."""
    return unquote(urlencode(params or {}, doseq=True))


def make_token(
    access: str,
    secret: str,
    params: Params = None,
    *,
    alg: str = "HS512",
    nonce: str | None = None,
    query_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A request JWT; ``query_hash`` overrides the computed hash ("" leaves it out)."""
    payload: dict[str, Any] = {"access_key": access, "nonce": nonce or str(uuid.uuid4())}
    if params:
        digest = hashlib.sha512(query_string(params).encode()).hexdigest()
        payload["query_hash"] = digest if query_hash is None else query_hash
        payload["query_hash_alg"] = "SHA512"
        if query_hash == "":
            del payload["query_hash"]
    payload.update(extra or {})
    return jwt.encode(payload, secret, algorithm=alg)


class SignedClient:
    """Signed requests to one simulator, one user; a fresh nonce per request."""

    def __init__(self, base_url: str, access: str = "ACCESS", secret: str = "SECRET" * 11, alg: str = "HS512") -> None:
        self.base_url = base_url
        self.access = access
        self.secret = secret
        self.alg = alg
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def headers(self, params: Params = None, **token: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(self.access, self.secret, params, alg=self.alg, **token)}"}

    def get(self, path: str, params: Params = None, **token: Any) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, headers=self.headers(params, **token), timeout=5)

    def delete(self, path: str, params: Params = None, **token: Any) -> requests.Response:
        return self.session.delete(self.base_url + path, params=params, headers=self.headers(params, **token),
                                   timeout=5)

    def post(self, path: str, body: Mapping[str, Any], **token: Any) -> requests.Response:
        return self.session.post(self.base_url + path, json=dict(body), headers=self.headers(body, **token), timeout=5)

    def public(self, path: str, params: Params = None) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=5)

    # --- shortcuts that assert success -----------------------------------------------------

    def order(self, **body: Any) -> dict[str, Any]:
        response = self.post("/v1/orders", body)
        assert response.status_code == 201, response.text
        return response.json()

    def fetch(self, uuid_: str) -> dict[str, Any]:
        response = self.get("/v1/order", {"uuid": uuid_})
        assert response.status_code == 200, response.text
        return response.json()

    def accounts(self) -> dict[str, dict[str, Any]]:
        response = self.get("/v1/accounts")
        assert response.status_code == 200, response.text
        return {row["currency"]: row for row in response.json()}


def error_name(response: requests.Response) -> object:
    """The Upbit error name of an error answer."""
    return response.json()["error"]["name"]
