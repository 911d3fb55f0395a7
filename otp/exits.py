"""Exit reasons: why a supervised child (or a supervisor) stopped.

The vocabulary follows OTP's exit reasons (see the contract in ``otp/__init__.py``):

- ``normal``   the child finished by itself, cleanly.
- ``shutdown`` the child was stopped on purpose (by its supervisor, or an orderly stop).
- ``killed``   the child was force-stopped (SIGKILL, or killed after its shutdown timeout).
- ``error``    an unhandled exception, a failed ``on_start``, or a non-zero process exit code.
- ``hung``     the child's liveness heartbeat was missed (process children).

``normal`` and ``shutdown`` are the only non-abnormal reasons; a transient child is restarted
exactly when its exit reason is abnormal. An exception with a ``dependency`` attribute (e.g.
``persistence.errors.DatabaseUnavailable``: "database") marks the reason ``waits_for`` that
dependency, so a supervisor may hold the restart until it is back (see ``Supervisor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ExitKind(str, Enum):
    """The kind of an exit reason."""

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    KILLED = "killed"
    ERROR = "error"
    HUNG = "hung"


_NOT_ABNORMAL = frozenset({ExitKind.NORMAL, ExitKind.SHUTDOWN})


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitReason:
    """Why a child exited: an ``ExitKind`` plus a human-readable detail.

    ``abandoned`` is set when something in the exiting subtree could not be proven dead (a
    thread actor that ignored its stop). A supervisor receiving such an exit never restarts the
    child; it gives up at once so that the whole OS process is restarted (S13).
    """

    kind: ExitKind
    detail: str = ""
    abandoned: bool = False
    waits_for: str | None = None  # an outside dependency that was unavailable ("database"), if that was the cause

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ExitKind):
            object.__setattr__(self, "kind", ExitKind(self.kind))

    @property
    def abnormal(self) -> bool:
        """True for every reason except ``normal`` and ``shutdown``."""
        return self.kind not in _NOT_ABNORMAL

    @classmethod
    def normal(cls, detail: str = "") -> ExitReason:
        """The child finished by itself."""
        return cls(kind=ExitKind.NORMAL, detail=detail)

    @classmethod
    def shutdown(cls, detail: str = "", *, abandoned: bool = False) -> ExitReason:
        """The child was stopped on purpose."""
        return cls(kind=ExitKind.SHUTDOWN, detail=detail, abandoned=abandoned)

    @classmethod
    def killed(cls, detail: str = "") -> ExitReason:
        """The child was force-stopped."""
        return cls(kind=ExitKind.KILLED, detail=detail)

    @classmethod
    def error(cls, detail: str) -> ExitReason:
        """The child failed."""
        return cls(kind=ExitKind.ERROR, detail=detail)

    @classmethod
    def hung(cls, detail: str) -> ExitReason:
        """The child stopped making progress."""
        return cls(kind=ExitKind.HUNG, detail=detail)

    @classmethod
    def from_exception(cls, exc: BaseException, *, during: str = "") -> ExitReason:
        """An ``error`` reason naming the exception type and message."""
        where = f" in {during}" if during else ""
        dependency = getattr(exc, "dependency", None)
        return cls(kind=ExitKind.ERROR, detail=f"{type(exc).__name__}{where}: {exc}",
                   waits_for=dependency if isinstance(dependency, str) else None)

    def __str__(self) -> str:
        text = self.kind.value if not self.detail else f"{self.kind.value}({self.detail})"
        return f"{text} [abandoned]" if self.abandoned else text
