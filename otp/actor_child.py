"""pykka actors as supervised children: ``actor_child`` start functions and ``ActorHandle``.

The start function returns only after the actor's ``setup()`` (its ``on_start``) has finished,
which is acknowledged from the actor's own thread. A setup failure is reported as a start
failure. After the start, a one-way monitor joins the actor's thread: if the thread ever ends
without an exit report, it reports ``error`` on the actor's behalf (S29). A thread cannot be
killed, so ``ActorHandle.kill()`` returns False and the supervisor abandons an actor that
ignores its stop (S13, S25). ``ActorHandle.busy()`` relays the actor's own liveness probe
(``SupervisedActor.busy``) to a watchdog: since when it has been on its current message.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pykka

from otp.actor import Busy, StartupProbe, SupervisedActor
from otp.child import ChildContext
from otp.errors import ChildAbandoned
from otp.exits import ExitKind, ExitReason

if TYPE_CHECKING:
    from otp.core import Supervisor

log = logging.getLogger(__name__)

A = TypeVar("A", bound=SupervisedActor)


class ActorStartError(RuntimeError):
    """The actor's ``setup()`` failed (or the actor died before acknowledging it)."""


class _ActorLink:
    """Connects one actor incarnation with its handle: once-only exit latch and startup ack."""

    def __init__(self, ctx: ChildContext) -> None:
        self.ctx = ctx
        self.stop_requested = threading.Event()
        self.exited = threading.Event()
        self._cond = threading.Condition()
        self._reason: ExitReason | None = None
        self._thread: threading.Thread | None = None
        self.busy: Callable[[], Busy | None] = _idle

    @property
    def reason(self) -> ExitReason | None:
        return self._reason

    def report_exit(self, reason: ExitReason) -> None:
        """The actor's exit sink: the first report wins; ``normal`` after our stop is ``shutdown``."""
        with self._cond:
            if self._reason is not None:
                log.debug("%s#%d: duplicate exit report %s ignored", self.ctx.child_id, self.ctx.incarnation, reason)
                return
            if reason.kind is ExitKind.NORMAL and self.stop_requested.is_set():
                reason = ExitReason.shutdown("stopped by its supervisor")
            self._reason = reason
            self.exited.set()
            self._cond.notify_all()
        self.ctx.notify_exit(reason)

    def ack_started(self, thread: threading.Thread, busy: Callable[[], Busy | None]) -> None:
        with self._cond:
            self.busy = busy
            self._thread = thread
            self._cond.notify_all()

    def await_startup(self, timeout: float) -> threading.Thread | ExitReason | None:
        """The actor's thread once setup is done, its exit reason if it died first, or None."""
        with self._cond:
            self._cond.wait_for(lambda: self._thread is not None or self._reason is not None, timeout)
            return self._thread if self._thread is not None else self._reason


class ActorHandle:
    """``ChildHandle`` of one actor incarnation. ``ref`` is valid for this incarnation only."""

    def __init__(self, ref: pykka.ActorRef[Any], link: _ActorLink, thread: threading.Thread) -> None:
        """Wrap a started actor and start its death monitor."""
        self.ref = ref
        self._link = link
        self._thread = thread
        self._monitor = threading.Thread(
            target=self._watch, name=f"watch:{link.ctx.child_id}#{link.ctx.incarnation}", daemon=True
        )
        self._monitor.start()

    @property
    def incarnation(self) -> int:
        """The incarnation this handle belongs to."""
        return self._link.ctx.incarnation

    @property
    def exit_reason(self) -> ExitReason | None:
        """The reported exit reason, once the actor has exited."""
        return self._link.reason

    def stop(self) -> None:
        """Queue pykka's stop (after the messages already queued); never blocks."""
        self._link.stop_requested.set()
        self.ref.stop(block=False)

    def kill(self) -> bool:
        """A Python thread cannot be killed: always False."""
        log.warning("%s#%d cannot be killed (thread actor)", self._link.ctx.child_id, self._link.ctx.incarnation)
        return False

    def busy(self) -> Busy | None:
        """``(since, message type)`` while the actor handles a message, None when it is idle."""
        return self._link.busy()

    def wait(self, timeout: float | None) -> bool:
        """True once the actor is stopped, has reported its exit, and its thread has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if not self.ref.actor_stopped.wait(remaining()) or not self._link.exited.wait(remaining()):
            return False
        self._thread.join(remaining())
        return not self._thread.is_alive()

    def describe(self) -> dict[str, Any]:
        """Actor class, urn, thread and liveness."""
        return {
            "actor": self.ref.actor_class.__name__,
            "urn": self.ref.actor_urn,
            "thread": self._thread.name,
            "alive": self.ref.is_alive(),
            "incarnation": self._link.ctx.incarnation,
        }

    def _watch(self) -> None:
        self._thread.join()
        if not self._link.exited.is_set():
            self._link.report_exit(ExitReason.error("actor thread ended without an exit report"))


def _idle() -> Busy | None:
    return None


def actor_child(
    actor_class: type[A],
    *args: Any,
    start_timeout: float = 60.0,
    **kwargs: Any,
) -> Callable[[ChildContext], ActorHandle]:
    """A ``ChildSpec.start`` that starts ``actor_class(*args, context=ctx, **kwargs)``.

    Returns once the actor's ``setup()`` finished. Raises ``ActorStartError`` if it failed, or
    ``ChildAbandoned`` if it did not finish within ``start_timeout`` seconds (the half-started
    actor cannot be killed, so the supervisor must escalate rather than retry).
    """
    if not (isinstance(actor_class, type) and issubclass(actor_class, SupervisedActor)):
        raise TypeError(f"{actor_class!r} is not a SupervisedActor subclass")

    def start(ctx: ChildContext) -> ActorHandle:
        link = _ActorLink(ctx)
        ref = actor_class.start(*args, context=ctx.with_exit_sink(link.report_exit), **kwargs)
        with contextlib.suppress(pykka.ActorDeadError):  # setup already failed; its exit report says why
            ref.tell(StartupProbe(ack=link.ack_started))
        outcome = link.await_startup(start_timeout)
        if isinstance(outcome, threading.Thread):
            return ActorHandle(ref, link, outcome)
        if isinstance(outcome, ExitReason):
            raise ActorStartError(f"{actor_class.__name__} failed to start: {outcome}")
        link.stop_requested.set()
        ref.stop(block=False)
        msg = f"{actor_class.__name__} did not finish setup within {start_timeout} s"
        raise ChildAbandoned(msg)

    return start


def current_ref(supervisor: Supervisor, child_id: str) -> pykka.ActorRef[Any] | None:
    """The ``ActorRef`` of the child's current incarnation, or None (resolve it on every use)."""
    handle = supervisor.lookup(child_id)
    return handle.ref if isinstance(handle, ActorHandle) else None
