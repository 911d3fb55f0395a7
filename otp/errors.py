"""Errors raised by the supervisor API (the OTP ``{error, Reason}`` returns, as exceptions)."""

from __future__ import annotations

from typing import Any


class SupervisorError(Exception):
    """Base class of every supervisor error."""


class SupervisorDataError(SupervisorError, ValueError):
    """Invalid flags or child specs (OTP ``supervisor_data`` / ``start_spec``); nothing started."""


class StartFailed(SupervisorError):
    """A child could not be started (OTP ``failed_to_start_child``).

    ``abandoned`` is True when a partly started child could not be proven dead; the caller must
    then escalate instead of retrying (S13).
    """

    def __init__(self, child_id: str, cause: BaseException | str, *, abandoned: bool = False) -> None:
        """Record which child failed and why."""
        self.child_id = child_id
        self.cause = cause
        self.abandoned = abandoned
        super().__init__(f"failed to start child {child_id!r}: {cause}")


class ChildAbandoned(SupervisorError):
    """A child (or a child's start) could not be proven dead, so it may still be running.

    Start callables raise it when they give up on a start they cannot undo (e.g. an actor whose
    ``on_start`` did not finish in time). The supervisor never retries such a start: it gives up.
    """


class AlreadyStarted(SupervisorError):
    """``start_child`` for an id that is running (OTP ``already_started``)."""

    def __init__(self, child_id: str, handle: Any) -> None:
        """Carry the running child's handle."""
        self.child_id = child_id
        self.handle = handle
        super().__init__(f"child {child_id!r} is already started")


class AlreadyPresent(SupervisorError):
    """``start_child`` for an id that exists but is not running (OTP ``already_present``)."""


class ChildNotFound(SupervisorError, KeyError):
    """No child with that id (OTP ``not_found``)."""

    def __str__(self) -> str:
        """Plain message (KeyError would quote it)."""
        return str(self.args[0]) if self.args else "child not found"


class ChildRunning(SupervisorError):
    """The operation needs a stopped child but it is running (OTP ``running``)."""


class ChildRestarting(SupervisorError):
    """The child is between failed restart attempts (OTP ``restarting``)."""


class SupervisorNotRunning(SupervisorError):
    """The supervisor is not accepting calls (not started yet, or already terminated)."""


class CallTimeout(SupervisorError, TimeoutError):
    """A call marshalled to the supervisor thread got no answer in time (it may still run)."""
