"""A supervisor as the child of another supervisor (supervision trees, S21, S22)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otp.child import ChildContext, StartFn
from otp.clock import Clock
from otp.core import Supervisor
from otp.events import EventSink
from otp.spec import ChildSpec, SupervisorFlags


class SupervisorHandle:
    """The ``ChildHandle`` of a child supervisor.

    The child's give-up (or any other termination) reaches the parent through ``notify_exit``
    with reason ``shutdown``; the parent then applies the child's restart type (a *transient*
    child supervisor is therefore not restarted after giving up: S21). ``wait`` is True only
    once the child supervisor has terminated *and* left nothing alive behind.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        """Wrap a started child supervisor."""
        self.supervisor = supervisor

    def stop(self) -> None:
        """Ask the child supervisor to stop its children and exit (non-blocking)."""
        self.supervisor.request_stop()

    def kill(self) -> bool:
        """A supervisor thread cannot be killed; True only if it is already cleanly gone."""
        self.supervisor.request_stop()
        return self.wait(0)

    def wait(self, timeout: float | None) -> bool:
        """True once the child supervisor terminated with no abandoned descendants."""
        return self.supervisor.wait_stopped(timeout) and not self.supervisor.abandoned_children()

    def describe(self) -> dict[str, Any]:
        """Name, state and child ids of the child supervisor."""
        return {
            "supervisor": self.supervisor.name,
            "state": self.supervisor.state.value,
            "abandoned": list(self.supervisor.abandoned_children()),
        }


def supervisor_child(  # noqa: PLR0913 - mirrors the Supervisor constructor
    name: str,
    flags: SupervisorFlags,
    specs: Sequence[ChildSpec],
    *,
    clock: Clock | None = None,
    on_event: EventSink | None = None,
    call_timeout: float | None = 30.0,
    kill_wait: float = 5.0,
    exit_grace: float = 5.0,
) -> StartFn:
    """A ``ChildSpec.start`` that builds and starts a fresh child ``Supervisor`` each time.

    Every (re)start uses ``specs`` only, so children added later with ``start_child`` are gone
    after a restart (S22). Use ``ChildType.SUPERVISOR`` in the spec (shutdown then defaults to
    ``INFINITY``). Start failure of the child supervisor is a start failure for the parent.
    """
    frozen_specs = tuple(specs)

    def start(ctx: ChildContext) -> SupervisorHandle:
        child = Supervisor(
            name,
            flags,
            frozen_specs,
            clock=clock,
            on_event=on_event,
            on_exit=ctx.notify_exit,
            call_timeout=call_timeout,
            kill_wait=kill_wait,
            exit_grace=exit_grace,
        )
        child.start()
        return SupervisorHandle(child)

    return start
