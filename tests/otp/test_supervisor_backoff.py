"""Per-child restart backoff with jitter (S36, S37), on top of the restart intensity (S19).

The delays are scheduled through an injected scheduler (``FakeScheduler``: the test fires them),
their jitter drawn from a seeded ``random.Random``, and uptimes read from the ``FakeClock``: every
delay is asserted exactly, and no test waits for a backoff to pass.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from otp.actor import Crash
from otp.actor_child import actor_child
from otp.children import RESTARTING
from model.clock import FakeClock
from otp.core import SupervisorState
from otp.errors import ChildRestarting, SupervisorDataError
from otp.events import EventKind
from otp.exits import ExitKind, ExitReason
from otp.spec import NO_BACKOFF, Backoff, ChildSpec, Strategy, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp.conftest import ExitLog, MakeSup
from tests.fakes.children import EventRecorder, FakeFactory, Worker

ERROR = ExitReason.error("RuntimeError: boom")
SEED = 7


class Scheduled:
    """One call handed to the ``FakeScheduler``."""

    def __init__(self, delay: float, fn: Callable[[], None]) -> None:
        self.delay = delay
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        """What the timer would do at its deadline, unless cancelled."""
        assert not self.cancelled, "firing a cancelled restart"
        self.fn()


class FakeScheduler:
    """Records scheduled calls; the test decides when they run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Scheduled] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> Scheduled:
        call = Scheduled(delay, fn)
        with self._lock:
            self._calls.append(call)
        return call

    @property
    def calls(self) -> list[Scheduled]:
        with self._lock:
            return list(self._calls)

    @property
    def delays(self) -> list[float]:
        return [c.delay for c in self.calls]

    def last(self) -> Scheduled:
        return self.calls[-1]


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


def _expected(backoff: Backoff, counts: list[int], seed: int = SEED) -> list[float]:
    """The delays a supervisor with ``random.Random(seed)`` computes for these restart counts."""
    rng = random.Random(seed)  # noqa: S311 - replaying the supervisor's jitter
    return [backoff.delay(n, rng.random()) for n in counts]


def _make(make_sup: MakeSup, fakes: FakeFactory, scheduler: FakeScheduler, backoff: Backoff, *ids: str,
          flags: SupervisorFlags | None = None, **kwargs: Any) -> Any:
    specs = [ChildSpec(id=i, start=fakes.start()) for i in ids]
    return make_sup(specs, flags or SupervisorFlags(intensity=100, period=1000.0), backoff=backoff,
                    scheduler=scheduler, rng=random.Random(SEED), **kwargs)  # noqa: S311


# ---------------------------------------------------------------------- the delay function (S36)


def test_calculate_delay_table() -> None:
    b = Backoff(base_s=0.1, max_s=5.0, jitter=0.0)
    assert [b.delay(n, 0.0) for n in range(10)] == pytest.approx([0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert b.delay(10_000, 0.0) == 5.0  # no overflow
    # Akka-BSSpec's table (their restart count n is our n + 1: our first restart is immediate)
    assert Backoff(base_s=300, max_s=420, jitter=0).delay(1, 0.0) == 300
    assert Backoff(base_s=5, max_s=7, jitter=0).delay(3, 0.0) == 7
    assert Backoff(base_s=5, max_s=7 * 86400, jitter=0).delay(3, 0.0) == 20
    assert Backoff(base_s=300, max_s=600, jitter=0).delay(30, 0.0) == 600
    assert Backoff(base_s=0, max_s=0, jitter=0).delay(1, 0.0) == 0


def test_jitter_is_applied_after_the_cap() -> None:
    b = Backoff(base_s=0.1, max_s=1.0, jitter=0.5)
    assert b.delay(1, 0.5) == pytest.approx(0.125)
    assert b.delay(20, 0.999) == pytest.approx(1.4995)  # at most jitter·max above the cap
    assert b.delay(0, 0.999) == 0  # the first restart is always immediate
    assert NO_BACKOFF.delay(5, 0.9) == 0


@pytest.mark.parametrize("kwargs", [
    {"base_s": -0.1}, {"base_s": math.nan}, {"max_s": 0.05}, {"max_s": math.inf}, {"jitter": -0.1},
    {"jitter": 1.5}, {"reset_after_s": 0}, {"reset_after_s": math.inf}, {"base_s": True},
])
def test_invalid_backoff_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SupervisorDataError):
        Backoff(**kwargs)


def test_spec_defaults_and_validation_of_the_new_keys() -> None:
    def start(ctx: Any) -> Any:
        raise AssertionError

    spec = ChildSpec(id="w", start=start)
    assert (spec.backoff, spec.hang_timeout_s) == (None, 30.0)
    assert ChildSpec(id="w", start=start, hang_timeout_s=None).hang_timeout_s is None
    for bad in ({"hang_timeout_s": 0}, {"hang_timeout_s": math.inf}, {"backoff": 0.1}):
        with pytest.raises(SupervisorDataError):
            ChildSpec(id="w", start=start, **bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- in a supervisor (S37)


def test_repeated_restarts_wait_growing_jittered_delays_then_reset_after_a_stable_run(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, clock: FakeClock, scheduler: FakeScheduler
) -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0, jitter=0.5, reset_after_s=10.0)
    sup = _make(make_sup, fakes, scheduler, backoff, "a")
    sup.start()

    fakes.current("a").exit(ERROR)  # the first restart after a healthy run: immediate
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)
    assert scheduler.calls == []

    for incarnation in range(2, 8):  # quick failures: each restart waits longer, up to the cap
        clock.advance(1.0)  # up for 1 s only: not a stable run
        fakes.current("a").exit(ERROR)
        eventually(lambda n=incarnation: len(scheduler.calls) == n - 1, what="restart scheduled")
        assert [r.handle for r in sup.which_children()] == [RESTARTING]
        scheduler.last().fire()
        recorder.wait_for(EventKind.STARTED, "a", incarnation=incarnation + 1)

    assert scheduler.delays == _expected(backoff, [1, 2, 3, 4, 5, 6])
    assert scheduler.delays[-1] > backoff.max_s  # the jitter rides on the cap

    clock.advance(10.0)  # a stable run: the count starts over
    fakes.current("a").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "a", incarnation=9)
    assert len(scheduler.calls) == 6  # immediate again

    fakes.current("a").exit(ERROR)  # and a quick failure after that waits the base delay again
    eventually(lambda: len(scheduler.calls) == 7)
    assert scheduler.delays[-1] == _expected(backoff, [1, 2, 3, 4, 5, 6, 1])[-1]
    restarting = recorder.of(EventKind.RESTARTING, "a")
    assert "restart delayed" in restarting[-1].reason.detail  # type: ignore[union-attr]
    assert "restart delayed" not in restarting[-2].reason.detail  # type: ignore[union-attr]


def test_intensity_still_escalates_at_the_same_exit_without_waiting_for_a_delay(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, scheduler: FakeScheduler, exits: ExitLog
) -> None:
    sup = _make(make_sup, fakes, scheduler, Backoff(), "a", flags=SupervisorFlags(intensity=2, period=5.0))
    sup.start()

    fakes.current("a").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)
    fakes.current("a").exit(ERROR)
    eventually(lambda: len(scheduler.calls) == 1)
    scheduler.last().fire()
    recorder.wait_for(EventKind.STARTED, "a", incarnation=3)
    fakes.current("a").exit(ERROR)  # the third restart within the period

    recorder.wait_for(EventKind.GAVE_UP)
    assert len(scheduler.calls) == 1  # the give-up was not delayed
    assert sup.state is SupervisorState.GAVE_UP
    assert "reached_max_restart_intensity" in exits.reasons[-1].detail


def test_a_pending_delay_blocks_neither_other_children_nor_the_api_nor_a_stop(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, scheduler: FakeScheduler
) -> None:
    sup = _make(make_sup, fakes, scheduler, Backoff(), "a", "b")
    sup.start()
    fakes.current("a").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)
    fakes.current("a").exit(ERROR)
    eventually(lambda: len(scheduler.calls) == 1)

    fakes.current("b").exit(ERROR)  # handled while a waits
    recorder.wait_for(EventKind.STARTED, "b", incarnation=2)
    assert [(r.id, r.handle == RESTARTING) for r in sup.which_children()] == [("a", True), ("b", False)]
    assert sup.count_children() == (2, 1, 0, 2)
    with pytest.raises(ChildRestarting):
        sup.restart_child("a")

    sup.stop()

    assert sup.state is SupervisorState.STOPPED
    assert scheduler.last().cancelled
    assert fakes.start_attempts == {"a": 2, "b": 2}
    assert all(not c.alive for c in fakes.incarnations("a") + fakes.incarnations("b"))


def test_terminate_child_calls_off_a_delayed_restart_even_if_its_timer_already_fired(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, scheduler: FakeScheduler
) -> None:
    sup = _make(make_sup, fakes, scheduler, Backoff(), "a")
    sup.start()
    fakes.current("a").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "a", incarnation=2)
    fakes.current("a").exit(ERROR)
    eventually(lambda: len(scheduler.calls) == 1)

    sup.terminate_child("a")
    assert scheduler.last().cancelled
    scheduler.last().fn()  # the race: the timer ran just before it was cancelled

    assert [(r.id, r.handle) for r in sup.which_children()] == [("a", None)]
    assert fakes.start_attempts["a"] == 2
    sup.restart_child("a")  # an operator can still start it
    assert fakes.start_attempts["a"] == 3


def test_rest_for_one_stops_the_group_at_once_and_starts_it_after_the_delay(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, scheduler: FakeScheduler
) -> None:
    flags = SupervisorFlags(strategy=Strategy.REST_FOR_ONE, intensity=100, period=1000.0)
    sup = _make(make_sup, fakes, scheduler, Backoff(), "c1", "c2", "c3", flags=flags)
    sup.start()
    fakes.current("c2").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "c3", incarnation=2)
    before = len(fakes.journal.entries())

    fakes.current("c2").exit(ERROR)
    eventually(lambda: len(scheduler.calls) == 1)
    sup.which_children()  # barrier
    assert fakes.journal.entries()[before:] == [("exit", "c2", 2), ("exit", "c3", 2)]  # c3 is not left running

    scheduler.last().fire()
    recorder.wait_for(EventKind.STARTED, "c3", incarnation=3)
    assert fakes.journal.entries()[before + 2:] == [("start", "c2", 3), ("start", "c3", 3)]
    assert [c.ctx.incarnation for c in fakes.live("c1")] == [1]


def test_retries_of_a_failing_start_back_off_until_the_intensity_gives_up(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, scheduler: FakeScheduler
) -> None:
    backoff = Backoff(base_s=0.1, max_s=5.0, jitter=0.2)
    sup = _make(make_sup, fakes, scheduler, backoff, "a", flags=SupervisorFlags(intensity=3, period=60.0))
    sup.start()
    fakes.failing.add("a")

    fakes.current("a").exit(ERROR)  # attempt 1 at once; it fails to start
    for n in (1, 2):
        eventually(lambda n=n: len(scheduler.calls) == n, what=f"retry {n} scheduled")
        scheduler.last().fire()  # the attempt fails again
    recorder.wait_for(EventKind.GAVE_UP)

    assert scheduler.delays == _expected(backoff, [1, 2])  # a start failure never resets the count
    assert fakes.start_attempts["a"] == 4  # the initial start, then 3 attempts
    assert sup.state is SupervisorState.GAVE_UP


def test_a_spec_backoff_overrides_the_supervisor_default(
    make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder, scheduler: FakeScheduler
) -> None:
    specs = [ChildSpec(id="otp", start=fakes.start(), backoff=NO_BACKOFF), ChildSpec(id="slow", start=fakes.start())]
    sup = make_sup(specs, SupervisorFlags(intensity=100, period=1000.0), backoff=Backoff(), scheduler=scheduler,
                   rng=random.Random(SEED))  # noqa: S311
    sup.start()

    for incarnation in (2, 3, 4):
        fakes.current("otp").exit(ERROR)
        recorder.wait_for(EventKind.STARTED, "otp", incarnation=incarnation)
    fakes.current("slow").exit(ERROR)
    recorder.wait_for(EventKind.STARTED, "slow", incarnation=2)
    fakes.current("slow").exit(ERROR)
    eventually(lambda: len(scheduler.calls) == 1)

    assert scheduler.delays[0] > 0


def test_a_real_delayed_restart_of_an_actor(make_sup: MakeSup, recorder: EventRecorder) -> None:
    """The default scheduler: a timer thread posts the restart back; the conftest checks no thread leaks."""
    backoff = Backoff(base_s=50 * MS, max_s=50 * MS, jitter=0.0)
    sup = make_sup([ChildSpec(id="w", start=actor_child(Worker))], SupervisorFlags(intensity=10), backoff=backoff)
    sup.start()

    sup.lookup("w").ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.STARTED, "w", incarnation=2)
    crashed_at = time.monotonic()
    sup.lookup("w").ref.tell(Crash())  # type: ignore[union-attr]
    recorder.wait_for(EventKind.STARTED, "w", incarnation=3)

    assert time.monotonic() - crashed_at >= 50 * MS
    assert [e.reason.kind for e in recorder.of(EventKind.EXITED, "w")] == [ExitKind.ERROR] * 2  # type: ignore[union-attr]
    assert f"restart delayed {50 * MS:.2f} s" in str(recorder.of(EventKind.RESTARTING, "w")[-1].reason)
