"""Checklist items of ``docs/supervision.md`` §3 that had no test yet (OTP supervisor_SUITE parity)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from otp.core import SupervisorState
from otp.errors import StartFailed
from otp.events import EventKind
from otp.exits import ExitReason
from otp.spec import ChildSpec, Strategy, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp.conftest import MakeSup
from tests.fakes.children import EventRecorder, FakeFactory

REASONS = {"error": ExitReason.error("RuntimeError: boom")}


def test_hanging_restart_loop_rest_for_one(make_sup: MakeSup, fakes: FakeFactory, recorder: EventRecorder) -> None:
    # OTP hanging_restart_loop_rest_for_one: terminate_child ends the loop; the later child stays down.
    gate = threading.Semaphore(1)
    specs = [ChildSpec(id="a", start=fakes.start()), ChildSpec(id="b", start=fakes.start(gate=gate)),
             ChildSpec(id="c", start=fakes.start())]
    sup = make_sup(specs, SupervisorFlags(strategy=Strategy.REST_FOR_ONE, intensity=100))
    sup.start()
    fakes.failing.add("b")

    with ThreadPoolExecutor(max_workers=1) as pool:
        fakes.current("b").exit(REASONS["error"])  # c is stopped; attempt 1 of b waits for the gate
        gate.release()  # attempt 1 fails; attempt 2 waits for the gate
        recorder.wait_for(EventKind.START_FAILED, "b")
        eventually(lambda: sup.queue_depth() == 0)
        terminate = pool.submit(sup.terminate_child, "b")
        eventually(lambda: sup.queue_depth() == 1)
        gate.release()  # attempt 2 fails; the queued terminate_child ends the loop
        terminate.result(5000 * MS)

    assert [(r.id, r.incarnation, r.handle is not None) for r in sup.which_children()] == [
        ("a", 1, True), ("b", 1, False), ("c", 1, False)]
    assert fakes.start_attempts == {"a": 1, "b": 3, "c": 1}
    assert [e[1:] for e in fakes.journal.entries("exit")] == [("b", 1), ("c", 1)]
    assert sup.state is SupervisorState.RUNNING


def test_count_children_many(make_sup: MakeSup, fakes: FakeFactory) -> None:
    # OTP count_children: exact counts with 1000, then 2000 children, and after terminating half.
    sup = make_sup([])
    sup.start()
    for i in range(1000):
        sup.start_child(ChildSpec(id=f"w{i}", start=fakes.start()))
    assert sup.count_children() == (1000, 1000, 0, 1000)
    for i in range(1000, 2000):
        sup.start_child(ChildSpec(id=f"w{i}", start=fakes.start()))
    assert sup.count_children() == (2000, 2000, 0, 2000)
    for i in range(0, 2000, 2):
        sup.terminate_child(f"w{i}")
    assert sup.count_children() == (2000, 1000, 0, 2000)


def test_ignore_is_not_supported_a_start_returning_no_handle_is_a_start_failure(make_sup: MakeSup) -> None:
    # OTP sup_start_ignore_*: our contract has no `ignore`; returning anything but a handle fails the start.
    def ignore(ctx: Any) -> Any:
        return None

    sup = make_sup([ChildSpec(id="i", start=ignore)])
    with pytest.raises(StartFailed) as info:
        sup.start()
    assert isinstance(info.value.cause, TypeError) and "ignore is not supported" in str(info.value.cause)

    running = make_sup([], name="other")
    running.start()
    with pytest.raises(StartFailed):
        running.start_child(ChildSpec(id="i", start=ignore))
    assert running.which_children() == []
