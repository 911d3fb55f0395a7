"""Fidelity: requests built by hand exactly as pyupbit builds them (requests + pyjwt) are served.

pyupbit's quirks (``docs/upbit-api.md`` §1.3): it signs with HS256; it hashes
``urlencode(query, doseq=True).replace("%5B%5D=", "[]=")`` — percent-encoded except ``[]``; it
sends GET parameters as a *form-encoded body*, DELETE parameters as a body too, POST parameters
as JSON; and it parses ``Remaining-Req`` on every answer with a regex, failing if it is absent.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import jwt
import requests

from tests.upbit_sim.conftest import ACCESS, SECRET
from upbit_sim import SimServer

REMAINING = re.compile(r"group=([a-z\-]+); min=([0-9]+); sec=([0-9]+)")  # pyupbit's parser


def _headers(query: dict[str, Any] | None = None) -> dict[str, str]:
    """pyupbit's ``Upbit._request_headers``."""
    payload: dict[str, Any] = {"access_key": ACCESS, "nonce": str(uuid.uuid4())}
    if query is not None:
        m = hashlib.sha512()
        m.update(urlencode(query, doseq=True).replace("%5B%5D=", "[]=").encode())
        payload["query_hash"] = m.hexdigest()
        payload["query_hash_alg"] = "SHA512"
    return {"Authorization": f"Bearer {jwt.encode(payload, SECRET, algorithm='HS256')}"}


def _ok(response: requests.Response) -> Any:
    assert 200 <= response.status_code < 400, response.text
    assert REMAINING.search(response.headers["Remaining-Req"]) is not None
    return response.json()


def test_pyupbit_reads_with_form_bodies(sim: SimServer) -> None:
    url = sim.rest_url
    accounts = _ok(requests.get(f"{url}/v1/accounts", headers=_headers(), timeout=5))
    assert {a["currency"] for a in accounts} == {"KRW", "BTC"}
    data = {"market": "KRW-BTC"}
    chance = _ok(requests.get(f"{url}/v1/orders/chance", headers=_headers(data), data=data, timeout=5))
    assert chance["market"]["id"] == "KRW-BTC"


def test_pyupbit_order_lifecycle(sim: SimServer) -> None:
    url = sim.rest_url
    data = {"market": "KRW-BTC", "side": "bid", "volume": "0.01", "price": "99000000", "ord_type": "limit",
            "identifier": "py:1+x"}  # ':' and '+' are percent-encoded in pyupbit's hash
    placed = _ok(requests.post(f"{url}/v1/orders", headers=_headers(data), json=data, timeout=5))
    assert placed["state"] == "wait" and placed["identifier"] == "py:1+x"

    query = {"uuid": placed["uuid"]}
    fetched = _ok(requests.get(f"{url}/v1/order", headers=_headers(query), data=query, timeout=5))
    assert fetched["uuid"] == placed["uuid"] and fetched["trades"] == []

    listing = {"market": "KRW-BTC", "state": "wait", "page": 1, "limit": 100, "order_by": "desc"}
    orders = _ok(requests.get(f"{url}/v1/orders", headers=_headers(listing), data=listing, timeout=5))
    assert [o["uuid"] for o in orders] == [placed["uuid"]]

    states = {"states[]": ["wait", "done"]}
    by_states = _ok(requests.get(f"{url}/v1/orders", headers=_headers(states), data=states, timeout=5))
    assert [o["uuid"] for o in by_states] == [placed["uuid"]]

    cancelled = _ok(requests.delete(f"{url}/v1/order", headers=_headers(query), data=query, timeout=5))
    assert cancelled["state"] == "wait"
    after = _ok(requests.get(f"{url}/v1/order", headers=_headers(query), data=query, timeout=5))
    assert after["state"] == "cancel"


def test_pyupbit_cancel_with_a_json_body(sim: SimServer) -> None:
    url = sim.rest_url
    data = {"market": "KRW-BTC", "side": "ask", "volume": "0.01", "price": "120000000", "ord_type": "limit"}
    placed = _ok(requests.post(f"{url}/v1/orders", headers=_headers(data), json=data, timeout=5))
    query = {"uuid": placed["uuid"]}
    assert _ok(requests.delete(f"{url}/v1/order", headers=_headers(query), json=query, timeout=5))["state"] == "wait"


def test_a_form_encoded_post_is_refused(sim: SimServer) -> None:
    data = {"market": "KRW-BTC", "side": "bid", "volume": "0.01", "price": "99000000", "ord_type": "limit"}
    response = requests.post(f"{sim.rest_url}/v1/orders", headers=_headers(data), data=data, timeout=5)
    assert response.status_code == 400 and response.json()["error"]["name"] == "validation_error"
    assert REMAINING.search(response.headers["Remaining-Req"]) is not None
