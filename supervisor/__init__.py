"""In-process supervision, after Erlang/OTP's ``supervisor`` behaviour.

The supervision contract
========================

A *supervisor* starts, watches, restarts and stops *children*. A child is anything with a
``ChildHandle`` (``supervisor.child``): a pykka actor (``supervisor.actor_child``), another
supervisor (``supervisor.nested``) or an OS process (``supervisor.process_child``). One
``Supervisor`` class serves all three, so the same rules hold at every level of the tree.

Child spec
----------
``ChildSpec`` (``supervisor.spec``), frozen and validated on construction; defaults next to
each key::

    id        str, unique within one supervisor                      (required)
    start     Callable[[ChildContext], ChildHandle]                  (required)
    restart   PERMANENT | TRANSIENT | TEMPORARY                      default PERMANENT
    shutdown  seconds >= 0 | BRUTAL_KILL | INFINITY                  default 5.0 for a worker,
                                                                             INFINITY for a supervisor
    type      WORKER | SUPERVISOR                                    default WORKER

``start`` returns only once the child is ready (for an actor: after its ``on_start``), so
children start strictly one after another. It raises to report a start failure. Returning
``ignore`` is *not* supported. Invalid specs or flags, and duplicate ids, raise
``SupervisorDataError`` when the ``Supervisor`` is built, before anything starts.

``start`` receives a ``ChildContext``: ``supervisor_name``, ``child_id``, ``incarnation``
(1, 2, 3, … per child id, one more on every start attempt) and ``notify_exit(reason)``. The
child, or its handle's death monitor, calls ``notify_exit`` exactly once when that incarnation
ends. Notices from an incarnation that is no longer current are ignored.

Exit reasons (``supervisor.exits.ExitReason``)
----------------------------------------------
``normal`` (finished by itself), ``shutdown`` (stopped on purpose), ``killed`` (forced),
``error`` (exception, failed ``on_start``, non-zero exit code) and ``hung`` (missed heartbeat).
Every reason except ``normal`` and ``shutdown`` is *abnormal*.

Restart types
-------------
- PERMANENT: always restarted, whatever the reason (even ``normal``).
- TRANSIENT: restarted only after an abnormal exit. After ``normal`` or ``shutdown`` the spec
  is kept with no handle, and ``restart_child`` can start it again.
- TEMPORARY: never restarted. Its spec is deleted when it exits for any reason, including when
  it is stopped as a bystander of a group restart.

Strategies (``SupervisorFlags.strategy``, default ONE_FOR_ONE)
--------------------------------------------------------------
- ONE_FOR_ONE: only the child that exited is restarted.
- ONE_FOR_ALL: every other running child is stopped in reverse start order, then all
  non-temporary children are started again in start order.
- REST_FOR_ONE: the children started after the one that exited are stopped in reverse order,
  then it and those later children are started again in start order.

Group restarts start every non-temporary child of the group, including one that was not
running (stopped with ``terminate_child``, or a transient that finished): this copies OTP.
``simple_one_for_one`` is **not supported**: use ``start_child`` with distinct ids.

If a start fails during a restart, the child is marked ``restarting`` and a retry is queued on
the supervisor's own queue, not run in a loop. Stop, ``terminate_child`` and queries are still
served between attempts. A retry runs the strategy again from that child. Every attempt counts
against the restart intensity, so a child that keeps failing to start ends in a give-up.

Restart intensity (``SupervisorFlags.intensity`` default 1, ``period`` default 5.0 s)
-------------------------------------------------------------------------------------
One window per supervisor, shared by all its children (``supervisor.intensity``). Each restart
attempt records the monotonic time. If more than ``intensity`` attempts fall within the last
``period`` seconds (an attempt exactly ``period`` old still counts), the supervisor
**gives up**:

1. it stops all remaining children in reverse start order, per their shutdown specs;
2. its state becomes ``gave_up``, and it emits a ``gave_up`` event;
3. it exits with reason ``shutdown`` through ``on_exit``, so the parent escalates.

A parent restarts a PERMANENT child supervisor that gave up, and that restart counts against
the parent's intensity. A TRANSIENT child supervisor is *not* restarted: its exit reason
``shutdown`` is not abnormal, so use PERMANENT for subtrees that must come back. The root's
``on_exit`` ends the OS process with a non-zero code, and the process supervisor takes over.

Shutdown
--------
A supervisor stops its children one at a time, in reverse start order. Each stop completes
before the next one begins. For each child:

- ``seconds``: polite ``stop()``, then wait up to that long, then ``kill()``; reason ``killed``.
- ``BRUTAL_KILL``: ``kill()`` at once.
- ``INFINITY``: polite ``stop()``, then wait with no limit (supervisors and trusted workers).

At most one live incarnation per child
---------------------------------------
A new incarnation is never started while the previous one may be alive. Exits are detected by
one-way monitors (a death-watch thread or a process sentinel), not by the child's
co-operation, and even a child that reported its own exit is confirmed dead
(``ChildHandle.wait``) before anything is restarted. A Python thread cannot be killed:
``ActorHandle.kill()`` returns False. An actor that ignores its stop past its timeout is
therefore **abandoned**, never duplicated, and ``BRUTAL_KILL`` on an actor abandons it at once,
so give actors a timeout instead. An abandonment makes the supervisor give up, with
``ExitReason.abandoned`` set, and every ancestor gives up in turn instead of restarting.
Recovery is a restart of the whole OS process.

Observability
-------------
Every child start, exit (with its reason), restart attempt, start failure and abandonment,
and the supervisor's start, stop and give-up, is logged and passed to ``on_event`` as a frozen
``SupervisorEvent``. ``which_children()``, ``count_children()`` and ``lookup(child_id)`` (the
*current* incarnation's handle) give the live view.
"""

from supervisor.child import ChildContext, ChildHandle, StartFn
from supervisor.children import RESTARTING, ChildCounts, ChildInfo
from supervisor.clock import Clock, FakeClock, SystemClock
from supervisor.core import Supervisor, SupervisorState
from supervisor.errors import (
    AlreadyPresent,
    AlreadyStarted,
    CallTimeout,
    ChildAbandoned,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    StartFailed,
    SupervisorDataError,
    SupervisorError,
    SupervisorNotRunning,
)
from supervisor.events import EventKind, SupervisorEvent
from supervisor.exits import ExitKind, ExitReason
from supervisor.intensity import RestartWindow
from supervisor.nested import SupervisorHandle, supervisor_child
from supervisor.spec import (
    BRUTAL_KILL,
    INFINITY,
    ChildSpec,
    ChildType,
    Restart,
    Strategy,
    SupervisorFlags,
)

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "RESTARTING",
    "AlreadyPresent",
    "AlreadyStarted",
    "CallTimeout",
    "ChildAbandoned",
    "ChildContext",
    "ChildCounts",
    "ChildHandle",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ChildSpec",
    "ChildType",
    "Clock",
    "EventKind",
    "ExitKind",
    "ExitReason",
    "FakeClock",
    "Restart",
    "RestartWindow",
    "StartFailed",
    "StartFn",
    "Strategy",
    "Supervisor",
    "SupervisorDataError",
    "SupervisorError",
    "SupervisorEvent",
    "SupervisorFlags",
    "SupervisorHandle",
    "SupervisorNotRunning",
    "SupervisorState",
    "SystemClock",
    "supervisor_child",
]
