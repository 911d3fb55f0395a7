"""``otp``: in-process supervision, after Erlang/OTP's ``supervisor`` behaviour — a library.

The engine imports nothing of the product (an import-linter contract says so): it supervises
anything with a ``ChildHandle``, reads time through its own ``Clock`` interface and reports exits
with whatever exception a ``SupervisedActor`` subclass classifies them as.

Ids such as ``(S13)`` in this package's docstrings name the rules of ``docs/supervision.md``,
which gives each rule's source (OTP, Akka, supervisord, pykka) and the tests that prove it.

The supervision contract
========================

A *supervisor* starts, watches, restarts and stops *children*. A child is anything with a
``ChildHandle`` (``otp.child``): a pykka actor (``otp.actor_child``), another
supervisor (``otp.nested``) or an OS process (``otp.process_child``). One
``Supervisor`` class serves all three, so the same rules hold at every level of the tree.

Child spec
----------
``ChildSpec`` (``otp.spec``), frozen and validated on construction; defaults next to
each key::

    id              str, unique within one supervisor                (required)
    start           Callable[[ChildContext], ChildHandle]            (required)
    restart         PERMANENT | TRANSIENT | TEMPORARY                default PERMANENT
    shutdown        seconds >= 0 | BRUTAL_KILL | INFINITY            default 5.0 for a worker,
                                                                             INFINITY for a supervisor
    type            WORKER | SUPERVISOR                              default WORKER
    backoff         Backoff | None                                   default None: the supervisor's
                                                                             ``backoff`` (see below)
    hang_timeout_s  seconds > 0 | None (never)                       default 30.0 (actor children)

``start`` returns only once the child is ready (for an actor: after its ``on_start``), so
children start strictly one after another. It raises to report a start failure. Returning
``ignore`` is *not* supported. Invalid specs or flags, and duplicate ids, raise
``SupervisorDataError`` when the ``Supervisor`` is built, before anything starts.

``start`` receives a ``ChildContext``: ``supervisor_name``, ``child_id``, ``incarnation``
(1, 2, 3, … per child id, one more on every start attempt) and ``notify_exit(reason)``. The
child, or its handle's death monitor, calls ``notify_exit`` exactly once when that incarnation
ends. Notices from an incarnation that is no longer current are ignored.

Exit reasons (``otp.exits.ExitReason``)
----------------------------------------------
``normal`` (finished by itself), ``shutdown`` (stopped on purpose), ``killed`` (forced),
``error`` (exception, failed ``on_start``, non-zero exit code) and ``hung`` (a node that missed
its heartbeats, or one whose actor was stuck on one message: see *Liveness*). Every reason except
``normal`` and ``shutdown`` is *abnormal*.

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
One window per supervisor, shared by all its children (``otp.intensity``). Each restart
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

Restart backoff (``Supervisor(backoff=...)`` default None, ``ChildSpec.backoff`` overrides)
------------------------------------------------------------------------------------------------
An extension from Akka's BackoffSupervisor, *on top of* the intensity. Per child, the n-th
consecutive restart (n = 0, 1, 2, …) waits ``Backoff.delay(n, u)``::

    base_s         0.1    n = 0: no wait — the first restart after a healthy run is immediate
    max_s          5.0    n >= 1: min(max_s, base_s · 2^(n-1)) · (1 + jitter · u),
    jitter         0.2            u uniform in [0, 1) from the supervisor's ``rng``
    reset_after_s  0.5    n goes back to 0 once the child has been up this long

A failed start was never up, so the retries of a child that keeps failing to start wait
0.1, 0.2, 0.4 … s. The attempt is *counted* against the intensity when the exit is handled,
and the restart group is stopped then; only the starts wait. So the intensity gives up at the
same exit as without a backoff, never later. The wait is not a sleep: the restart is handed to
the ``scheduler`` (a timer that posts it back to the supervisor's queue), so other children's
exits, API calls and a stop are served meanwhile. While it waits the child shows as
``restarting``; ``terminate_child`` or a stop calls the restart off. ``NO_BACKOFF`` makes one
child's restarts immediate under a supervisor that has a default. The product's root and node
supervisors use ``Backoff()``; a bare ``Supervisor`` restarts at once, as OTP does.
Backoffs delay restarts, so keep ``intensity`` restarts' worth of delays well inside ``period``
(with the defaults the first five delays add up to 1.5 s, 1.8 s at most with jitter), or the
intensity never trips. ``reset_after_s`` is short on purpose: it only has to tell a child that
dies as soon as it is up (a crash-on-start loop, which the backoff slows down) from one that
ran; repeated crashes of children that did run are the intensity's business.

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

Liveness: hung actors and hung nodes
------------------------------------
- *Actor*: each ``SupervisedActor`` records, without a lock, since when it has been on its
  current message (``busy()``). Every second the node's watchdog (``system.node``) compares
  each actor's time on its message with its spec's ``hang_timeout_s`` (default 30 s: far above
  any batch the market actors handle; I/O-bound actors whose retries can last longer need a
  larger value). Past it, the watchdog logs, tells the root ``("hung", "market/bar busy 31.2 s
  in BarsReady")`` and calls ``Supervisor.report_hung``. The supervisor kills a child that can be
  killed and restarts it as after any abnormal exit; an actor cannot be killed, so it is
  abandoned (event ``abandoned``, reason ``hung``) and the supervisor gives up, stopping the
  other children in reverse order. The node then exits with ``EXIT_HUNG`` (5), by ``os._exit``
  if that takes longer than the other actors' shutdown timeouts plus 5 s. The process exit ends
  the stuck thread; the root sees reason ``hung`` and restarts the node only after reaping it.
- *Node*: a node sends the root a heartbeat every second from a thread of its own; any message
  counts. The root's monitor of that node (``process_child(heartbeat_timeout=...)``, the root
  uses ``NODE_HANG_TIMEOUT_S`` = 10 s) kills a node silent for that long (SIGSTOP, a deadlock of
  the whole process) with SIGKILL; reason ``hung``, then the normal restart path.
- Long but finite work is neither: the heartbeat thread runs beside busy actors, and an actor is
  hung only once it is *over* its limit on one message.

Observability
-------------
Every child start, exit (with its reason), restart attempt (its reason says when a backoff
delays it: "…; restart delayed 0.20 s by backoff"), start failure and abandonment, and the
supervisor's start, stop and give-up, is logged and passed to ``on_event`` as a frozen
``SupervisorEvent``. ``which_children()``, ``count_children()`` and ``lookup(child_id)`` (the
*current* incarnation's handle) give the live view.
"""

from otp.child import ChildContext, ChildHandle, StartFn
from otp.children import RESTARTING, ChildCounts, ChildInfo
from otp.clock import Clock, SystemClock
from otp.core import Scheduler, Supervisor, SupervisorState, thread_scheduler
from otp.errors import AlreadyPresent, AlreadyStarted, CallTimeout, ChildAbandoned, ChildNotFound, ChildRestarting, ChildRunning, StartFailed, SupervisorDataError, SupervisorError, SupervisorNotRunning
from otp.events import EventKind, SupervisorEvent
from otp.exits import ExitKind, ExitReason
from otp.intensity import RestartWindow
from otp.nested import SupervisorHandle, supervisor_child
from otp.spec import BRUTAL_KILL, INFINITY, NO_BACKOFF, Backoff, ChildSpec, ChildType, Restart, Strategy, SupervisorFlags

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "NO_BACKOFF",
    "RESTARTING",
    "AlreadyPresent",
    "AlreadyStarted",
    "Backoff",
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
    "Restart",
    "RestartWindow",
    "Scheduler",
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
    "thread_scheduler",
]
