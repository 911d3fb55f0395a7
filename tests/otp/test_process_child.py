"""Node processes under a Supervisor: SIGKILL noticed and restarted, give-up, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from otp.core import Supervisor, SupervisorState
from otp.errors import StartFailed
from otp.events import EventKind, SupervisorEvent
from otp.exits import ExitKind
from otp.process_child import ProcessHandle, exit_reason, process_child
from otp.spec import ChildSpec, SupervisorFlags
from tests.helpers import eventually
from tests.otp import nodes_for_tests as nodes

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
    return True


@pytest.fixture
def events() -> list[SupervisorEvent]:
    return []


@pytest.fixture
def messages() -> list[tuple]:
    return []


@pytest.fixture
def make_sup(events: list[SupervisorEvent], messages: list[tuple]) -> Iterator:
    made: list[Supervisor] = []

    def make(target, *, intensity: int = 3, shutdown: float = 5.0, start_timeout: float = 30.0) -> Supervisor:
        spec = ChildSpec(id="node", shutdown=shutdown, start=process_child(
            target=target, payload=None, start_timeout=start_timeout,
            on_message=lambda node, inc, msg: messages.append((node, inc, msg))))
        sup = Supervisor("root", SupervisorFlags(intensity=intensity, period=30), [spec], on_event=events.append)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop()


def _pid(sup: Supervisor) -> int:
    handle = sup.lookup("node")
    assert isinstance(handle, ProcessHandle) and handle.pid is not None
    return handle.pid


def test_sigkilled_node_is_noticed_and_restarted_with_a_new_incarnation(make_sup, events, messages) -> None:
    sup = make_sup(nodes.steady_node)
    sup.start()
    first = _pid(sup)
    eventually(lambda: ("node", 1, ("hello", 1)) in messages, timeout=10, what="node message relayed")
    os.kill(first, signal.SIGKILL)
    eventually(lambda: sup.lookup("node") is not None and _pid(sup) != first, timeout=30, what="restarted")
    exited = [e for e in events if e.kind is EventKind.EXITED]
    assert exited[0].incarnation == 1 and exited[0].reason is not None
    assert exited[0].reason.kind is ExitKind.KILLED
    assert not _alive(first)
    eventually(lambda: ("node", 2, ("hello", 2)) in messages, timeout=10, what="second incarnation reporting")
    assert sup.state is SupervisorState.RUNNING


def test_a_node_that_keeps_failing_makes_the_root_give_up_instead_of_looping(make_sup, events) -> None:
    sup = make_sup(nodes.failing_node, intensity=2)
    sup.start()
    assert sup.wait_stopped(60)
    assert sup.state is SupervisorState.GAVE_UP
    starts = [e for e in events if e.kind is EventKind.STARTED and e.child_id == "node"]
    assert len(starts) == 3  # the first start and two restarts; the third restart gives up
    assert all(e.reason is not None and e.reason.detail == "exit code 3"
               for e in events if e.kind is EventKind.EXITED and e.child_id == "node")


def test_a_node_that_dies_before_ready_fails_the_start(make_sup) -> None:
    sup = make_sup(nodes.never_ready_node)
    with pytest.raises(StartFailed, match="exited with code 4 before it was ready"):
        sup.start()


def test_a_node_ignoring_sigterm_is_killed_after_its_shutdown_timeout(make_sup, events) -> None:
    sup = make_sup(nodes.stubborn_node, shutdown=0.5)
    sup.start()
    pid = _pid(sup)
    sup.stop()
    assert not _alive(pid)
    exited = [e for e in events if e.kind is EventKind.EXITED and e.child_id == "node"]
    assert exited[-1].reason is not None and exited[-1].reason.kind is ExitKind.KILLED


def test_nodes_exit_when_the_root_is_sigkilled(tmp_path: Path) -> None:
    """No orphan keeps trading: the parent-alive pipe reaches EOF when the root dies."""
    script = textwrap.dedent("""
        import sys, threading
        from otp.core import Supervisor
        from otp.process_child import ProcessHandle, process_child
        from otp.spec import ChildSpec
        from tests.otp import nodes_for_tests as nodes
        if __name__ == "__main__":
            sup = Supervisor("root", specs=[ChildSpec(id="node", start=process_child(
                target=nodes.steady_node, payload=None, start_timeout=30))])
            sup.start()
            print(sup.lookup("node").pid, flush=True)
            threading.Event().wait()
    """)
    path = tmp_path / "root.py"
    path.write_text(script)
    root = subprocess.Popen([sys.executable, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert root.stdout is not None
        node_pid = int(root.stdout.readline())
        assert _alive(node_pid)
        root.kill()
        root.wait(10)
        eventually(lambda: not _alive(node_pid), timeout=10, what="orphaned node exited")
    finally:
        if root.poll() is None:
            root.kill()


@pytest.mark.parametrize(("code", "stop", "kind"), [
    (0, False, ExitKind.NORMAL), (0, True, ExitKind.SHUTDOWN), (-9, False, ExitKind.KILLED),
    (-15, False, ExitKind.ERROR), (3, True, ExitKind.ERROR), (1, False, ExitKind.ERROR)])
def test_exit_codes_map_to_otp_reasons(code: int, stop: bool, kind: ExitKind) -> None:
    assert exit_reason(code, stop_requested=stop).kind is kind
