"""Node targets for the process-supervision tests (module level: the spawn context imports them)."""

from __future__ import annotations

import os
import signal
import sys
import threading

from supervisor.process_child import NodeBoot, exit_with_parent


def steady_node(boot: NodeBoot) -> None:
    """Reports ready, then serves until SIGTERM (exit 0) or the root disappears."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    exit_with_parent(boot)
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
