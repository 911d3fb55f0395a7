"""The root process: database, the one-system lock, and the supervisor over the node processes.

Start order (stop is the reverse): ``ops`` (the notifier, so alerts about everything after it
are delivered), ``execution``, ``market``. The root supervises them one_for_one with
``ROOT_INTENSITY`` restarts per ``ROOT_PERIOD_S``; past that it gives up: it stops every node,
records and logs why, and exits non-zero — it never loops forever. A node that crashes again
soon after a restart is restarted after a growing delay (``Backoff()`` defaults); one that
sends no heartbeat for ``NODE_HANG_TIMEOUT_S`` is killed and restarted (exit reason ``hung``).

Ctrl-C (SIGINT) and SIGTERM reach only the root's logic: nodes ignore SIGINT, so the root alone
decides the order in which they stop.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import psycopg

from config import SecretFilter, Settings, TradeMode
from dashboard import DashboardServer
from persistence import alerts, control, cursors, embedded, execution_state, runtime
from persistence.db import connect, one_row, prober
from persistence.errors import DatabaseError, DatabaseUnavailable, translated
from persistence.migrate import migrate
from model.clock import SystemClock
from otp.core import Supervisor, SupervisorState
from otp.errors import SupervisorError
from system.event_sink import EventSink
from otp.children import ChildInfo
from otp.events import EventKind, SupervisorEvent
from otp.exits import ExitReason
from system.node import NodePayload, node_main
from system.commands import CommandHandler, Outcome
from otp.process_child import ProcessHandle, process_child
from otp.signals import SignalRelay, dump_stacks_on
from otp.spec import Backoff, ChildSpec, Restart, Strategy, SupervisorFlags
from system.statusline import StatusLine

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ALREADY_RUNNING = 3

EXECUTION_CONSUMER = "execution"
REQUEST_TIMEOUT_S = 10.0
NODE_HANG_TIMEOUT_S = 10.0  # a node heartbeats every second: ten missed beats and it is killed
ALERT_DRAIN_S = 30.0
PENDING_EXIT_DRAIN_S = 60.0  # --exit-at-end waits this long for pending exits to execute

# node name → strategy of its own supervisor, in the root's start order
NODES: tuple[tuple[str, Strategy], ...] = (
    ("ops", Strategy.ONE_FOR_ONE),
    ("execution", Strategy.ONE_FOR_ONE),
    ("market", Strategy.REST_FOR_ONE),
)

SANDBOX_TABLES = ("order_snapshots", "order_fills", "pending_exits", "order_attempts", "paper_orders", "paper_marks",
                  "paper_trades", "paper_positions", "feed_offsets", "market_1s")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """What the command line adds to the settings."""

    exit_at_end: bool = False
    reset: bool = False
    status_line: bool = True  # False: print no status lines (a backtest draws a progress bar instead)
    progress: Callable[[int], None] | None = None  # each serve tick: the replay feed's last delivered offset


def resolve_database(settings: Settings) -> str:
    """``DATABASE_URL``, or the embedded server (started or reused)."""
    if settings.database.url is not None:
        return settings.database.url.reveal()
    return embedded.start(settings.database.embedded_pg_dir)


def run_system(settings: Settings, options: RunOptions, out: TextIO) -> int:
    """Run until Ctrl-C, the end of the recording (``exit_at_end``) or a give-up; the exit code."""
    dump_stacks_on()  # kill -USR1: what is every thread doing? (see otp.signals)
    db_url = resolve_database(settings)
    try:
        applied = migrate(db_url)
        lock_conn = connect(db_url, autocommit=True, application_name="root")
    except DatabaseError as exc:  # classified by persistence; at start it is one line for the operator
        print(f"error: {_database_problem(settings, exc)}", file=out)
        return EXIT_FAILED
    if applied:
        log.info("applied migrations %s", applied)
    try:
        if not runtime.try_lock_system(lock_conn):
            holder = runtime.system_lock_holder(lock_conn)
            print(f"error: another system is already running on this database (backend pid {holder});"
                  " stop it first or use another DATABASE_URL / EMBEDDED_PG_DIR", file=out)
            return EXIT_ALREADY_RUNNING
        return _Root(settings, options, db_url, lock_conn, out).run()
    finally:
        lock_conn.close()


def discard_runtime_mode(cur: psycopg.Cursor, configured: TradeMode) -> str | None:
    """At system start, in the caller's transaction: drop the mode requested at run time (``ctl mode`` /
    ``/mode``), so the configured ``TRADE_MODE`` governs; record an event and an alert. What was
    discarded, as one line for the log, or ``None``."""
    discarded = control.discard_runtime_mode(cur)
    if discarded is None:
        return None
    value, by, at = discarded
    text = (f"TRADE_MODE={configured.value} governs this start; the runtime mode {value!r} set by {by} at "
            f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC was discarded")
    execution_state.event(cur, "mode_discarded", {"mode": value, "by": by, "at": at.isoformat(),
                                                  "configured": configured.value})
    alerts.enqueue(cur, kind="mode", level="warning" if value != configured.value else "info", text=text)
    return text


def reset_refused(settings: Settings, conn: psycopg.Connection) -> str | None:
    """Why ``--reset`` must not run here, or ``None``. It forgets the paper book, the attempts and
    their fills: only the sandbox replay may do that, never a system that may trade live (its
    ledger of real fills would be lost, and reconciliation with it)."""
    if settings.feed.source.value != "replay":
        return "it only applies to the sandbox replay (FEED_SOURCE=replay)"
    if settings.execution.live_trading:
        return "LIVE_TRADING=true: a system that may trade live never forgets its orders"
    with translated():
        row = conn.execute("SELECT count(*) FROM order_attempts WHERE mode = 'live'").fetchone()
    if row is not None and row[0]:
        return (f"the database holds {row[0]} live order attempt(s): their fills are our ledger of real money; "
                "use a new database (DATABASE_URL / EMBEDDED_PG_DIR) for a fresh sandbox")
    return None


def _database_problem(settings: Settings, exc: DatabaseError) -> str:
    """One line naming the database (password masked) and what it answered, for an error at start."""
    url = settings.database.url
    where = f"DATABASE_URL={url.masked}" if url is not None else \
        f"the embedded PostgreSQL in {settings.database.embedded_pg_dir}"
    verb = "is unreachable" if isinstance(exc, DatabaseUnavailable) else "refused the start-up"
    detail = " ".join(SecretFilter(settings).redact(str(exc)).split())
    return f"the database {verb} ({where}): {detail}"


def reset_sandbox(conn: psycopg.Connection) -> None:
    """Forget the sandbox's progress: bars, offsets, paper book, attempts and the execution cursor."""
    with translated(), conn.transaction():
        conn.execute(f"TRUNCATE {', '.join(SANDBOX_TABLES)} RESTART IDENTITY CASCADE")
        conn.execute("DELETE FROM consumer_cursors WHERE consumer = %s", (EXECUTION_CONSUMER,))


class _Root:
    def __init__(self, settings: Settings, options: RunOptions, db_url: str, conn: psycopg.Connection,
                 out: TextIO) -> None:
        self.settings = settings
        self.options = options
        self.db_url = db_url
        self.conn = conn
        self.out = out
        self.stop = threading.Event()
        self.gave_up = threading.Event()
        self.drained = threading.Event()
        self.nodes: dict[str, _NodeState] = {}
        self._idle_since: float | None = None
        self._exits_since: float | None = None
        self._exits_noted = False
        self.started_at = datetime.now(UTC)
        self.sink = EventSink(db_url, node="root", hook=self._on_node_event)
        self.commands = CommandHandler(restart_node=self._restart_node, crash_actor=self._crash_actor,
                                       actor_nodes=_actor_nodes)
        self._replies: dict[int, tuple[threading.Event, list[Outcome]]] = {}
        self._request_ids = itertools.count(1)
        self.sup = Supervisor(
            name="root",
            flags=SupervisorFlags(strategy=Strategy.ONE_FOR_ONE, intensity=settings.supervision.root_intensity,
                                  period=settings.supervision.root_period_s),
            specs=[self._node_spec(name, strategy) for name, strategy in NODES],
            clock=SystemClock(),
            on_event=self.sink.record,
            on_exit=self._on_give_up,
            backoff=Backoff(),
            # a node that dies while the database is down waits for it instead of burning the intensity
            dependencies={"database": prober(db_url)},
            assume_dependency="database",
        )

    def _node_spec(self, name: str, strategy: Strategy) -> ChildSpec:
        payload = NodePayload(settings=self.settings, db_url=self.db_url, strategy=strategy)
        return ChildSpec(
            id=name,
            start=process_child(target=node_main, payload=payload, start_timeout=self.settings.supervision.node_start_timeout_s,
                                on_message=self._on_node_message, heartbeat_timeout=NODE_HANG_TIMEOUT_S),
            restart=Restart.PERMANENT,
            shutdown=self.settings.supervision.shutdown_timeout_s * 4,  # the node stops its actors within their own timeouts
        )

    def run(self) -> int:
        if self.options.reset:
            refused = reset_refused(self.settings, self.conn)
            if refused is not None:
                print(f"error: --reset refused: {refused}", file=self.out)
                return EXIT_FAILED
            reset_sandbox(self.conn)
            log.info("sandbox progress reset")
        self._discard_runtime_mode()
        with translated():
            runtime.clear(self.conn)
            self._heartbeat()
            alerts.enqueue(self.conn, kind="system", level="info",
                           text=f"system starting: {describe_mode(self.settings)}")
        status = StatusLine(out=self.out)
        dashboard = self._start_dashboard()
        try:
            # until the nodes are being stopped: a second Ctrl-C then interrupts the stop itself
            with SignalRelay((signal.SIGINT, signal.SIGTERM), lambda _signum: self.stop.set()):
                try:
                    self.sup.start()
                except Exception as exc:  # noqa: BLE001 - reported, then a clean non-zero exit
                    log.error("the system failed to start: %s", exc)
                    return EXIT_FAILED
                log.info("system running: %s", describe_mode(self.settings))
                self._serve(status)
        finally:
            if self.sup.state not in {SupervisorState.STOPPED, SupervisorState.GAVE_UP}:
                self._alert_stopping()
                log.info("stopping nodes in reverse start order")
                self.sup.stop()
            self._final(status)
            if dashboard is not None:
                dashboard.stop()
        if self.gave_up.is_set():
            log.critical("root supervisor gave up: restart intensity exceeded (%d in %.0f s)",
                         self.settings.supervision.root_intensity, self.settings.supervision.root_period_s)
            return EXIT_FAILED
        return EXIT_OK

    def _discard_runtime_mode(self) -> None:
        """The configured TRADE_MODE governs at every start: a mode set at run time is dropped (and said)."""
        with translated(), self.conn.transaction(), self.conn.cursor() as cur:
            text = discard_runtime_mode(cur, self.settings.trade_mode)
        if text is not None:
            log.warning("%s", text)

    def _start_dashboard(self) -> DashboardServer | None:
        """The read-only status page; trading never depends on it, so a taken port is an alert, not a stop."""
        if not self.settings.dashboard_port:
            return None
        dashboard = DashboardServer(self.db_url, host=self.settings.dashboard_host, port=self.settings.dashboard_port,
                                    redact=SecretFilter(self.settings).redact, token=self.settings.dashboard_token)
        try:
            dashboard.start()
        except OSError as exc:
            log.error("dashboard not started on %s:%s: %s", self.settings.dashboard_host,
                      self.settings.dashboard_port, exc)
            with translated():
                alerts.enqueue(self.conn, kind="dashboard", level="warning", text=f"dashboard not started: {exc}")
            return None
        needs = " (token required: open it once with ?token=<DASHBOARD_TOKEN>)" if self.settings.dashboard_token else ""
        print(f"dashboard: {dashboard.url}{needs}", file=self.out, flush=True)
        return dashboard

    def _serve(self, status: StatusLine) -> None:
        next_status = time.monotonic() + self.settings.status_interval_s
        while not self.stop.is_set() and not self.gave_up.is_set():
            self.stop.wait(0.2)
            try:
                children: list[ChildInfo] | None = self.sup.which_children(timeout=1)
            except SupervisorError as exc:  # busy restarting a node, or terminated: keep the heartbeat going
                log.debug("root supervisor did not answer: %s", exc)
                children = None
            try:
                with translated():
                    self._heartbeat(children)
                    if children is None:
                        continue
                    if self.options.progress is not None:
                        self.options.progress(_feed_offset(self.conn))
                    if self.options.status_line and time.monotonic() >= next_status:
                        status.print(self.conn, [(c.id, _state(c)) for c in children])
                        next_status = time.monotonic() + self.settings.status_interval_s
                    self.commands.handle_pending(self.conn)
                    daily_summary(self.conn)
                    if self.options.exit_at_end and self.drained.is_set() and self._downstream_idle():
                        log.info("recording exhausted and everything downstream drained: stopping")
                        return
            except DatabaseError as exc:
                log.error("the root lost its database connection: %s", exc)
                if not self._reconnect():
                    return

    def _alert_stopping(self) -> None:
        """Say why the system stops while the notifier still runs (undelivered: kept for the next start)."""
        why = "the recording is exhausted" if self.drained.is_set() and self.options.exit_at_end else "asked to stop"
        try:
            with translated():
                alerts.enqueue(self.conn, kind="system", level="info", text=f"system stopping: {why}")
        except DatabaseError as exc:
            log.error("could not record the stop alert: %s", exc)

    def _reconnect(self) -> bool:
        """Reconnect and take the system lock again; False if another system took it meanwhile."""
        try:
            self.conn.close()
            self.conn = connect(self.db_url, autocommit=True, application_name="root")
            with translated():
                if runtime.try_lock_system(self.conn):
                    log.info("root reconnected to the database and holds the system lock again")
                    return True
        except DatabaseError as exc:
            log.error("database still unavailable to the root: %s", exc)
            self.stop.wait(1.0)
            return True  # keep supervising; the nodes' own connections recover on their own
        log.critical("another system took the database's system lock while we were disconnected: stopping")
        return False

    def _downstream_idle(self) -> bool:
        """Execution has an attempt for every paper trade, and the alert outbox is empty — or has
        stayed undeliverable (Telegram down) for ``ALERT_DRAIN_S`` after everything else was done:
        those alerts stay in the outbox for the next start instead of holding the exit forever."""
        row = self.conn.execute("SELECT coalesce(max(id), 0) FROM paper_trades").fetchone()
        last_trade = int(row[0]) if row else 0
        if cursors.get(self.conn, EXECUTION_CONSUMER) < last_trade:
            return False
        row = self.conn.execute("SELECT count(*) FROM order_attempts WHERE NOT final").fetchone()
        if row is not None and row[0]:
            return False  # an order whose outcome is not final yet: resolve and follow it first
        row = self.conn.execute("SELECT count(*) FROM pending_exits WHERE resolved_at IS NULL").fetchone()
        waiting = int(row[0]) if row else 0
        if waiting:  # exits retried with backoff: give them a while, then leave them pending for the next start
            if self._exits_since is None:
                self._exits_since = time.monotonic()
            if time.monotonic() - self._exits_since < PENDING_EXIT_DRAIN_S:
                return False
            if not self._exits_noted:
                log.warning("%d exit(s) still pending after %.0f s; they stay pending (and are retried) at the next "
                            "start: ctl status lists them", waiting, PENDING_EXIT_DRAIN_S)
                self._exits_noted = True
        unsent = alerts.count_unsent(self.conn)
        if unsent == 0:
            return True
        if self._idle_since is None:
            self._idle_since = time.monotonic()
        if time.monotonic() - self._idle_since < ALERT_DRAIN_S:
            return False
        log.warning("%d alerts could not be delivered within %.0f s; they stay in the outbox for the next start",
                    unsent, ALERT_DRAIN_S)
        return True

    def _final(self, status: StatusLine) -> None:
        try:
            with translated():
                runtime.upsert_node(self.conn, node="root", pid=os.getpid(),
                                    state="gave_up" if self.gave_up.is_set() else "stopped",
                                    incarnation=1, restarts=0, started_at=self.started_at,
                                    detail={"mode": describe_mode(self.settings)})
                if self.options.status_line:
                    status.print(self.conn, [(name, "gave_up" if self.gave_up.is_set() else "stopped")
                                             for name, _s in NODES], final=True)
        except DatabaseError as exc:
            log.error("could not record the final state: %s", exc)
        self.sink.close()
        self.conn.close()  # releases the system lock

    def _heartbeat(self, children: list[ChildInfo] | None = None) -> None:
        runtime.upsert_node(self.conn, node="root", pid=os.getpid(), state="running", incarnation=1, restarts=0,
                            started_at=self.started_at, detail={"mode": describe_mode(self.settings)})
        for info in children or ():
            node = self.nodes.get(info.id, _NodeState())
            if info.handle == "restarting":
                state, pid = "restarting", None
            elif info.handle is None:
                state, pid = "down", None
            else:
                state, pid = "running", info.handle.describe().get("pid")
            runtime.upsert_node(self.conn, node=info.id, pid=pid, state=state, incarnation=info.incarnation,
                                restarts=node.restarts, started_at=node.started_at,
                                detail={"last_exit": node.last_exit} if node.last_exit else {})

    def _on_give_up(self, reason: ExitReason) -> None:
        if self.sup.state is SupervisorState.GAVE_UP:
            self.gave_up.set()
        self.stop.set()

    def _restart_node(self, node: str) -> None:
        self.sup.terminate_child(node)
        self.sup.restart_child(node)

    def _crash_actor(self, node: str, actor: str, note: str) -> Outcome:
        handle = self.sup.lookup(node)
        if not isinstance(handle, ProcessHandle):
            return Outcome(ok=False, text=f"node {node} is not running")
        request_id = next(self._request_ids)
        done, answer = threading.Event(), list[Any]()
        self._replies[request_id] = (done, answer)
        try:
            if not handle.send(("crash_actor", actor, note, request_id)) or not done.wait(REQUEST_TIMEOUT_S):
                return Outcome(ok=False, text=f"node {node} did not answer")
            return answer[0]
        finally:
            self._replies.pop(request_id, None)

    def _on_node_message(self, node: str, incarnation: int, message: tuple) -> None:
        if message[0] == "crash_actor_result" and len(message) == 4:
            waiting = self._replies.get(message[1])
            if waiting is not None:
                waiting[1].append(Outcome(ok=bool(message[2]), text=str(message[3])))
                waiting[0].set()
            return
        if message[0] == "drained" and node == "market":
            log.info("market node drained the recording (last offset %s)", message[1] if len(message) > 1 else "?")
            self.drained.set()

    def _on_node_event(self, conn: psycopg.Connection, event: SupervisorEvent) -> None:
        """Remember node starts and exits, and raise alerts for what an operator must know.

        Runs on the supervisor's thread: it must not call the supervisor's API.
        """
        if event.supervisor != "root" or event.child_id is None:
            if event.kind is EventKind.GAVE_UP and event.supervisor == "root":
                alerts.enqueue(conn, kind="escalation", level="critical",
                               text=f"root supervisor gave up: {event.reason}; the system is stopping")
            return
        node = self.nodes.setdefault(event.child_id, _NodeState())
        if event.kind is EventKind.STARTED:
            node.started_at = event.at
            node.incarnation = event.incarnation or node.incarnation
            node.last_exit = ""
            handle = self.sup.lookup(event.child_id)  # a table read: safe on the supervisor's thread
            pid = handle.describe().get("pid") if isinstance(handle, ProcessHandle) else None
            runtime.upsert_node(conn, node=event.child_id, pid=pid, state="running", incarnation=node.incarnation,
                                restarts=node.restarts, started_at=node.started_at)
        elif event.kind is EventKind.EXITED:
            node.started_at = None
            node.last_exit = str(event.reason or "")
            # at once, not at the next heartbeat: the root may be busy restarting it for a while
            runtime.upsert_node(conn, node=event.child_id, pid=None, state="down",
                                incarnation=event.incarnation or node.incarnation, restarts=node.restarts,
                                started_at=None, detail={"last_exit": node.last_exit})
            if event.reason is not None and event.reason.abnormal:
                alerts.enqueue(conn, kind="node_exit", level="warning",
                               text=f"node {event.child_id} (incarnation {event.incarnation}) exited: {event.reason}")
        elif event.kind is EventKind.RESTARTING:
            node.restarts += 1


@dataclass(slots=True)
class _NodeState:
    """What the root tracks per node for ``runtime_nodes``."""

    incarnation: int = 0
    restarts: int = 0
    started_at: datetime | None = None
    last_exit: str = ""


def _feed_offset(conn: psycopg.Connection) -> int:
    """The feed actor's last delivered offset as its node last reported it (-1: nothing yet)."""
    row = conn.execute("SELECT counters->>'offset' FROM runtime_actors WHERE actor = 'feed'").fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def daily_summary(conn: psycopg.Connection) -> bool:
    """Once per UTC day, an alert summing up the last 24 hours; True when one was raised.

    The day already summed up is a system flag, so restarts never send a second one; the first
    day the system runs only records the date.
    """
    today = one_row(conn, "SELECT (now() AT TIME ZONE 'UTC')::date::text")[0]
    last = control.flags(conn).get("daily_summary_date")
    if last == today:
        return False
    with conn.transaction():
        control.set_flag(conn, "daily_summary_date", today, "root")
        if last is None:
            return False
        trades = one_row(conn,
            "SELECT count(*), count(*) FILTER (WHERE side = 'buy'), coalesce(sum(realized_pnl), 0),"
            " coalesce(sum(fee_krw), 0) FROM paper_trades WHERE created_at > now() - interval '24 hours'")
        statuses = conn.execute("SELECT status, count(*) FROM order_attempts WHERE created_at > now() - interval"
                                " '24 hours' GROUP BY status ORDER BY status").fetchall()
        restarts = one_row(conn, "SELECT count(*) FROM supervisor_events WHERE kind = 'restarting'"
                                 " AND at > now() - interval '24 hours'")[0]
        held = conn.execute("SELECT market, volume FROM paper_positions WHERE volume > 0 ORDER BY market").fetchall()
        text = (f"daily summary up to {today} 00:00 UTC: {trades[0]} paper trades ({trades[1]} entries), realised PnL "
                f"{trades[2]:+,.0f} KRW, fees {trades[3]:,.0f} KRW; attempts "
                f"{', '.join(f'{s} {n}' for s, n in statuses) or 'none'}; restarts {restarts}; open positions "
                f"{', '.join(f'{m} {v.normalize()}' for m, v in held) or 'none'}")
        alerts.enqueue(conn, kind="daily_summary", level="info", text=text)
    return True


def _actor_nodes(conn: psycopg.Connection) -> dict[str, str]:
    """actor → node, from what the nodes report."""
    return {actor: node for node, actor in conn.execute("SELECT node, actor FROM runtime_actors").fetchall()}


def _state(info: ChildInfo) -> str:
    if info.handle == "restarting":
        return "restarting"
    return "down" if info.handle is None else "running"


def describe_mode(settings: Settings) -> str:
    """One line on what this system does with market data and orders."""
    if settings.feed.source.value == "replay":
        speed = "max" if settings.replay_speed is None else f"{settings.replay_speed:g}x"
        what = settings.replay.file.name if settings.replay.file else settings.replay.source.value
        feed = f"sandbox replay of {what} at {speed}"
    else:
        feed = f"live Upbit trades for {','.join(settings.feed.markets)}"
    return f"{feed}; paper trading; execution {settings.trade_mode.value}"

