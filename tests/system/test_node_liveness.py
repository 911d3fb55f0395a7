"""Hung actors and hung nodes (S13, S41): the node escalates, the root kills and restarts.

Each test runs a real node process (``nodes_for_tests.watched_node``: the production
``NodeRuntime`` over one test actor) under a root ``Supervisor`` of ``process_child`` children.
The actor holds an exclusive ``flock`` while alive, so "at most one live incarnation" is checked
by the kernel: a second incarnation alive at the same time could not take the lock.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otp.core import Supervisor, SupervisorState
from otp.events import EventKind, SupervisorEvent
from otp.exits import ExitKind
from otp.process_child import EXIT_HUNG, ProcessHandle, exit_reason, process_child
from otp.spec import ChildSpec, SupervisorFlags
from tests.helpers import MS, eventually
from tests.otp import nodes_for_tests as nodes
from tests.otp.test_process_child import _alive


class Root:
    """A root supervisor over one watched node, and what it heard."""

    def __init__(self, cfg: dict[str, Any], *, heartbeat_timeout: float) -> None:
        self.events: list[SupervisorEvent] = []
        self.messages: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        spec = ChildSpec(id="node", shutdown=5.0, start=process_child(
            target=nodes.watched_node, payload=cfg, start_timeout=30, on_message=self._heard,
            heartbeat_timeout=heartbeat_timeout))
        self.sup = Supervisor("root", SupervisorFlags(intensity=3, period=60), [spec], on_event=self.events.append)

    def _heard(self, node: str, incarnation: int, message: tuple[Any, ...]) -> None:
        with self._lock:
            self.messages.append(message)

    def heard(self, *prefix: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return [m for m in self.messages if m[: len(prefix)] == prefix]

    def pid(self) -> int:
        handle = self.sup.lookup("node")
        assert isinstance(handle, ProcessHandle) and handle.pid is not None
        return handle.pid

    def of(self, kind: EventKind) -> list[SupervisorEvent]:
        return [e for e in self.events if e.kind is kind and e.child_id == "node"]


@pytest.fixture
def roots() -> Iterator[list[Root]]:
    made: list[Root] = []
    yield made
    for root in made:
        root.sup.stop()


def _root(roots: list[Root], tmp_path: Path, *, heartbeat_timeout: float, **cfg: Any) -> Root:
    payload = {"lock": str(tmp_path / "sleeper.lock"), "heartbeat_s": 100 * MS, **cfg}
    root = Root(payload, heartbeat_timeout=heartbeat_timeout)
    roots.append(root)
    return root


def test_an_actor_blocked_forever_makes_its_node_exit_hung_and_the_root_brings_it_back(
    roots: list[Root], tmp_path: Path
) -> None:
    root = _root(roots, tmp_path, heartbeat_timeout=10.0, mode="hang", hang_timeout_s=500 * MS)
    root.sup.start()
    first = root.pid()
    eventually(lambda: root.heard("blocking", 1), timeout=10, what="the actor blocked in its handler")

    eventually(lambda: root.heard("alive", 2), timeout=20, what="the actor back in the node's second incarnation")
    eventually(lambda: len(root.of(EventKind.STARTED)) == 2, what="its start recorded")  # after its first messages

    exited = root.of(EventKind.EXITED)
    assert [e.incarnation for e in exited] == [1]
    reason = exited[0].reason
    assert reason is not None and reason.kind is ExitKind.HUNG and reason.abnormal
    assert reason.detail.startswith("node/sleeper busy ") and reason.detail.endswith(" s in Work")
    assert [m[0] for m in root.heard("hung")] == ["hung"]
    assert not _alive(first)
    assert root.heard("duplicate") == []  # the kernel lock: never two live incarnations
    assert [m[1:3] for m in root.heard("alive")] == [(1, 1), (2, 1)]
    assert root.sup.state is SupervisorState.RUNNING


def test_a_sigstopped_node_is_killed_for_its_silence_and_restarted_within_the_bound(
    roots: list[Root], tmp_path: Path
) -> None:
    limit = 1000 * MS
    root = _root(roots, tmp_path, heartbeat_timeout=limit, mode="steady", hang_timeout_s=30.0)
    root.sup.start()
    first = root.pid()
    eventually(lambda: root.heard("alive", 1), timeout=10, what="the first incarnation")

    stopped_at = time.monotonic()
    os.kill(first, signal.SIGSTOP)
    eventually(lambda: root.of(EventKind.EXITED), timeout=limit + 5, what="the silent node noticed")
    detected = time.monotonic() - stopped_at
    eventually(lambda: root.heard("alive", 2), timeout=20, what="the restarted node")
    eventually(lambda: len(root.of(EventKind.STARTED)) == 2, what="its start recorded")  # after its first messages

    assert limit * 0.9 <= detected < limit + 3.0  # the missed heartbeat, not some other timeout
    reason = root.of(EventKind.EXITED)[0].reason
    assert reason is not None and reason.kind is ExitKind.HUNG
    assert "no heartbeat from node node" in reason.detail and "SIGKILL" in reason.detail
    assert not _alive(first)
    assert root.heard("duplicate") == []
    assert [e.incarnation for e in root.of(EventKind.STARTED)] == [1, 2]


def test_long_but_finite_work_is_neither_a_hung_actor_nor_a_silent_node(roots: list[Root], tmp_path: Path) -> None:
    # The work outlasts the root's heartbeat limit: the node's heartbeat thread keeps beating.
    root = _root(roots, tmp_path, heartbeat_timeout=1000 * MS, mode="slow", work_s=1500 * MS,
                 hang_timeout_s=4000 * MS)
    root.sup.start()

    eventually(lambda: root.heard("done", 1), timeout=20, what="the work finished")
    root.sup.which_children()  # barrier: anything the node did before is handled

    assert root.of(EventKind.EXITED) == []
    assert root.heard("hung") == []
    assert [r.incarnation for r in root.sup.which_children()] == [1]


@pytest.mark.parametrize(("code", "hung", "kind", "detail"), [
    (EXIT_HUNG, "node/a busy 31.2 s in X", ExitKind.HUNG, "node/a busy 31.2 s in X"),
    (EXIT_HUNG, None, ExitKind.HUNG, "an actor stopped processing its mailbox"),
    (-signal.SIGKILL, "no heartbeat for 10.0 s", ExitKind.HUNG, "no heartbeat for 10.0 s; killed with SIGKILL"),
    (-signal.SIGKILL, None, ExitKind.KILLED, "SIGKILL"),
    (0, "no heartbeat for 10.0 s", ExitKind.SHUTDOWN, ""),  # it got out cleanly after all
])
def test_hung_exit_reasons(code: int, hung: str | None, kind: ExitKind, detail: str) -> None:
    reason = exit_reason(code, stop_requested=True, hung=hung)
    assert (reason.kind, reason.detail) == (kind, detail)
