"""Node targets for the process-supervision tests (module level: the spawn context imports them)."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from otp.actor import SupervisedActor
from otp.actor_child import actor_child, current_ref
from otp.child import ChildContext
from system.node import EXIT_START_FAILED, NodeChannel, NodeRuntime, exit_node
from otp.process_child import NodeBoot, exit_with_parent
from otp.signals import SignalRelay
from otp.spec import ChildSpec, SupervisorFlags


def steady_node(boot: NodeBoot) -> None:
    """Reports ready, then serves until SIGTERM (exit 0) or the root disappears."""
    stop = threading.Event()
    exit_with_parent(boot)
    with SignalRelay((signal.SIGTERM,), lambda _signum: stop.set()):
        boot.channel.send(("ready", os.getpid()))
        boot.channel.send(("hello", boot.incarnation))
        stop.wait()
    sys.exit(0)


def failing_node(boot: NodeBoot) -> None:
    """Reports ready, then fails at once, as a node whose supervisor gave up does."""
    boot.channel.send(("ready", os.getpid()))
    sys.exit(3)


def never_ready_node(boot: NodeBoot) -> None:
    """Exits before reporting ready."""
    sys.exit(4)


def stubborn_node(boot: NodeBoot) -> None:
    """Reports ready and ignores SIGTERM: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exit_with_parent(boot)
    boot.channel.send(("ready", os.getpid()))
    threading.Event().wait()  # until SIGKILL


# ---------------------------------------------------------------------- nodes with a real NodeRuntime


@dataclass(frozen=True)
class Work:
    """Command to a ``Sleeper``: do its one piece of work (told once its start has completed)."""


class Sleeper(SupervisedActor):
    """A test actor that proves it is the only live incarnation, then works as ``mode`` says.

    ``setup`` takes an exclusive ``flock`` on ``lock``: the kernel drops it only when the holder's
    process is gone, so a second incarnation alive at the same time cannot take it (it reports
    ``duplicate`` and fails). Modes: ``hang`` blocks forever in its first message (in the node's
    first incarnation only), ``slow`` works ``work_s`` seconds and reports ``done``, ``steady``
    just reports ``alive``.
    """

    def __init__(self, *, context: ChildContext, channel: NodeChannel, node_incarnation: int, mode: str,
                 lock: str, work_s: float = 0.0) -> None:
        super().__init__(context=context)
        self._channel = channel
        self._node_incarnation = node_incarnation
        self._mode = mode
        self._lock_path = lock
        self._work_s = work_s
        self._lock_fd: int | None = None

    def setup(self) -> None:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._channel.send("duplicate", self._node_incarnation, self.context.incarnation)
            raise
        self._lock_fd = fd
        self._channel.send("alive", self._node_incarnation, self.context.incarnation, os.getpid())

    def handle(self, message: Any) -> Any:
        if not isinstance(message, Work):
            return super().handle(message)
        if self._mode == "hang" and self._node_incarnation == 1:
            self._channel.send("blocking", self._node_incarnation)
            threading.Event().wait()  # blocked forever: only the end of the process ends it
        if self._mode == "slow":
            time.sleep(self._work_s)  # the actor's (simulated) work, not a test waiting
            self._channel.send("done", self._node_incarnation, self.context.incarnation)
        return None

    def cleanup(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None


def watched_node(boot: NodeBoot) -> None:
    """A node run by the production ``NodeRuntime`` (watchdog, heartbeats, hang escalation) over one
    ``Sleeper``; ``boot.payload`` is a dict: mode, lock, work_s, hang_timeout_s, heartbeat_s."""
    cfg: dict[str, Any] = boot.payload
    exit_with_parent(boot)
    stop = threading.Event()
    SignalRelay((signal.SIGTERM,), lambda _signum: stop.set()).__enter__()  # for the process's life
    channel = NodeChannel(boot)
    spec = ChildSpec(id="sleeper", shutdown=0.5, hang_timeout_s=cfg["hang_timeout_s"],
                     start=actor_child(Sleeper, channel=channel, node_incarnation=boot.incarnation, mode=cfg["mode"],
                                       lock=cfg["lock"], work_s=cfg.get("work_s", 0.0)))
    runtime = NodeRuntime(boot.node, channel, [spec], SupervisorFlags(intensity=3, period=30), stop=stop,
                          heartbeat_interval_s=cfg["heartbeat_s"])
    if not runtime.start():
        exit_node(EXIT_START_FAILED)
    ref = current_ref(runtime.sup, "sleeper")
    if ref is not None:  # not from setup: a message blocking before the start probe would block the start
        ref.tell(Work())
    exit_node(runtime.serve())
