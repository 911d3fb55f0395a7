"""Child specs and supervisor flags: frozen, validated on construction (S1, S2, S4)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal, TypeAlias

from supervisor.errors import SupervisorDataError

if TYPE_CHECKING:
    from supervisor.child import StartFn


class Restart(str, Enum):
    """When a child that exited by itself is restarted."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an abnormal exit
    TEMPORARY = "temporary"  # never; the spec is dropped when the child exits


class Strategy(str, Enum):
    """Which children are restarted together (simple_one_for_one is not supported)."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class ChildType(str, Enum):
    """What kind of child a spec describes."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


class ShutdownMode(Enum):
    """Non-numeric shutdown specs."""

    BRUTAL_KILL = "brutal_kill"  # kill at once, no polite stop
    INFINITY = "infinity"  # polite stop, then wait with no limit


BRUTAL_KILL: Literal[ShutdownMode.BRUTAL_KILL] = ShutdownMode.BRUTAL_KILL
INFINITY: Literal[ShutdownMode.INFINITY] = ShutdownMode.INFINITY

Shutdown: TypeAlias = float | Literal[ShutdownMode.BRUTAL_KILL, ShutdownMode.INFINITY]

DEFAULT_WORKER_SHUTDOWN = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """How to start one child and how to treat its exits.

    ``shutdown=None`` means the default: 5.0 s for a worker, ``INFINITY`` for a supervisor; the
    stored spec always holds the resolved value.
    """

    id: str
    start: StartFn
    restart: Restart = Restart.PERMANENT
    shutdown: Shutdown | None = None
    type: ChildType = ChildType.WORKER

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise SupervisorDataError(f"child id must be a non-empty string, got {self.id!r}")
        if not callable(self.start):
            raise SupervisorDataError(f"child {self.id!r}: start must be callable, got {self.start!r}")
        if not isinstance(self.restart, Restart):
            raise SupervisorDataError(f"child {self.id!r}: invalid restart type {self.restart!r}")
        if not isinstance(self.type, ChildType):
            raise SupervisorDataError(f"child {self.id!r}: invalid child type {self.type!r}")
        if self.shutdown is None:
            default = INFINITY if self.type is ChildType.SUPERVISOR else DEFAULT_WORKER_SHUTDOWN
            object.__setattr__(self, "shutdown", default)
        elif not isinstance(self.shutdown, ShutdownMode):
            if isinstance(self.shutdown, bool) or not isinstance(self.shutdown, int | float):
                raise SupervisorDataError(f"child {self.id!r}: invalid shutdown {self.shutdown!r}")
            if not math.isfinite(self.shutdown) or self.shutdown < 0:
                raise SupervisorDataError(
                    f"child {self.id!r}: shutdown must be a finite number of seconds >= 0, "
                    f"BRUTAL_KILL or INFINITY, got {self.shutdown!r}"
                )
            object.__setattr__(self, "shutdown", float(self.shutdown))


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorFlags:
    """Strategy and restart intensity: at most ``intensity`` restarts per ``period`` seconds."""

    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 1
    period: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise SupervisorDataError(
                f"invalid strategy {self.strategy!r} (supported: "
                f"{', '.join(s.value for s in Strategy)}; simple_one_for_one is not supported)"
            )
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int) or self.intensity < 0:
            raise SupervisorDataError(f"intensity must be an integer >= 0, got {self.intensity!r}")
        if (
            isinstance(self.period, bool)
            or not isinstance(self.period, int | float)
            or not math.isfinite(self.period)
            or self.period <= 0
        ):
            raise SupervisorDataError(f"period must be a finite number of seconds > 0, got {self.period!r}")


def validate_specs(specs: Iterable[ChildSpec]) -> tuple[ChildSpec, ...]:
    """Check a supervisor's static child list: every item a ChildSpec, ids unique."""
    checked = tuple(specs)
    seen: set[str] = set()
    for spec in checked:
        if not isinstance(spec, ChildSpec):
            raise SupervisorDataError(f"not a ChildSpec: {spec!r}")
        if spec.id in seen:
            raise SupervisorDataError(f"duplicate child id {spec.id!r}")
        seen.add(spec.id)
    return checked
