"""UpbitClient against the simulated Upbit (``upbit_sim``): every endpoint, and one test per fault.

Fault tests show the outcome the client promises: idempotent reads are retried, repeated
failures open the group's breaker (and say so), errors are classified, and an order whose
outcome is unknown is resolved by looking its identifier up, never by sending it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest

upbit_sim = pytest.importorskip("upbit_sim")
if not hasattr(upbit_sim, "SimServer"):  # the package is being written in parallel
    pytest.skip("upbit_sim has no SimServer yet", allow_module_level=True)

from exchange import rules  # noqa: E402
from exchange.errors import (  # noqa: E402
    AuthFailed,
    CircuitOpen,
    DuplicateIdentifier,
    ErrorKind,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    OrderOutcomeUnknown,
    TransientExchangeError,
    UnderMinimum,
)
from exchange.models import Order  # noqa: E402
from exchange.rest import UpbitClient  # noqa: E402
from tests.helpers import MS, eventually  # noqa: E402

SimServer, SimConfig = upbit_sim.SimServer, upbit_sim.SimConfig
# The contract's keys ("SECRET") are shorter than PyJWT recommends for HS256; that is the point of a fixture.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
ACCESS, SECRET = "ACCESS", "SECRET"
MARKET = "KRW-BTC"
READ_TIMEOUT = 500 * MS


@pytest.fixture
def sim() -> Iterator[object]:
    server = SimServer(SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": D("1000000")}})).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def changes() -> list[tuple[str, str, str]]:
    return []


class SleepLog:
    """The client's sleep for tests of what it *decides* to wait: recorded, not slept.

    The simulator answers ``fail_next`` faults before its rate limiter admits the request, with
    ``Remaining-Req: …; sec=0``, which (rightly) makes the client hold the group for a second.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(sim: object, changes: list[tuple[str, str, str]], **kw: object) -> UpbitClient:
    return UpbitClient(sim.rest_url, access_key=ACCESS, secret_key=SECRET,  # type: ignore[attr-defined]
                       timeout=(1.0, READ_TIMEOUT), on_breaker_change=lambda *c: changes.append(c),
                       retry_initial_s=0.01, retry_max_s=0.05, breaker_fail_max=2, breaker_reset_s=0.3,
                       **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(sim: object, changes: list[tuple[str, str, str]]) -> Iterator[UpbitClient]:
    """A client that really waits (the rate limiter's pacing is part of what is tested)."""
    with _client(sim, changes) as c:
        yield c


@pytest.fixture
def waits() -> SleepLog:
    return SleepLog()


@pytest.fixture
def quick(sim: object, changes: list[tuple[str, str, str]], waits: SleepLog) -> Iterator[UpbitClient]:
    """A client whose waits are recorded instead of slept (for injected failures)."""
    with _client(sim, changes, sleep=waits) as c:
        yield c


def _last_price(client: UpbitClient) -> D:
    (ticker,) = client.tickers([MARKET])
    return ticker.trade_price


def _resting_bid(client: UpbitClient, identifier: str) -> Order:
    """A limit bid far under the market (it rests), worth about 10,000 KRW."""
    price = rules.round_price(_last_price(client) / 2, side="bid", market=MARKET)
    volume = rules.round_volume(D(10000) / price) + D("0.00000001")
    assert rules.check_order(market=MARKET, side="bid", ord_type="limit", price=price, volume=volume) == []
    return client.create_order(market=MARKET, side="bid", ord_type="limit", price=price, volume=volume,
                               identifier=identifier)


def _orders_with(client: UpbitClient, identifier: str) -> list[Order]:
    return [o for o in client.open_orders(market=MARKET) if o.identifier == identifier]


# ---- every endpoint -----------------------------------------------------------------------------

def test_quotation_endpoints(client: UpbitClient) -> None:
    markets = {m.market for m in client.markets()}
    assert MARKET in markets
    price = _last_price(client)
    assert isinstance(price, D) and price > 0
    ticks = client.trades(MARKET, count=5)
    assert 0 < len(ticks) <= 5 and all(t.market == MARKET and t.trade_price > 0 for t in ticks)
    candles = client.minute_candles(MARKET, unit=1, count=3)
    assert 0 < len(candles) <= 3 and all(c.low_price <= c.trade_price <= c.high_price for c in candles)
    (book,) = client.orderbook([MARKET])
    assert book.market == MARKET and book.units and book.units[0].ask_price >= book.units[0].bid_price
    (instrument,) = client.instruments([MARKET])
    assert instrument.market == MARKET and instrument.tick_size == rules.tick_size(price, market=MARKET)
    for group in ("market", "ticker", "trade", "candle", "orderbook"):
        assert client.last_remaining(group) is not None, group


def test_account_endpoints(client: UpbitClient) -> None:
    balances = {a.currency: a for a in client.accounts()}
    assert balances["KRW"].balance == D("1000000") and balances["KRW"].locked == 0
    chance = client.order_chance(MARKET)
    assert chance.bid_fee == rules.fee_rate(MARKET)
    assert chance.market.id == MARKET and chance.market.bid.min_total == rules.min_order_total(MARKET)
    assert client.last_remaining("default") is not None


def test_order_lifecycle(client: UpbitClient) -> None:
    placed = _resting_bid(client, "life-1")
    assert placed.state == "wait" and placed.identifier == "life-1"
    assert client.last_remaining("order") is not None
    assert client.get_order(uuid=placed.uuid).uuid == placed.uuid
    assert client.get_order(identifier="life-1").uuid == placed.uuid
    assert [o.uuid for o in _orders_with(client, "life-1")] == [placed.uuid]
    krw = {a.currency: a for a in client.accounts()}["KRW"]
    assert krw.locked > 0
    accepted = client.cancel_order(identifier="life-1")
    assert accepted.uuid == placed.uuid
    eventually(lambda: client.get_order(uuid=placed.uuid).state == "cancel", what="cancel completes")
    closed = client.closed_orders(market=MARKET, states=["cancel"])
    assert placed.uuid in {o.uuid for o in closed}
    assert _orders_with(client, "life-1") == []


def test_test_order_creates_nothing(client: UpbitClient) -> None:
    price = rules.round_price(_last_price(client) / 2, side="bid", market=MARKET)
    answer = client.test_order(market=MARKET, side="bid", ord_type="limit", price=price,
                               volume=rules.round_volume(D(10000) / price) + D("0.00000001"), identifier="t-1")
    assert answer.market == MARKET
    assert client.open_orders(market=MARKET) == ()
    assert client.find_order("t-1") is None


def test_refusals_are_classified(client: UpbitClient) -> None:
    price = rules.round_price(_last_price(client) / 2, side="bid", market=MARKET)
    off_tick = price + rules.tick_size(price, market=MARKET) / 2
    with pytest.raises(InvalidOrder) as info:
        client.create_order(market=MARKET, side="bid", ord_type="limit", price=off_tick, volume=D("0.001"),
                            identifier="bad-1")
    assert info.value.name == "invalid_price_bid"
    with pytest.raises(UnderMinimum):
        client.create_order(market=MARKET, side="bid", ord_type="price", price=D(4000), identifier="bad-2")
    with pytest.raises(InsufficientFunds):
        client.create_order(market=MARKET, side="bid", ord_type="price", price=D(2000000), identifier="bad-3")
    with pytest.raises(OrderNotFound):
        client.get_order(uuid="00000000-0000-4000-8000-000000000000")
    assert client.breaker_state("order") == "closed"  # refusals are not outages


def test_duplicate_identifier_is_refused(client: UpbitClient) -> None:
    _resting_bid(client, "dup-1")
    with pytest.raises(DuplicateIdentifier) as info:
        _resting_bid(client, "dup-1")
    assert info.value.identifier == "dup-1"
    assert len(_orders_with(client, "dup-1")) == 1


def test_wrong_secret_is_an_auth_failure(sim: object) -> None:
    with UpbitClient(sim.rest_url, access_key=ACCESS, secret_key="not-the-secret-0123456789abcdef",  # type: ignore[attr-defined]
                     ) as c, pytest.raises(AuthFailed) as info:
        c.accounts()
    assert info.value.kind is ErrorKind.INVALID_KEY
    assert "not-the-secret" not in str(info.value)


def test_the_client_paces_itself_under_the_limit(sim: object, changes: list[tuple[str, str, str]]) -> None:
    """The simulator enforces 10/s on ``ticker`` (a raw burst gets 429 from the 11th request)."""
    with _client(sim, changes, max_attempts=1) as once:  # a 429 would surface, not be retried away
        for _ in range(15):
            once.tickers([MARKET])
        assert once.last_remaining("ticker") is not None


# ---- faults ---------------------------------------------------------------------------------------

def test_fault_fail_next_on_a_read_is_retried(sim: object, quick: UpbitClient, waits: SleepLog) -> None:
    sim.faults.fail_next(2, status=500)  # type: ignore[attr-defined]
    assert {a.currency for a in quick.accounts()} >= {"KRW"}
    assert quick.breaker_state("exchange-default") == "closed"
    assert len(waits.waits) >= 2  # backed off before each retry


def test_fault_429_is_retried_after_a_hold(sim: object, quick: UpbitClient, waits: SleepLog) -> None:
    sim.faults.fail_next(1, status=429)  # type: ignore[attr-defined]
    assert _last_price(quick) > 0
    assert max(waits.waits) >= 0.99  # the group was held for (about) the rest of a second


def test_fault_persistent_5xx_opens_the_breaker(sim: object, quick: UpbitClient,
                                               changes: list[tuple[str, str, str]]) -> None:
    client = quick
    sim.faults.fail_next(8, status=503, path="/v1/ticker")  # type: ignore[attr-defined]
    for _ in range(2):
        with pytest.raises(TransientExchangeError) as info:
            client.tickers([MARKET])
        assert info.value.status == 503
    assert changes == [("quotation", "closed", "open")]
    with pytest.raises(CircuitOpen):
        client.tickers([MARKET])
    assert client.accounts()  # another group still works
    eventually(lambda: _try_ticker(client), timeout=3000 * MS, interval=20 * MS, what="breaker recovers")
    assert changes[-1] == ("quotation", "half-open", "closed")


def _try_ticker(client: UpbitClient) -> bool:
    try:
        return bool(client.tickers([MARKET]))
    except CircuitOpen:
        return False


def test_fault_delay_past_the_timeout_on_an_order(sim: object, client: UpbitClient) -> None:
    sim.faults.delay(2 * READ_TIMEOUT, n=1, path="/v1/orders", method="POST")  # type: ignore[attr-defined]
    with pytest.raises(OrderOutcomeUnknown) as info:
        _resting_bid(client, "slow-1")
    assert info.value.identifier == "slow-1"
    found = eventually(lambda: client.find_order("slow-1"), what="the delayed order is found")
    assert found.identifier == "slow-1"
    assert len(_orders_with(client, "slow-1")) == 1  # resolved by lookup, never sent twice


def test_fault_drop_after_accept_on_an_order(sim: object, client: UpbitClient) -> None:
    sim.faults.drop_after_accept(1, path="/v1/orders", method="POST")  # type: ignore[attr-defined]
    with pytest.raises(OrderOutcomeUnknown) as info:
        _resting_bid(client, "drop-1")
    found = client.find_order(info.value.identifier)
    assert found is not None and found.state == "wait"
    assert len(_orders_with(client, "drop-1")) == 1


def test_fault_drop_after_accept_on_a_read_is_retried(sim: object, client: UpbitClient) -> None:
    sim.faults.drop_after_accept(1, path="/v1/accounts")  # type: ignore[attr-defined]
    assert client.accounts()


def test_fault_lookup_lag_after_an_unknown_outcome(sim: object, client: UpbitClient) -> None:
    sim.faults.lookup_lag(0.3)  # type: ignore[attr-defined]
    sim.faults.drop_after_accept(1, path="/v1/orders", method="POST")  # type: ignore[attr-defined]
    with pytest.raises(OrderOutcomeUnknown):
        _resting_bid(client, "lag-1")
    assert client.find_order("lag-1") is None  # not visible yet: keep looking, do not resend
    found = eventually(lambda: client.find_order("lag-1"), what="the lagging order becomes visible")
    assert found.identifier == "lag-1"
    assert len(_orders_with(client, "lag-1")) == 1


def test_fault_fail_next_on_an_order_is_not_retried(sim: object, client: UpbitClient) -> None:
    sim.faults.fail_next(1, status=500, path="/v1/orders", method="POST")  # type: ignore[attr-defined]
    with pytest.raises(OrderOutcomeUnknown):
        _resting_bid(client, "fail-1")
    assert client.find_order("fail-1") is None  # the 500 came before the order was handled
    assert _orders_with(client, "fail-1") == []


def test_fault_malformed_answer_to_a_read(sim: object, client: UpbitClient) -> None:
    sim.faults.malformed_next(1, path="/v1/accounts")  # type: ignore[attr-defined]
    with pytest.raises(MalformedResponse):
        client.accounts()
    assert client.accounts()


def test_fault_malformed_answer_to_an_order(sim: object, client: UpbitClient) -> None:
    sim.faults.malformed_next(1, path="/v1/orders", method="POST")  # type: ignore[attr-defined]
    with pytest.raises(OrderOutcomeUnknown):
        _resting_bid(client, "garbled-1")
    found = client.find_order("garbled-1")
    assert found is not None
    assert len(_orders_with(client, "garbled-1")) == 1


def test_the_simulator_says_it_is_one(client: UpbitClient) -> None:
    assert client.is_simulator() is True
