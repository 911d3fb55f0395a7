"""exchange.rest against a scripted loopback server: wire format, retries, breakers, order safety."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
import requests

from exchange.errors import (
    AuthFailed,
    CircuitOpen,
    CredentialsMissing,
    DuplicateIdentifier,
    ErrorKind,
    InvalidOrder,
    MalformedResponse,
    OrderOutcomeUnknown,
    RateLimited,
    TransientExchangeError,
)
from exchange.rest import UpbitClient
from tests.fakes.scripted_upbit import Answer, ScriptedUpbit
from tests.helpers import MS, new_threads

ACCESS, SECRET = "ACCESS-KEY-0123456789", "SECRET-KEY-0123456789-abcdefghijkl"

ORDER = {"uuid": "cdd92199-2897-4e14-9448-f923320408ad", "side": "bid", "ord_type": "limit", "price": "100000000.0",
         "state": "wait", "market": "KRW-BTC", "created_at": "2018-04-10T15:42:23+09:00", "volume": "0.01",
         "remaining_volume": "0.01", "reserved_fee": "0.0015", "remaining_fee": "0.0015", "paid_fee": "0.0",
         "locked": "1000500.0015", "executed_volume": "0.0", "trades_count": 0, "identifier": "bot-1"}
ACCOUNTS = [{"currency": "KRW", "balance": "1000000.123456789012345", "locked": "0", "avg_buy_price": "0",
             "avg_buy_price_modified": False, "unit_currency": "KRW"}]


class Recorder:
    """Fake sleep: records what the client would have waited, returns at once."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class RecordingSession(requests.Session):
    """A real session that remembers the timeout of every request it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[Any] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.timeouts.append(kwargs.get("timeout"))
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def srv() -> Iterator[ScriptedUpbit]:
    before = threading.enumerate()
    with ScriptedUpbit(secret=SECRET) as server:
        yield server
    assert not [t for t in new_threads(before) if t.name == "scripted-upbit"]


@pytest.fixture
def sleeps() -> Recorder:
    return Recorder()


@pytest.fixture
def changes() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def client(srv: ScriptedUpbit, sleeps: Recorder, changes: list[tuple[str, str, str]]) -> Iterator[UpbitClient]:
    with UpbitClient(srv.url, access_key=ACCESS, secret_key=SECRET, sleep=sleeps, timeout=(1.0, 300 * MS),
                     on_breaker_change=lambda *c: changes.append(c), breaker_fail_max=2,
                     breaker_reset_s=0.2) as c:
        yield c


def test_private_get_is_signed_and_parsed_exactly(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("GET /v1/accounts", Answer(body=ACCOUNTS))
    (krw,) = client.accounts()
    assert krw.balance == D("1000000.123456789012345")  # not a float's approximation
    (req,) = srv.received
    assert req.auth_error is None and req.claims is not None
    assert req.claims["access_key"] == ACCESS and "query_hash" not in req.claims
    assert client.last_remaining("default") == 29


def test_query_params_are_hashed_raw_and_sent_encoded(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("GET /v1/orders/closed", Answer(body=[ORDER]))
    (order,) = client.closed_orders(market="KRW-BTC", states=["done", "cancel"],
                                    start_time="2024-06-01T00:00:00+09:00", limit=10)
    assert order.price == D("100000000.0") and order.identifier == "bot-1"
    (req,) = srv.received
    assert req.auth_error is None  # the server's own hash of the decoded query matched
    assert "states%5B%5D=done&states%5B%5D=cancel" in req.query and "%2B09%3A00" in req.query
    assert req.params() == [("market", "KRW-BTC"), ("states[]", "done"), ("states[]", "cancel"),
                            ("start_time", "2024-06-01T00:00:00+09:00"), ("limit", "10")]


def test_order_post_sends_json_and_hashes_its_parameters(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("POST /v1/orders", Answer(201, ORDER, remaining="group=order; min=1800; sec=7"))
    order = client.create_order(market="KRW-BTC", side="bid", ord_type="limit", price=D("100000000"),
                                volume=D("0.01"), identifier="bot-1")
    assert order.uuid == ORDER["uuid"] and order.locked == D("1000500.0015")
    (req,) = srv.received
    assert req.auth_error is None
    assert req.headers["Content-Type"] == "application/json; charset=utf-8"
    assert req.params() == [("market", "KRW-BTC"), ("side", "bid"), ("volume", "0.01"), ("price", "100000000"),
                            ("ord_type", "limit"), ("identifier", "bot-1")]
    assert client.last_remaining("order") == 7


def test_every_request_has_a_timeout(srv: ScriptedUpbit) -> None:
    srv.default("GET /v1/ticker", Answer(body=[]))
    srv.default("GET /v1/accounts", Answer(body=[]))
    session = RecordingSession()
    with UpbitClient(srv.url, access_key=ACCESS, secret_key=SECRET, session=session, timeout=(2.0, 4.0)) as c:
        c.tickers(["KRW-BTC"])
        c.accounts()
    assert session.timeouts == [(2.0, 4.0), (2.0, 4.0)]
    session.close()


def test_idempotent_calls_retry_5xx_then_succeed(srv: ScriptedUpbit, client: UpbitClient, sleeps: Recorder) -> None:
    srv.script("GET /v1/accounts", Answer(500, {"error": {"name": "server_error", "message": "x"}}),
               Answer(503, raw=b"<html>busy</html>"), Answer(body=ACCOUNTS))
    assert len(client.accounts()) == 1
    assert len(srv.requests_to("GET /v1/accounts")) == 3
    assert len([s for s in sleeps.sleeps if s > 0]) >= 2  # backoff between attempts


def test_retries_are_bounded(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.default("GET /v1/ticker", Answer(502, raw=b"bad gateway"))
    with pytest.raises(TransientExchangeError) as info:
        client.tickers(["KRW-BTC"])
    assert info.value.status == 502 and info.value.kind is ErrorKind.SERVER
    assert len(srv.requests_to("GET /v1/ticker")) == 4


def test_429_is_retried_after_holding_the_group(srv: ScriptedUpbit, client: UpbitClient, sleeps: Recorder) -> None:
    srv.script("GET /v1/ticker", Answer(429, raw=b"Too many API requests.", remaining="group=ticker; min=0; sec=0"),
               Answer(body=[]))
    assert client.tickers(["KRW-BTC"]) == ()
    assert len(srv.requests_to("GET /v1/ticker")) == 2
    assert max(sleeps.sleeps) >= 0.99  # held at least the rest of the second before the retry


def test_client_errors_are_not_retried(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.default("GET /v1/orders/chance", Answer(400, {"error": {"name": "validation_error", "message": "market"}}))
    with pytest.raises(InvalidOrder):
        client.order_chance("KRW-NOPE")
    assert len(srv.requests_to("GET /v1/orders/chance")) == 1


@pytest.mark.parametrize("answer", [
    Answer(500, {"error": {"name": "internal", "message": "oops"}}),
    Answer(201, raw=b"{not json"),
    Answer(drop=True),
    Answer(201, ORDER, delay_s=1200 * MS),  # longer than the 300 ms read timeout
], ids=["5xx", "malformed", "dropped", "timeout"])
def test_order_post_with_unknown_outcome_is_never_retried(srv: ScriptedUpbit, client: UpbitClient,
                                                          answer: Answer) -> None:
    srv.script("POST /v1/orders", answer)
    with pytest.raises(OrderOutcomeUnknown) as info:
        client.create_order(market="KRW-BTC", side="bid", ord_type="limit", price=D("100000000"), volume=D("0.01"),
                            identifier="bot-7")
    assert info.value.identifier == "bot-7"
    assert len(srv.requests_to("POST /v1/orders")) == 1


def test_order_post_429_is_not_retried_either(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("POST /v1/orders", Answer(429, raw=b"Too many API requests."))
    with pytest.raises(RateLimited):
        client.create_order(market="KRW-BTC", side="bid", ord_type="price", price=D(10000), identifier="bot-8")
    assert len(srv.requests_to("POST /v1/orders")) == 1


def test_duplicate_identifier_is_its_own_error(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("POST /v1/orders", Answer(400, {"error": {"name": "duplicate_identifier",
                                                         "message": "이미 사용된 identifier 입니다."}}))
    with pytest.raises(DuplicateIdentifier) as info:
        client.create_order(market="KRW-BTC", side="bid", ord_type="price", price=D(10000), identifier="bot-9")
    assert info.value.identifier == "bot-9"


def test_create_order_requires_an_identifier(client: UpbitClient) -> None:
    with pytest.raises(ValueError, match="identifier"):
        client.create_order(market="KRW-BTC", side="bid", ord_type="price", price=D(10000), identifier="")


def test_malformed_answer_to_a_read_is_classified(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("GET /v1/accounts", Answer(body=[{"currency": "KRW"}]))
    with pytest.raises(MalformedResponse):
        client.accounts()
    assert len(srv.requests_to("GET /v1/accounts")) == 1


def test_breaker_opens_reports_and_recovers(srv: ScriptedUpbit, client: UpbitClient,
                                           changes: list[tuple[str, str, str]]) -> None:
    from tests.helpers import eventually

    srv.default("GET /v1/ticker", Answer(500, raw=b"down"))
    for _ in range(2):  # fail_max=2 whole retried sequences
        with pytest.raises(TransientExchangeError):
            client.tickers(["KRW-BTC"])
    assert client.breaker_state("quotation") == "open"
    assert changes == [("quotation", "closed", "open")]
    sent = len(srv.requests_to("GET /v1/ticker"))
    assert sent == 8
    with pytest.raises(CircuitOpen) as info:
        client.tickers(["KRW-BTC"])
    assert info.value.group == "quotation" and len(srv.requests_to("GET /v1/ticker")) == sent
    # Other groups are unaffected.
    srv.script("GET /v1/accounts", Answer(body=[]))
    assert client.accounts() == ()
    # After reset_timeout a trial call goes through; success closes the breaker.
    srv.default("GET /v1/ticker", Answer(body=[]))

    def trial() -> bool:
        try:
            return client.tickers(["KRW-BTC"]) == ()
        except CircuitOpen:
            return False

    eventually(trial, timeout=3000 * MS, interval=20 * MS, what="breaker half-opens")
    assert changes[-2:] == [("quotation", "open", "half-open"), ("quotation", "half-open", "closed")]


def test_an_open_breaker_past_its_reset_timeout_reports_half_open(srv: ScriptedUpbit) -> None:
    """A caller that asks before it calls must see the trial coming: pybreaker only leaves "open" when a
    call is attempted, so a gate that waits for "not open" would otherwise wait forever."""
    now = [100.0]
    with UpbitClient(srv.url, access_key=ACCESS, secret_key=SECRET, sleep=Recorder(), clock=lambda: now[0],
                     timeout=(1.0, 300 * MS), breaker_fail_max=1, breaker_reset_s=30.0) as client:
        srv.default("GET /v1/ticker", Answer(500, raw=b"down"))
        with pytest.raises(TransientExchangeError):
            client.tickers(["KRW-BTC"])
        assert client.breaker_state("quotation") == "open"
        now[0] += 29.9
        assert client.breaker_state("quotation") == "open"
        now[0] += 0.1
        assert client.breaker_state("quotation") == "half-open"
        assert client.breaker_state("order") == "closed"


def test_fatal_client_errors_do_not_trip_the_breaker(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.default("GET /v1/order", Answer(404, {"error": {"name": "order_not_found", "message": "주문을 찾지 못했습니다."}}))
    for _ in range(5):
        assert client.find_order("nope") is None
    assert client.breaker_state("exchange-default") == "closed"


def test_418_blocks_all_calls_without_sending(srv: ScriptedUpbit, client: UpbitClient) -> None:
    srv.script("GET /v1/ticker", Answer(418, {"error": {"name": "too_many_requests",
                                                        "message": "Too many API requests. Blocked for 60 seconds."}}))
    with pytest.raises(RateLimited) as info:
        client.tickers(["KRW-BTC"])
    assert info.value.kind is ErrorKind.BLOCKED and info.value.retry_after == 60
    with pytest.raises(RateLimited, match="not sent"):
        client.accounts()
    assert len(srv.received) == 1


def test_auth_failures_are_classified_without_leaking_keys(srv: ScriptedUpbit) -> None:
    with UpbitClient(srv.url, access_key=ACCESS, secret_key="WRONG-SECRET-0123456789-abcdefghijkl") as c:
        with pytest.raises(AuthFailed) as info:
            c.accounts()
    assert info.value.kind is ErrorKind.INVALID_KEY and info.value.status == 401
    assert ACCESS not in str(info.value) and "WRONG-SECRET" not in str(info.value)


def test_private_calls_need_keys_and_public_calls_are_unsigned(srv: ScriptedUpbit) -> None:
    srv.default("GET /v1/market/all", Answer(body=[{"market": "KRW-BTC", "korean_name": "비트코인",
                                                   "english_name": "Bitcoin"}], remaining="group=market; min=1; sec=9"))
    with UpbitClient(srv.url, access_key=None, secret_key=None) as c:
        with pytest.raises(CredentialsMissing):
            c.accounts()
        (m,) = c.markets()
        assert m.market == "KRW-BTC" and not m.warning
        assert c.last_remaining("market") == 9
    assert "Authorization" not in srv.received[0].headers
    assert srv.received[0].query == "isDetails=true"
    with pytest.raises(ValueError, match="both"):
        UpbitClient(srv.url, access_key=ACCESS, secret_key=None)


def test_network_failure_on_a_read_is_transient(sleeps: Recorder) -> None:
    with ScriptedUpbit() as dead:
        url = dead.url
    with UpbitClient(url, access_key=None, secret_key=None, sleep=sleeps, max_attempts=2) as c:
        with pytest.raises(TransientExchangeError) as info:
            c.tickers(["KRW-BTC"])
    assert info.value.kind is ErrorKind.NETWORK
    assert isinstance(info.value.__cause__, requests.RequestException)


def test_the_environment_is_read_once_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy and CA-bundle variables still apply, but from the client's construction, not per request
    (requests' per-request environment merge is a measurable share of a loopback order)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/our-bundle.pem")
    client = UpbitClient("https://api.upbit.com", access_key=None, secret_key=None)
    try:
        session = client._session
        assert session.trust_env is False
        assert session.proxies.get("https") == "http://proxy.example:3128"
        assert session.verify == "/etc/ssl/our-bundle.pem"
        monkeypatch.setenv("HTTPS_PROXY", "http://other.example:1")  # later changes no longer apply
        assert session.proxies.get("https") == "http://proxy.example:3128"
    finally:
        client.close()


def test_an_exchange_that_is_not_the_simulator_is_never_taken_for_one(srv: ScriptedUpbit, client: UpbitClient) -> None:
    """The real Upbit (like this scripted one) answers /_sim/status 404; a lookalike answer is not enough."""
    assert client.is_simulator() is False
    srv.default("GET /_sim/status", Answer(body={"status": "UP"}))
    assert client.is_simulator() is False
    srv.default("GET /_sim/status", Answer(body={"status": "UP", "simulator": "upbit_sim"}))
    assert client.is_simulator() is True
