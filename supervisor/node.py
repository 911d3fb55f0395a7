"""The main function of a node process: its own supervisor over its own pykka actors.

Life of a node:
1. configure logging, exit at once if the root goes away (parent-alive pipe, PR_SET_PDEATHSIG);
2. build its child specs (``supervisor.wiring``) and start them in order — all or nothing;
3. report ``ready`` to the root, then report actor status to ``runtime_actors`` every second;
4. on SIGTERM/SIGINT stop the actors in reverse start order and exit 0; if its supervisor gives
   up (restart intensity exceeded) exit with ``EXIT_GAVE_UP`` so the root applies its own
   intensity. Every supervisor event goes to the log and to ``supervisor_events``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

import pykka

from actors.messages import Crash
from config import Settings
from supervisor.actor_child import current_ref
from supervisor.clock import SystemClock
from supervisor.core import Supervisor, SupervisorState
from supervisor.event_sink import EventSink
from supervisor.exits import ExitReason
from supervisor.process_child import NodeBoot, exit_with_parent
from supervisor.spec import Strategy, SupervisorFlags
from supervisor.status_reporter import StatusReporter

log = logging.getLogger(__name__)

EXIT_GAVE_UP = 3
EXIT_START_FAILED = 4


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


def node_main(boot: NodeBoot) -> None:
    """Entry point of every node process (the spawn target)."""
    payload: NodePayload = boot.payload
    from config import configure_logging

    configure_logging(payload.settings)
    exit_with_parent(boot)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the root decides
    sys.exit(run_node(boot, payload, stop))


def run_node(boot: NodeBoot, payload: NodePayload, stop: threading.Event) -> int:
    """Start the node's supervisor, serve until told to stop or until it gives up; the exit code."""
    from supervisor import wiring

    channel = NodeChannel(boot)
    gave_up = threading.Event()
    sink = EventSink(payload.db_url, node=boot.node)
    wired = wiring.node_specs(boot.node, payload.settings, payload.db_url, channel)
    supervision = payload.settings.supervision
    flags = SupervisorFlags(strategy=payload.strategy, intensity=supervision.node_intensity,
                            period=supervision.node_period_s)

    def on_exit(reason: ExitReason) -> None:
        if sup.state is SupervisorState.GAVE_UP:
            gave_up.set()
        stop.set()

    sup = Supervisor(name=boot.node, flags=flags, specs=wired.specs, clock=SystemClock(), on_event=sink.record,
                     on_exit=on_exit)
    wired.bind(sup)
    try:
        sup.start()
    except Exception as exc:  # noqa: BLE001 - any start failure is reported to the root by exit code
        log.error("node %s failed to start: %s", boot.node, exc)
        sink.close()
        return EXIT_START_FAILED
    channel.serve_requests(sup)
    channel.ready()
    reporter = StatusReporter(payload.db_url, boot.node, sup, wired.board, interval_s=1.0)
    reporter.start()
    try:
        stop.wait()
    finally:
        reporter.stop()
        if not gave_up.is_set():
            log.info("node %s stopping", boot.node)
            sup.stop()
        reporter.report_stopped("gave_up" if gave_up.is_set() else "stopped")
        sink.close()
    if gave_up.is_set():
        log.error("node %s: supervisor gave up (restart intensity exceeded); exiting %d", boot.node, EXIT_GAVE_UP)
        return EXIT_GAVE_UP
    log.info("node %s stopped", boot.node)
    return 0
