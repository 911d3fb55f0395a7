"""A child that failed because an outside dependency (the database) was down waits for it.

Its restart is held — not counted against the intensity — until the dependency's probe answers,
so an outage parks children instead of crash-looping every supervisor into giving up; a child
that keeps failing while the dependency is up is still counted and escalated.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from persistence.errors import DatabaseUnavailable
from otp.core import SupervisorState
from otp.events import EventKind
from otp.exits import ExitReason
from otp.spec import ChildSpec, Strategy, SupervisorFlags
from tests.helpers import eventually
from tests.otp.conftest import MakeSup
from tests.fakes.children import EventRecorder, FakeFactory

DB_DOWN = ExitReason.from_exception(DatabaseUnavailable("OperationalError [08006]: connection refused"))


class _Timer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Timers fire only when the test says so (the probe then runs on the test's thread)."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None], _Timer]] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> _Timer:
        timer = _Timer()
        self.due.append((delay, fn, timer))
        return timer

    def fire(self) -> int:
        due, self.due = self.due, []
        fired = 0
        for _delay, fn, timer in due:
            if not timer.cancelled:
                fn()
                fired += 1
        return fired


@pytest.fixture
def database() -> dict[str, bool]:
    return {"up": False}


@pytest.fixture
def scheduler() -> ManualScheduler:
    return ManualScheduler()


def _sup(make_sup: MakeSup, fakes: FakeFactory, scheduler: ManualScheduler, database: dict[str, bool],
         strategy: Strategy = Strategy.ONE_FOR_ONE, **kw: object):
    specs = [ChildSpec(id=i, start=fakes.start()) for i in ("a", "b")]
    sup = make_sup(specs, SupervisorFlags(strategy=strategy, intensity=1, period=30.0), scheduler=scheduler,
                   dependencies={"database": lambda: database["up"]}, **kw)
    sup.start()
    return sup


def test_restarts_wait_for_the_database_and_are_not_counted(make_sup: MakeSup, fakes: FakeFactory,
                                                            recorder: EventRecorder, scheduler: ManualScheduler,
                                                            database: dict[str, bool]) -> None:
    sup = _sup(make_sup, fakes, scheduler, database)
    for outage in range(3):  # intensity 1 would give up at the second counted restart
        fakes.current("a").exit(DB_DOWN)
        eventually(lambda: scheduler.due, what="the dependency check scheduled")
        assert fakes.live("a") == []  # parked, not restarted
        assert eventually(lambda: scheduler.fire()) == 1  # probe: still down → checked again later
        eventually(lambda: scheduler.due, what="checked again")
        assert fakes.live("a") == []
        database["up"] = True
        scheduler.fire()
        recorder.wait_for(EventKind.STARTED, "a", incarnation=outage + 2)
        database["up"] = False
    assert sup.state is SupervisorState.RUNNING
    held = [e for e in recorder.of(EventKind.RESTARTING, "a") if "restart held until the database" in str(e.reason)]
    assert len(held) == 3


def test_a_database_error_while_the_database_answers_is_counted(make_sup: MakeSup, fakes: FakeFactory,
                                                                recorder: EventRecorder, scheduler: ManualScheduler,
                                                                database: dict[str, bool]) -> None:
    database["up"] = True
    sup = _sup(make_sup, fakes, scheduler, database)
    fakes.current("a").exit(DB_DOWN)
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)
    fakes.current("a").exit(DB_DOWN)
    recorder.wait_for(EventKind.GAVE_UP)
    assert sup.state is SupervisorState.GAVE_UP


def test_rest_for_one_parks_the_later_children_too(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder,
                                                   scheduler: ManualScheduler, database: dict[str, bool]) -> None:
    _sup(make_sup, fakes, scheduler, database, strategy=Strategy.REST_FOR_ONE)
    first_b = fakes.current("b")
    fakes.current("a").exit(DB_DOWN)
    eventually(lambda: not first_b.alive, what="b stopped while a waits")
    eventually(lambda: scheduler.due, what="the dependency check scheduled")
    database["up"] = True
    scheduler.fire()
    recorder.wait_for(EventKind.STARTED, "b", incarnation=2)
    assert [c.alive for c in (fakes.current("a"), fakes.current("b"))] == [True, True]


def test_assume_dependency_holds_any_abnormal_exit_while_it_is_down(make_sup: MakeSup, fakes: FakeFactory,
                                                                    recorder: EventRecorder,
                                                                    scheduler: ManualScheduler,
                                                                    database: dict[str, bool]) -> None:
    sup = _sup(make_sup, fakes, scheduler, database, assume_dependency="database")
    for _ in range(3):
        fakes.current("a").exit(ExitReason.error("exit code 1"))  # a node process: no typed reason
        eventually(lambda: scheduler.due, what="held")
        assert fakes.live("a") == []
        database["up"] = True
        scheduler.fire()
        eventually(lambda: fakes.live("a"), what="restarted")
        database["up"] = False
    assert sup.state is SupervisorState.RUNNING
