"""Fixtures for the simulator tests: a started simulator (stopped and thread-checked after), a client."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from model.clock import FakeClock
from tests.helpers import MS, eventually, new_threads
from tests.upbit_sim.sim_client import SignedClient
from upbit_sim import SimConfig, SimServer

ACCESS = "ACCESS"
SECRET = "SECRET" * 11
OTHER_ACCESS = "OTHER"
OTHER_SECRET = "other-secret" * 6

MakeSim = Callable[..., SimServer]


@pytest.fixture
def clock() -> FakeClock:
    """The simulator's clock: moves only when a test says so."""
    return FakeClock(monotonic=1000.0, now=datetime(2026, 1, 5, 3, 0, tzinfo=UTC))


@pytest.fixture
def make_sim(clock: FakeClock) -> Iterator[MakeSim]:
    """Build and start simulators (defaults: two users, no seed trades, the fake clock)."""
    before = list(threading.enumerate())
    started: list[SimServer] = []

    def make(**overrides: Any) -> SimServer:
        settings: dict[str, Any] = {
            "keys": {ACCESS: SECRET, OTHER_ACCESS: OTHER_SECRET},
            "balances": {ACCESS: {"KRW": Decimal(10_000_000), "BTC": Decimal(1)}, OTHER_ACCESS: {"KRW": Decimal(0)}},
            "seed": False,
            "clock": clock,
        }
        on_request = overrides.pop("on_request", None)  # a SimServer argument, not a setting
        settings.update(overrides)
        sim = SimServer(SimConfig(**settings), on_request=on_request).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
    eventually(lambda: not new_threads(before), timeout=5000 * MS, what="every simulator thread ended")


@pytest.fixture
def sim(make_sim: MakeSim) -> SimServer:
    """A simulator with KRW-BTC last traded at 100,000,000 KRW."""
    server = make_sim()
    server.print_trade("KRW-BTC", "100000000", "1")
    return server


@pytest.fixture
def client(sim: SimServer) -> Iterator[SignedClient]:
    c = SignedClient(sim.rest_url, ACCESS, SECRET)
    yield c
    c.close()
