"""Child specs and supervisor flags: frozen, validated on construction (S1, S2, S4)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal, TypeAlias

from otp.errors import SupervisorDataError

if TYPE_CHECKING:
    from otp.child import StartFn


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
DEFAULT_HANG_TIMEOUT_S = 30.0
_MAX_DOUBLINGS = 30  # past this the delay is the cap (and 2**n never overflows)


def _seconds(value: object, *, allow_zero: bool) -> bool:
    """True for a finite number of seconds (> 0, or >= 0 with ``allow_zero``); bools are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value >= 0 if allow_zero else value > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Per-child restart delays, on top of the restart intensity (Akka's BackoffSupervisor, S36, S37).

    The n-th consecutive restart of one child (n = 0, 1, 2, …) is delayed by ``delay(n, u)``:
    0 for n = 0 (the first restart after a healthy run is immediate), otherwise
    ``min(max_s, base_s · 2^(n-1)) · (1 + jitter · u)`` with u uniform in [0, 1), so the jitter
    may add up to ``jitter · max_s`` above the cap. The count goes back to 0 once the child has
    been up for ``reset_after_s`` (measured from the end of its start to its next exit); a child
    whose start fails was never up, so retries of a failing start keep growing the delay.
    """

    base_s: float = 0.1
    max_s: float = 5.0
    jitter: float = 0.2
    reset_after_s: float = 0.5

    def __post_init__(self) -> None:
        if not _seconds(self.base_s, allow_zero=True):
            raise SupervisorDataError(f"backoff base_s must be a finite number of seconds >= 0, got {self.base_s!r}")
        if not _seconds(self.max_s, allow_zero=True) or self.max_s < self.base_s:
            raise SupervisorDataError(f"backoff max_s must be finite and >= base_s, got {self.max_s!r}")
        if not _seconds(self.jitter, allow_zero=True) or self.jitter > 1:
            raise SupervisorDataError(f"backoff jitter must be within [0, 1], got {self.jitter!r}")
        if not _seconds(self.reset_after_s, allow_zero=False):
            raise SupervisorDataError(
                f"backoff reset_after_s must be a finite number of seconds > 0, got {self.reset_after_s!r}"
            )

    def delay(self, n: int, u: float) -> float:
        """Seconds to wait before the restart that follows ``n`` consecutive restarts; ``u`` in [0, 1)."""
        if n <= 0:
            return 0.0
        capped = self.max_s if n > _MAX_DOUBLINGS else min(self.max_s, self.base_s * 2 ** (n - 1))
        return capped * (1.0 + self.jitter * u)


NO_BACKOFF = Backoff(base_s=0.0, max_s=0.0, jitter=0.0)
"""Every restart immediate (OTP): for a child under a supervisor whose default is a backoff."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """How to start one child and how to treat its exits.

    ``shutdown=None`` means the default: 5.0 s for a worker, ``INFINITY`` for a supervisor; the
    stored spec always holds the resolved value. ``backoff=None`` means the supervisor's own
    default backoff (none unless the supervisor was given one). ``hang_timeout_s`` is how long
    the child may spend on one message before its node's watchdog declares it hung (actor
    children only; None: never).
    """

    id: str
    start: StartFn
    restart: Restart = Restart.PERMANENT
    shutdown: Shutdown | None = None
    type: ChildType = ChildType.WORKER
    backoff: Backoff | None = None
    hang_timeout_s: float | None = DEFAULT_HANG_TIMEOUT_S

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
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise SupervisorDataError(f"child {self.id!r}: backoff must be a Backoff or None, got {self.backoff!r}")
        if self.hang_timeout_s is not None:
            if not _seconds(self.hang_timeout_s, allow_zero=False):
                raise SupervisorDataError(
                    f"child {self.id!r}: hang_timeout_s must be a finite number of seconds > 0 or None, "
                    f"got {self.hang_timeout_s!r}"
                )
            object.__setattr__(self, "hang_timeout_s", float(self.hang_timeout_s))


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
