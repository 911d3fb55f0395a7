"""Stopping one child according to its shutdown spec (S25–S27), and confirming a death.

Both functions return None when the child could not be proven dead: the caller must then treat
it as *abandoned* and never start another incarnation of it (S13).
"""

from __future__ import annotations

import logging

from otp.child import ChildHandle
from otp.exits import ExitReason
from otp.spec import BRUTAL_KILL, INFINITY, Shutdown

log = logging.getLogger(__name__)


def stop_child(handle: ChildHandle, shutdown: Shutdown, *, kill_wait: float) -> ExitReason | None:
    """Stop ``handle``: polite stop, wait up to ``shutdown`` s, then kill.

    ``BRUTAL_KILL`` kills at once; ``INFINITY`` waits for the polite stop with no limit.
    Returns ``shutdown`` or ``killed``, or None when death could not be forced or proven.
    """
    if shutdown is BRUTAL_KILL:
        return _force(handle, kill_wait=kill_wait, why="brutal_kill")
    handle.stop()
    if shutdown is INFINITY:
        handle.wait(None)
        return ExitReason.shutdown()
    if handle.wait(float(shutdown)):
        return ExitReason.shutdown()
    return _force(handle, kill_wait=kill_wait, why=f"no exit within {shutdown} s")


def confirm_exit(handle: ChildHandle, *, grace: float, kill_wait: float) -> bool:
    """After a child reported its own exit, make sure it is really gone (killing if needed)."""
    if handle.wait(grace):
        return True
    log.warning("child %s reported its exit but is still alive after %s s", handle.describe(), grace)
    return _force(handle, kill_wait=kill_wait, why="reported exit but still alive") is not None


def _force(handle: ChildHandle, *, kill_wait: float, why: str) -> ExitReason | None:
    if handle.kill() and handle.wait(kill_wait):
        return ExitReason.killed(why)
    if handle.wait(0):  # it got out by itself while we were trying
        return ExitReason.shutdown(f"exited late ({why})")
    return None
