"""upbit_sim.server, .config and .ledger: lifecycle, settings validation, balance bookkeeping."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import requests

from tests.upbit_sim.conftest import ACCESS, MakeSim
from upbit_sim import SimConfig, SimServer
from upbit_sim.ledger import Ledger


def test_the_public_contract(make_sim: MakeSim) -> None:
    sim = make_sim(keys={"ACCESS": "SECRET" * 11}, balances={"ACCESS": {"KRW": D("1000000")}}, recording=None,
                   speed=None)
    assert sim.rest_url.startswith("http://127.0.0.1:")
    assert sim.ws_url.startswith("ws://127.0.0.1:") and sim.ws_url.endswith("/websocket/v1")
    for name in ("fail_next", "delay", "drop_after_accept", "lookup_lag", "malformed_next", "ws_drop", "ws_stall",
                 "ws_corrupt_next"):
        assert callable(getattr(sim.faults, name))
    assert requests.get(sim.rest_url + "/v1/market/all", timeout=5).status_code == 200


def test_lifecycle() -> None:
    sim = SimServer(SimConfig(seed=False))
    with pytest.raises(RuntimeError, match="not started"):
        _ = sim.rest_url
    with sim:
        with pytest.raises(RuntimeError, match="already started"):
            sim.start()
        url = sim.rest_url
    sim.stop()  # twice is fine
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/v1/market/all", timeout=1)


def test_stop_closes_kept_alive_connections(make_sim: MakeSim) -> None:
    sim = make_sim()
    session = requests.Session()
    assert session.get(sim.rest_url + "/v1/market/all", timeout=5).ok  # the connection stays open
    sim.stop()  # the fixture then checks that no thread is left behind
    session.close()


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"balances": {"X": {"KRW": D(1)}}}, "access key 'X' is not in keys"),
        ({"keys": {"A": "S"}, "balances": {"A": {"KRW": 5}}}, "must be a Decimal >= 0"),
        ({"speed": 0.0}, "speed must be a positive number"),
        ({"port": 70000}, "port must be 0..65535"),
        ({"ws_idle_timeout_s": 0}, "ws_idle_timeout_s must be a positive number"),
    ],
)
def test_config_is_validated(settings: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SimConfig(**settings)  # type: ignore[arg-type]


def test_deposit_and_holding(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.deposit(ACCESS, "ETH", D("1.5"))
    assert sim.holding(ACCESS, "ETH").balance == D("1.5")
    with pytest.raises(ValueError, match="unknown access key"):
        sim.deposit("NOPE", "KRW", D(1))


def test_ledger_locks_spends_and_averages() -> None:
    ledger = Ledger({"u": {"KRW": D(1000)}})
    assert not ledger.lock("u", "KRW", D(1001))
    assert ledger.lock("u", "KRW", D(600))
    ledger.spend_locked("u", "KRW", D(500))
    ledger.receive_bought("u", "BTC", D(1), D(500))
    ledger.unlock("u", "KRW", D(100))
    ledger.receive_bought("u", "BTC", D(1), D(300))
    assert ledger.free("u", "KRW") == D(500) and ledger.holding("u", "KRW").locked == 0
    assert ledger.holding("u", "BTC").avg_buy_price == D(400)
    ledger.lock("u", "BTC", D(2))
    ledger.spend_locked("u", "BTC", D(2))
    assert ledger.holding("u", "BTC").avg_buy_price == 0  # nothing held: reset
    with pytest.raises(AssertionError, match="ledger bug"):
        ledger.unlock("u", "KRW", D(1))
    with pytest.raises(ValueError, match="finite Decimal"):
        ledger.deposit("u", "KRW", D(-1))
