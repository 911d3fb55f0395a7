"""``SupervisedActor``: a pykka actor that reports its exit to its supervisor exactly once.

The product derives every actor from it (``actors.node_actor.NodeActor``); the engine itself knows
no product class. A subclass may override :meth:`SupervisedActor.classify` to report exits with its
own error types.

It adapts pykka's failure semantics (verified against pykka 4.x ``_actor.py``) to supervision:

- an exception in a ``tell``-delivered message: pykka unregisters the actor, sets
  ``actor_stopped``, then calls ``on_failure`` (never ``on_stop``). We report ``error``;
- an exception in an ``ask`` (proxy calls included) goes back to the caller, and the actor keeps
  running. So product actors are driven by ``tell``, and a failing ``ask`` is not a crash;
- an exception in ``on_start``: pykka calls neither ``on_stop`` nor ``on_failure``. Our
  ``on_start`` catches it, runs ``cleanup()`` and reports ``error``; the start then fails;
- ``stop()``: ``on_stop`` runs after ``actor_stopped`` is set. We report ``normal``, and the
  actor's handle turns it into ``shutdown`` when its supervisor asked for the stop;
- a ``BaseException`` (SystemExit, KeyboardInterrupt) in a handler: pykka stops this actor
  through ``on_stop`` and then stops *every* actor in the process. We report ``error``.

So exactly one exit is reported per incarnation, always after the shared ``cleanup()``.

Liveness: while a message is being handled, ``busy()`` says since when (the actor's clock, in
monotonic seconds) and which message type; the node's watchdog reads it from another thread to
find an actor stuck in a handler. Two attribute writes per message, no lock: a reader may pair
a start time with the next message's name, which only affects the wording of a report.
Subclasses implement ``setup()`` (open resources, in the actor's thread), ``handle(message)``
and ``cleanup()`` (close them; it must cope with a half-finished ``setup``). The pykka hooks
``on_start``, ``on_stop``, ``on_failure`` and ``on_receive`` belong to this class: overriding
them would bypass exit reporting, so it raises ``TypeError`` when the subclass is defined.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, cast

import pykka

from otp.child import ChildContext
from otp.clock import Clock, SystemClock
from otp.exits import ExitReason

log = logging.getLogger(__name__)

_FROZEN = {"frozen": True, "slots": True, "kw_only": True}


Busy = tuple[float, str]
"""``(since, message type)``: the actor's clock (monotonic s) when it took the message it is on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartupProbe:
    """Command to a starting actor: acknowledge, from the actor's thread, that ``setup`` is done.

    ``ack`` receives the actor's thread and its ``busy`` probe.
    """

    ack: Callable[[threading.Thread, Callable[[], Busy | None]], None]


class SupervisedActor(pykka.ThreadingActor):
    """A pykka actor that reports its exit to its supervisor exactly once."""

    _FINAL_HOOKS: ClassVar[tuple[str, ...]] = ("on_start", "on_stop", "on_failure", "on_receive")

    @staticmethod
    def classify(exc: BaseException) -> BaseException:
        """The exception an exit is reported with: ``exc`` itself unless a subclass says otherwise.

        The engine knows no product error: a product base class overrides this hook to turn a
        library's raw exception into its own type (the product's turns a raw database error into
        its "database unavailable" type, so the supervisor holds a restart until it is back)."""
        return exc

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse subclasses that override the pykka hooks this class relies on."""
        super().__init_subclass__(**kwargs)
        overridden = [hook for hook in cls._FINAL_HOOKS if hook in vars(cls)]
        if overridden:
            msg = (
                f"{cls.__name__} overrides {', '.join(overridden)}: implement setup(), handle() "
                "and cleanup() instead, so that exits are always reported to the supervisor"
            )
            raise TypeError(msg)

    def __init__(self, *, context: ChildContext, clock: Clock | None = None) -> None:
        """Runs in the starting thread: keep it cheap and open nothing here (use ``setup``)."""
        super().__init__()
        self.context = context
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.messages_processed = 0
        self.last_message_at: datetime | None = None
        self._fatal: BaseException | None = None
        self._exit_reported = False
        self._busy_since: float | None = None
        self._busy_with = ""

    # ------------------------------------------------------------------ for subclasses

    def setup(self) -> None:
        """Open resources; runs in the actor's thread before any message. Raising fails the start."""

    def handle(self, message: Any) -> Any:
        """Handle one message (an exception in a ``tell``-ed message crashes the actor)."""
        log.warning("%s: unexpected message %r", self, message)

    def cleanup(self) -> None:
        """Close resources; runs once, after a stop, a crash or a failed ``setup``."""

    def mailbox_depth(self) -> int:
        """Messages waiting in this actor's inbox."""
        return cast("queue.Queue[Any]", self.actor_inbox).qsize()

    def busy(self) -> Busy | None:
        """Since when and on which message type the actor is busy; None when idle (any thread)."""
        since = self._busy_since
        return None if since is None else (since, self._busy_with)

    # ------------------------------------------------------------------ pykka hooks (final)

    def on_start(self) -> None:
        """Run ``setup``; a failure is cleaned up and reported before pykka stops the actor."""
        try:
            self.setup()
        except BaseException as exc:
            self._report_exit(ExitReason.from_exception(self.classify(exc), during="setup"))
            raise

    def on_stop(self) -> None:
        """Stopped (by ``stop()``, or by pykka after a BaseException): clean up, report."""
        fatal = self._fatal
        self._report_exit(ExitReason.from_exception(fatal, during="handle") if fatal else ExitReason.normal())

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """A ``tell``-ed message raised: clean up and report ``error``."""
        del traceback
        if exception_value is not None:
            reason = ExitReason.from_exception(self.classify(exception_value))
        else:
            reason = ExitReason.error(getattr(exception_type, "__name__", "unknown failure"))
        self._report_exit(reason)

    def on_receive(self, message: Any) -> Any:
        """Record stats, then dispatch: ``Crash`` raises ``InjectedCrash``, the rest go to ``handle``."""
        if isinstance(message, StartupProbe):
            message.ack(threading.current_thread(), self.busy)
            return None
        self.messages_processed += 1
        self.last_message_at = self._clock.now()
        if isinstance(message, Crash):
            raise InjectedCrash(message.note)
        self._busy_with = type(message).__name__
        self._busy_since = self._clock.monotonic()
        try:
            return self.handle(message)
        except Exception:
            raise
        except BaseException as exc:  # pykka will stop every actor; remember why for on_stop
            self._fatal = exc
            raise
        finally:
            self._busy_since = None

    def _report_exit(self, reason: ExitReason) -> None:
        if self._exit_reported:
            return
        self._exit_reported = True
        try:
            self.cleanup()
        except Exception as exc:  # noqa: BLE001 - cleanup is subclass code; the exit must still be reported
            log.exception("%s: cleanup failed", self)
            if not reason.abnormal:
                reason = ExitReason.from_exception(exc, during="cleanup")
        finally:
            self.context.notify_exit(reason)


@dataclass(**_FROZEN)
class Crash:
    """Command to any supervised actor: raise ``InjectedCrash`` (drills and tests)."""

    note: str = "injected"


class InjectedCrash(RuntimeError):
    """Raised by an actor on purpose when told ``Crash``."""
