"""The main function of a node process: its own supervisor over its own pykka actors.

Life of a node:
1. configure logging, exit at once if the root goes away (parent-alive pipe, PR_SET_PDEATHSIG);
2. build its child specs (``system.wiring``) and start them in order — all or nothing;
3. report ``ready`` to the root, then report actor status to ``runtime_actors`` every second;
4. from then on a watchdog thread sends the root a heartbeat every second (the root kills a
   node that stays silent: ``process_child``) and checks that no actor has been on one message
   longer than its spec's ``hang_timeout_s``;
5. on SIGTERM/SIGINT stop the actors in reverse start order and exit 0; if its supervisor gives
   up (restart intensity exceeded) exit with ``EXIT_GAVE_UP`` so the root applies its own
   intensity. Every supervisor event goes to the log and to ``supervisor_events``.

A hung actor cannot be killed (it is a thread), so the watchdog escalates: it logs, tells the
root ``("hung", "market/bar busy 31.2 s in BarsReady")``, and reports the hang to the node's
supervisor, which abandons that actor (event ``abandoned``, reason ``hung``) and gives up — the
other actors stop in reverse order. The node then exits with ``EXIT_HUNG`` (forced with
``os._exit`` if the orderly part overruns its deadline), the process exit ends the stuck thread,
and the root restarts the node: the actor comes back in a new process, never beside the old one.
A node always ends with ``os._exit``, so a stuck non-daemon actor thread cannot hold it open.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from otp.actor import Crash
from config import Settings
from persistence.db import prober
from otp.actor_child import ActorHandle, current_ref
from model.clock import SystemClock
from otp.core import Supervisor, SupervisorState
from system.event_sink import EventSink
from otp.events import EventSink as OnEvent
from otp.exits import ExitReason
from otp.process_child import EXIT_HUNG, NodeBoot, exit_with_parent
from otp.signals import SignalRelay, dump_stacks_on
from otp.spec import Backoff, ChildSpec, Strategy, SupervisorFlags
from system.status_reporter import StatusReporter

log = logging.getLogger(__name__)

EXIT_GAVE_UP = 3
EXIT_START_FAILED = 4

HEARTBEAT_INTERVAL_S = 1.0
HUNG_EXIT_GRACE_S = 5.0  # on top of the other actors' shutdown timeouts, before a hung node is forced out


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePayload:
    """What the root hands every node."""

    settings: Settings
    db_url: str
    strategy: Strategy


class NodeChannel:
    """Thread-safe sender of node → root messages (actors call it from their own threads),
    and the reader of the root's requests."""

    def __init__(self, boot: NodeBoot) -> None:
        self._conn = boot.channel
        self._lock = threading.Lock()
        self._ready = False
        self._held: list[tuple[Any, ...]] = []  # sent before "ready": the root reads "ready" first

    def ready(self) -> None:
        """Report ready, then everything actors said while the node was starting."""
        with self._lock:
            self._ready = True
            held, self._held = self._held, []
        self.send("ready", os.getpid())
        for message in held:
            self.send(*message)

    def serve_requests(self, sup: Supervisor) -> threading.Thread:
        """Answer the root's requests in a daemon thread (``crash_actor``: a requested restart)."""

        def serve() -> None:
            while True:
                try:
                    request = self._conn.recv()
                except (EOFError, OSError):
                    return
                if isinstance(request, tuple) and len(request) == 4 and request[0] == "crash_actor":
                    _, actor, note, request_id = request
                    ref = current_ref(sup, actor)
                    if ref is None:
                        self.send("crash_actor_result", request_id, False, f"actor {actor} is not running")
                        continue
                    try:
                        ref.tell(Crash(note=note))
                    except pykka.ActorDeadError:
                        self.send("crash_actor_result", request_id, False, f"actor {actor} is not running")
                        continue
                    self.send("crash_actor_result", request_id, True,
                              f"actor {actor} stopped on purpose; its supervisor restarts it per its strategy")
                else:
                    log.warning("ignoring an unknown request from the root: %r", request)

        thread = threading.Thread(target=serve, name="root-requests", daemon=True)
        thread.start()
        return thread

    def send(self, *message: Any) -> None:
        with self._lock:
            if not self._ready and message[0] != "ready":
                self._held.append(message)
                return
            try:
                self._conn.send(message)
            except (BrokenPipeError, EOFError, OSError):
                log.warning("root is gone; dropped node message %r", message[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class Hang:
    """An actor found on one message for longer than its ``hang_timeout_s``."""

    child_id: str
    incarnation: int
    busy_s: float
    message: str
    limit_s: float

    def detail(self, node: str) -> str:
        """E.g. ``market/bar busy 31.2 s in BarsReady``."""
        return f"{node}/{self.child_id} busy {self.busy_s:.1f} s in {self.message}"


def find_hang(sup: Supervisor, limits: Mapping[str, float | None], now: float) -> Hang | None:
    """The first actor (in ``limits`` order) busy on one message for longer than its limit.

    ``now`` is read from the actors' clock (monotonic seconds). Only reads: the supervisor's
    thread-safe ``lookup`` and each actor's ``busy`` probe, so it never waits for anyone.
    """
    for child_id, limit in limits.items():
        if limit is None:
            continue
        handle = sup.lookup(child_id)
        if not isinstance(handle, ActorHandle):
            continue
        busy = handle.busy()
        if busy is not None and now - busy[0] > limit:
            return Hang(child_id=child_id, incarnation=handle.incarnation, busy_s=now - busy[0], message=busy[1],
                        limit_s=limit)
    return None


class NodeWatchdog:
    """One daemon thread: a heartbeat to the root every ``interval_s``, and the hung-actor check.

    The first hang found goes to ``on_hang`` (once); heartbeats go on until the process ends, so
    the root does not kill a node that is busy escalating in order. ``pause_checks`` ends the
    checks (a stopping node's stuck actors are its supervisor's business: shutdown timeouts).
    """

    def __init__(self, sup: Supervisor, channel: NodeChannel, limits: Mapping[str, float | None], *,  # noqa: PLR0913
                 on_hang: Callable[[Hang], None], interval_s: float = HEARTBEAT_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sup = sup
        self._channel = channel
        self._limits = dict(limits)
        self._on_hang = on_hang
        self._interval = interval_s
        self._monotonic = monotonic
        self._checking = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pause_checks(self) -> None:
        self._checking = False

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> Hang | None:
        """One look at every actor; reports (once) and returns a hang if there is one."""
        if not self._checking:
            return None
        hang = find_hang(self._sup, self._limits, self._monotonic())
        if hang is not None:
            self._checking = False
            self._on_hang(hang)
        return hang

    def _run(self) -> None:
        while True:
            self._channel.send("heartbeat")
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a broken watchdog must not pass for a healthy node: escalate
                log.exception("the node watchdog failed")
                exit_node(EXIT_HUNG)
            if self._stop.wait(self._interval):
                return


class NodeRuntime:
    """A node's supervisor and watchdog, and how the node ends: its exit code.

    Shared by ``run_node`` and the test nodes, so both escalate exactly the same way.
    """

    def __init__(self, node: str, channel: NodeChannel, specs: Sequence[ChildSpec], flags: SupervisorFlags, *,  # noqa: PLR0913
                 stop: threading.Event, on_event: OnEvent | None = None, backoff: Backoff | None = None,
                 heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
                 dependencies: dict[str, Callable[[], bool]] | None = None) -> None:
        self.node = node
        self.channel = channel
        self.stop = stop
        self.gave_up = threading.Event()
        self.hang: Hang | None = None
        self.sup = Supervisor(name=node, flags=flags, specs=specs, clock=SystemClock(), on_event=on_event,
                              on_exit=self._on_exit, backoff=backoff, dependencies=dependencies)
        self.watchdog = NodeWatchdog(self.sup, channel, {s.id: s.hang_timeout_s for s in specs},
                                     on_hang=self._on_hang, interval_s=heartbeat_interval_s)
        shutdowns = [s.shutdown for s in specs if isinstance(s.shutdown, float)]
        self.hung_exit_deadline_s = sum(shutdowns) + HUNG_EXIT_GRACE_S

    def start(self) -> bool:
        """Start every actor in order; False (logged) if the node cannot start."""
        try:
            self.sup.start()
        except Exception as exc:  # noqa: BLE001 - any start failure is reported to the root by exit code
            log.error("node %s failed to start: %s", self.node, exc)
            return False
        return True

    def serve(self, *, started: Callable[[], None] = lambda: None, stopping: Callable[[], None] = lambda: None) -> int:
        """Report ready, watch, and wait until told to stop, a give-up or a hang; the exit code."""
        self.channel.ready()
        self.watchdog.start()
        started()
        try:
            self.stop.wait()
        finally:
            self.watchdog.pause_checks()
            stopping()
            if not self.gave_up.is_set():
                log.info("node %s stopping", self.node)
                self.sup.stop()
        if self.hang is not None:
            log.critical("node %s: hung: %s; exiting %d so the root restarts the node", self.node,
                         self.hang.detail(self.node), EXIT_HUNG)
            return EXIT_HUNG
        if self.gave_up.is_set():
            log.error("node %s: supervisor gave up (restart intensity exceeded); exiting %d", self.node, EXIT_GAVE_UP)
            return EXIT_GAVE_UP
        log.info("node %s stopped", self.node)
        return 0

    def _on_exit(self, reason: ExitReason) -> None:
        if self.sup.state is SupervisorState.GAVE_UP:
            self.gave_up.set()
        self.stop.set()

    def _on_hang(self, hang: Hang) -> None:
        """Escalate a hung actor: it cannot be killed, so the whole node goes (see the module doc)."""
        detail = hang.detail(self.node)
        log.critical("hung: %s (limit %.1f s): the actor cannot be killed; stopping node %s for a restart",
                     detail, hang.limit_s, self.node)
        self.hang = hang
        self.channel.send("hung", detail)
        self.sup.report_hung(hang.child_id, hang.incarnation, ExitReason.hung(detail))
        deadline = threading.Timer(self.hung_exit_deadline_s, self._force_exit)
        deadline.daemon = True
        deadline.start()

    def _force_exit(self) -> None:
        log.critical("node %s did not stop within %.1f s of the hang: forcing exit %d", self.node,
                     self.hung_exit_deadline_s, EXIT_HUNG)
        exit_node(EXIT_HUNG)


def exit_node(code: int) -> None:
    """End the node process now with ``code``, whatever threads are left (a hung actor's included)."""
    stuck = [t.name for t in threading.enumerate()
             if t is not threading.current_thread() and t is not threading.main_thread() and not t.daemon]
    if stuck:
        log.warning("exiting %d with threads that cannot be joined: %s", code, ", ".join(stuck))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def node_main(boot: NodeBoot) -> None:
    """Entry point of every node process (the spawn target)."""
    payload: NodePayload = boot.payload
    from config import configure_logging

    configure_logging(payload.settings)
    exit_with_parent(boot)
    dump_stacks_on()
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the root decides
    with SignalRelay((signal.SIGTERM,), lambda _signum: stop.set()):
        code = run_node(boot, payload, stop)
    exit_node(code)


def run_node(boot: NodeBoot, payload: NodePayload, stop: threading.Event) -> int:
    """Start the node's supervisor, serve until told to stop, a give-up or a hang; the exit code."""
    from system import wiring

    channel = NodeChannel(boot)
    sink = EventSink(payload.db_url, node=boot.node)
    wired = wiring.node_specs(boot.node, payload.settings, payload.db_url, channel)
    supervision = payload.settings.supervision
    flags = SupervisorFlags(strategy=payload.strategy, intensity=supervision.node_intensity,
                            period=supervision.node_period_s)
    runtime = NodeRuntime(boot.node, channel, wired.specs, flags, stop=stop, on_event=sink.record, backoff=Backoff(),
                          dependencies={"database": prober(payload.db_url)})
    wired.bind(runtime.sup)
    try:
        if not runtime.start():
            return EXIT_START_FAILED
        channel.serve_requests(runtime.sup)
        reporter = StatusReporter(payload.db_url, boot.node, runtime.sup, wired.board, interval_s=1.0)
        code = runtime.serve(started=reporter.start, stopping=reporter.stop)
        reporter.report_stopped("stopped" if code == 0 else "gave_up")
        return code
    finally:
        sink.close()
