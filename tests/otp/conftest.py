"""Fixtures for supervisor tests: a fake clock, an event recorder, a supervisor factory, cleanup."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pykka
import pytest

from model.clock import FakeClock
from otp.core import Supervisor
from otp.exits import ExitReason
from otp.spec import ChildSpec, SupervisorFlags
from tests.helpers import MS, eventually, new_threads
from tests.fakes.children import EventRecorder, FakeFactory, Journal

MakeSup = Callable[..., Supervisor]


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """Stop every actor a test left behind, then require that no thread it started survives."""
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=2000 * MS)
    eventually(lambda: not new_threads(before), 3000 * MS, what=f"threads left behind: {new_threads(before)}")


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock: restart-intensity windows only move when the test advances it."""
    return FakeClock()


@pytest.fixture
def recorder() -> EventRecorder:
    """Records every supervisor event of the test."""
    return EventRecorder()


@pytest.fixture
def journal() -> Journal:
    """What the test's children did, in order."""
    return Journal()


@pytest.fixture
def fakes(journal: Journal) -> FakeFactory:
    """Factory of fake children sharing the test's journal."""
    return FakeFactory(journal=journal)


class ExitLog:
    """An ``on_exit`` callback that records the supervisor's exit reasons."""

    def __init__(self) -> None:
        self.reasons: list[ExitReason] = []

    def __call__(self, reason: ExitReason) -> None:
        self.reasons.append(reason)


@pytest.fixture
def exits() -> ExitLog:
    """Records ``on_exit`` calls of supervisors built with ``make_sup``."""
    return ExitLog()


@pytest.fixture
def make_sup(clock: FakeClock, recorder: EventRecorder, exits: ExitLog) -> Iterator[MakeSup]:
    """Build (not start) supervisors wired to the test's clock, recorder and exit log; stop them at teardown."""
    made: list[Supervisor] = []

    def make(
        specs: Sequence[ChildSpec],
        flags: SupervisorFlags | None = None,
        *,
        name: str = "sup",
        **kwargs: Any,
    ) -> Supervisor:
        options: dict[str, Any] = {
            "clock": clock,
            "on_event": recorder,
            "on_exit": exits,
            "call_timeout": 5000 * MS,
            "kill_wait": 200 * MS,
            "exit_grace": 1000 * MS,
        }
        options.update(kwargs)
        sup = Supervisor(name, flags or SupervisorFlags(), specs, **options)
        made.append(sup)
        return sup

    yield make
    for sup in reversed(made):
        sup.stop(timeout=10_000 * MS)
