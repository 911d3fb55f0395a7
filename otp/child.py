"""What a supervisor knows about a child: the ``ChildHandle`` protocol and the ``ChildContext``.

The protocol is deliberately generic so the same supervisor drives pykka actors
(``otp.actor_child``), nested supervisors (``otp.nested``) and OS processes
(``otp.process_child``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from otp.exits import ExitReason

ExitSink = Callable[[ExitReason], None]


@runtime_checkable
class ChildHandle(Protocol):
    """A running child, as seen by its supervisor."""

    def stop(self) -> None:
        """Ask the child to stop (polite, non-blocking; SIGTERM for a process)."""
        ...

    def kill(self) -> bool:
        """Force the child to die; False when death cannot be forced (a Python thread)."""
        ...

    def wait(self, timeout: float | None) -> bool:
        """Block up to ``timeout`` s (None: forever); True once the child has really exited."""
        ...

    def describe(self) -> dict[str, Any]:
        """Status details for humans (pid, actor urn, …)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildContext:
    """What a child's start function receives: who it is, and how to report its exit.

    ``incarnation`` is 1 for the first start of ``child_id`` in this supervisor and grows by one
    on every (re)start attempt. The child, or its handle's death monitor, calls
    ``notify_exit`` exactly once when the incarnation ends, for any reason. Notices for an
    incarnation that is no longer current are ignored by the supervisor (S12).
    """

    supervisor_name: str
    child_id: str
    incarnation: int
    exit_sink: ExitSink = field(repr=False, compare=False)

    def notify_exit(self, reason: ExitReason) -> None:
        """Report that this incarnation has exited with ``reason``."""
        self.exit_sink(reason)

    def with_exit_sink(self, sink: ExitSink) -> ChildContext:
        """A copy whose exit notices go to ``sink`` (e.g. a once-only latch in front)."""
        return replace(self, exit_sink=sink)


StartFn = Callable[[ChildContext], ChildHandle]
"""A child's start function: returns once the child is ready, raises if it could not start."""
