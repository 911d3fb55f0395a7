"""The injectors: each fault kind done to the running system, and its recovery watched.

Every injector records when the fault went in (``injected_at``), what exactly was done
(``detail``: pid and signal, the control command's answer, the outage length …) and then waits,
bounded, for recovery — measured two ways where both exist:

- ``restart_s``: injection → the supervisor's ``started`` event of the new incarnation (a node
  at the root for kill/hang, the actor in its node for crash), to the millisecond;
- ``recovery_s``: injection → the affected actors *processing again*: every actor of the
  affected set that was processing before the fault (a message within ``ACTIVE_WINDOW_S``) has
  taken a message after it (``runtime_actors.last_message_at``, which nodes report once a
  second, so this figure is the coarser one); for a Telegram outage, the first alert Telegram
  accepted after it came back; for an exchange fault, the first order attempt that succeeded.

What each kind does:

- ``kill``: SIGKILL to the node's pid (``runtime_nodes``);
- ``crash``: ``ctl restart <node>/<actor>`` (a ``Crash`` message: the actor raises and its
  node's supervisor restarts it per its strategy — in the market node, the actors after it too);
- ``hang``: SIGSTOP to the node's pid; the root must find it hung and kill it. If the node is
  not restarted within ``hang_bound_s`` the drill sends SIGCONT and reports *not detected*;
- ``db``: the drill's own PostgreSQL is stopped (fast shutdown) and started again on the same
  socket after ``duration_s``;
- ``telegram``: the stub Bot API answers 502 to everything for ``duration_s``;
- ``exchange``: the simulated Upbit fails the next order requests (500 or 429), accepts orders
  and drops the answer, or lists new orders late (``lookup_lag``) for a while;
- ``outage``: the simulated Upbit refuses every order request (503) for ``duration_s`` and
  then until an exit could not go out (at most ``OUTAGE_BOUND_S`` more), long enough to open the
  order breaker: that exit must stay pending, then execute. Recovered when an attempt succeeds
  after it and no live exit is pending any more;
- ``foreign``: the next order request finds its identifier already taken by another order of
  the account (``identifier_taken``). Execution must refuse to adopt it, set the kill switch and
  alert; the drill then acts as the operator who checked: ``ctl killswitch off``. Recovered when
  an attempt succeeds after that;
- ``mode``: ``ctl mode <the drill's mode>`` (a runtime request), then the whole system is
  stopped (SIGTERM) and started with ``TRADE_MODE`` set to the fault's target (shadow or test)
  for ``duration_s``, then stopped and started in the drill's mode again. The runtime request
  must be discarded at the restart, and no attempt may reach a mode above the configured one
  meanwhile (the fault's detail counts them; any is a failure of the ``recovery`` check).
"""

from __future__ import annotations

import io
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tools.drill.plan import Fault

log = logging.getLogger(__name__)

POLL_S = 0.1
ACTIVE_WINDOW_S = 10.0
RECOVERY_BOUND_S = 60.0
LOOKUP_LAG_ARMED_S = 5.0
OUTAGE_BOUND_S = 60.0  # an exchange outage lasts at least its duration, and until an exit became pending (at most this)
MARKET_ORDER = ("paper", "strategy", "bar", "feed")  # the market node's start order (rest_for_one)
OK_ATTEMPTS = ("test_ok", "done", "cancelled")


@dataclass(slots=True, kw_only=True)
class FaultResult:
    """What happened to one planned fault."""

    fault: Fault
    status: str = "pending"  # injected | skipped | not_reached
    reason: str = ""  # why skipped / not reached
    injected_at: datetime | None = None
    progress: float | None = None  # the run's actual progress when it went in
    held_s: float = 0.0  # held back so as not to push the root past its restart intensity
    detail: str = ""
    detected: bool | None = None  # hang: did the root find it?
    outage_s: float | None = None  # for outages (db, telegram, lookup lag, an undetected hang): how long
    restart_s: float | None = None
    recovery_s: float | None = None  # from injection, outage included
    recovered_at: datetime | None = None
    affected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.fault.as_dict(), "status": self.status, "reason": self.reason,
                "injected_at": self.injected_at.isoformat() if self.injected_at else None,
                "progress": None if self.progress is None else round(self.progress, 4),
                "held_s": round(self.held_s, 3), "detail": self.detail, "detected": self.detected,
                "outage_s": _round(self.outage_s), "restart_s": _round(self.restart_s),
                "recovery_s": _round(self.recovery_s),
                "recovered_at": self.recovered_at.isoformat() if self.recovered_at else None,
                "affected": self.affected}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Observer:
    """Reads the drill run's database; reconnects after an outage, answers None while it lasts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]] | None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2,
                                             application_name="drill-observer")
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error:
            self.close()
            return None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def bars(self) -> int | None:
        rows = self.rows("SELECT count(*) FROM market_1s")
        return None if rows is None else int(rows[0][0])

    def node(self, node: str) -> tuple[int | None, str, int] | None:
        """``(pid, state, incarnation)`` of a node as the root last wrote it."""
        rows = self.rows("SELECT pid, state, incarnation FROM runtime_nodes WHERE node = %s", (node,))
        return None if not rows else (rows[0][0], rows[0][1], int(rows[0][2]))

    def actors(self) -> dict[str, tuple[str, int, int, datetime | None]] | None:
        """``node/actor`` → ``(state, incarnation, processed, last_message_at)``."""
        rows = self.rows("SELECT node, actor, state, incarnation, processed, last_message_at FROM runtime_actors")
        return None if rows is None else {f"{r[0]}/{r[1]}": (r[2], int(r[3]), int(r[4]), r[5]) for r in rows}

    def first_event(self, supervisor: str, kind: str, child_id: str, after: datetime) -> datetime | None:
        rows = self.rows("SELECT min(at) FROM supervisor_events WHERE supervisor = %s AND kind = %s"
                         " AND child_id = %s AND at > %s", (supervisor, kind, child_id, after))
        return None if not rows else rows[0][0]

    def incarnations(self) -> int | None:
        """Node start attempts so far (the sum of the nodes' incarnations, as the root last wrote them)."""
        rows = self.rows("SELECT coalesce(sum(incarnation), 0) FROM runtime_nodes WHERE node <> 'root'")
        return None if rows is None else int(rows[0][0])

    def restarts_since(self, after: datetime) -> int | None:
        rows = self.rows("SELECT count(*) FROM supervisor_events WHERE supervisor = 'root' AND kind = 'restarting'"
                         " AND at > %s", (after,))
        return None if rows is None else int(rows[0][0])

    def first_ok_attempt(self, after: datetime) -> datetime | None:
        rows = self.rows("SELECT min(updated_at) FROM order_attempts WHERE status = ANY(%s) AND created_at > %s",
                         (list(OK_ATTEMPTS), after))
        return None if not rows else rows[0][0]


@dataclass(slots=True, kw_only=True)
class Context:
    """Everything the injectors touch."""

    observer: Observer
    alive: Callable[[], bool]  # the drill run's root process still runs
    crash_actor: Callable[[str], tuple[bool, str]]  # ctl restart node/actor → (done, answer)
    stop_database: Callable[[], None] | None  # None: the drill does not own the server
    start_database: Callable[[], None] | None
    telegram_down: Callable[[], None]
    telegram_up: Callable[[], None]
    telegram_received_after: Callable[[float], float | None]  # time.time() → first accepted message's time
    sim_faults: Any | None  # upbit_sim Faults of the simulator, when orders go to it
    ctl: Callable[[str, dict[str, str]], tuple[bool, str]] | None = None  # a control command → (done, answer)
    restart_system: Callable[[str], None] | None = None  # stop the system, start it with TRADE_MODE=mode
    drill_mode: str = "shadow"  # the drill run's own TRADE_MODE
    hang_bound_s: float = 15.0
    recovery_bound_s: float = RECOVERY_BOUND_S


def now() -> datetime:
    return datetime.now(UTC)


def inject(fault: Fault, ctx: Context, result: FaultResult) -> None:
    """Do ``fault`` and wait (bounded) for recovery, filling in ``result``."""
    handler = {"kill": _kill, "crash": _crash, "hang": _hang, "db": _db, "telegram": _telegram,
               "exchange": _exchange, "outage": _outage, "foreign": _foreign, "mode": _mode}[fault.kind]
    handler(fault, ctx, result)


def skip_reason(fault: Fault, *, orders: str, owns_database: bool) -> str | None:
    """Why this fault cannot be injected in this drill (None: it can)."""
    if fault.kind == "ws":
        return ("the drill's feed is the sandbox replay of the recording, which uses no WebSocket (a drill of the "
                "live feed against the simulator's WebSocket is not implemented)")
    if fault.kind == "db" and not owns_database:
        return "DATABASE_URL is set: the drill never stops a server it did not start"
    if fault.kind in ("exchange", "outage", "foreign") and orders == "shadow":
        return "shadow execution sends nothing to an exchange (use --orders test or live)"
    if fault.kind in ("outage", "foreign") and orders != "live":
        return "only live orders are kept pending and adopted (use --orders live)"
    if fault.kind == "mode" and orders == fault.target:
        return f"the drill already runs in {orders} mode"
    return None


# --- kinds -----------------------------------------------------------------------------------

def _signal_node(ctx: Context, result: FaultResult, node: str, sig: signal.Signals) -> tuple[int, int] | None:
    """Send ``sig`` to ``node``'s process if it is running: its (pid, incarnation), or None with the
    fault marked skipped. ``result.injected_at`` is the moment just before the signal."""
    before = ctx.observer.node(node)
    pid, state, incarnation = before if before is not None else (None, None, 0)
    if pid is None or state != "running":
        result.status, result.reason = "skipped", f"node {node} was not running ({before})"
        return None
    result.injected_at = now()
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        result.status, result.reason = "skipped", f"node {node} (pid {pid}) was already gone"
        return None
    return pid, incarnation


def _kill(fault: Fault, ctx: Context, result: FaultResult) -> None:
    node = fault.target
    affected = _active(ctx, [node])
    sent = _signal_node(ctx, result, node, signal.SIGKILL)
    if sent is None:
        return
    pid, incarnation = sent
    result.status, result.detail, result.affected = "injected", f"SIGKILL to node {node} (pid {pid})", affected
    _await_node_recovery(ctx, result, node, incarnation)


def _hang(fault: Fault, ctx: Context, result: FaultResult) -> None:
    node = fault.target
    affected = _active(ctx, [node])
    sent = _signal_node(ctx, result, node, signal.SIGSTOP)
    if sent is None:
        return
    pid, incarnation = sent
    injected = result.injected_at
    assert injected is not None
    result.status, result.affected = "injected", affected
    deadline = time.monotonic() + ctx.hang_bound_s
    while time.monotonic() < deadline and ctx.alive():
        state = ctx.observer.node(node)
        if state is not None and state[2] > incarnation:
            break
        time.sleep(POLL_S)
    state = ctx.observer.node(node)
    if state is not None and state[2] > incarnation:
        result.detected = True
        result.detail = f"SIGSTOP to node {node} (pid {pid}); the root found it hung and restarted it"
        _await_node_recovery(ctx, result, node, incarnation)
        return
    result.detected = False
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    waited = result.outage_s = (now() - injected).total_seconds()
    result.detail = (f"SIGSTOP to node {node} (pid {pid}); NOT DETECTED: still the same incarnation after "
                     f"{waited:.1f} s, so the drill sent SIGCONT")
    _await_processing(ctx, result, affected, after=injected, restarted=None)


def _crash(fault: Fault, ctx: Context, result: FaultResult) -> None:
    node, _, actor = fault.target.partition("/")
    actors = ctx.observer.actors() or {}
    if fault.target not in actors or actors[fault.target][0] != "running":
        result.status, result.reason = "skipped", f"actor {fault.target} was not running"
        return
    if node == "market" and actor in MARKET_ORDER:
        group = [f"market/{a}" for a in MARKET_ORDER[MARKET_ORDER.index(actor):]]
    else:
        group = [fault.target]
    before = {a: actors[a][1] for a in group if a in actors}
    active = set(_active(ctx, [node]))
    result.injected_at = injected = now()
    done, answer = ctx.crash_actor(fault.target)
    result.detail = f"ctl restart {fault.target}: {answer}"
    if not done:
        result.status, result.reason = "skipped", f"the control command was refused: {answer}"
        return
    result.status, result.affected = "injected", group
    deadline = time.monotonic() + ctx.recovery_bound_s
    restarted_at = None
    while time.monotonic() < deadline and ctx.alive():
        restarted_at = restarted_at or ctx.observer.first_event(node, "started", actor, injected)
        current = ctx.observer.actors()
        if restarted_at is not None and current is not None:
            ready = [a for a in group if a in current and current[a][0] == "running" and current[a][1] > before.get(a, 0)
                     and (a not in active or ((last := current[a][3]) is not None and last > injected))]
            if len(ready) == len(group):
                lasts = [last for a in group if a in active and (last := current[a][3]) is not None]
                _recovered(result, max([restarted_at, *lasts]))
                break
        time.sleep(POLL_S)
    if restarted_at is not None:
        result.restart_s = (restarted_at - injected).total_seconds()


def _db(fault: Fault, ctx: Context, result: FaultResult) -> None:
    if ctx.stop_database is None or ctx.start_database is None:
        result.status, result.reason = "skipped", "the drill does not own the database server"
        return
    affected = _active(ctx, ["ops", "execution", "market"])
    result.injected_at = now()
    try:
        ctx.stop_database()
    except Exception as exc:  # noqa: BLE001 - pg_ctl's failure is reported as the fault's outcome
        result.status, result.reason = "skipped", f"could not stop PostgreSQL: {exc}"
        return
    down_at = time.monotonic()
    result.status, result.affected = "injected", affected
    time.sleep(max(0.0, fault.duration_s - (time.monotonic() - down_at)))  # the outage itself
    ctx.start_database()
    outage = result.outage_s = time.monotonic() - down_at
    back = now()
    result.detail = f"PostgreSQL stopped (fast) and started again on the same socket after {outage:.1f} s"
    _await_processing(ctx, result, affected, after=back, restarted=None)


def _telegram(fault: Fault, ctx: Context, result: FaultResult) -> None:
    result.injected_at = now()
    ctx.telegram_down()
    result.status, result.affected = "injected", ["ops/notifier"]
    time.sleep(fault.duration_s)  # the outage itself
    ctx.telegram_up()
    back = time.time()
    result.outage_s = (now() - result.injected_at).total_seconds()
    result.detail = f"the Telegram Bot API answered 502 to everything for {fault.duration_s:g} s"
    deadline = time.monotonic() + ctx.recovery_bound_s
    while time.monotonic() < deadline and ctx.alive():
        accepted = ctx.telegram_received_after(back)
        if accepted is not None:
            _recovered(result, datetime.fromtimestamp(accepted, UTC))
            return
        time.sleep(POLL_S)


def _exchange(fault: Fault, ctx: Context, result: FaultResult) -> None:
    faults = ctx.sim_faults
    if faults is None:
        result.status, result.reason = "skipped", "no simulated exchange in this drill"
        return
    result.injected_at = injected = now()
    variant = fault.target
    if variant == "fail_500":
        faults.fail_next(fault.count, 500, path="/v1/orders", method="POST")
        result.detail = f"the next {_requests(fault.count)} answered with HTTP 500"
    elif variant == "fail_429":
        faults.fail_next(fault.count, 429, path="/v1/orders", method="POST")
        result.detail = f"the next {_requests(fault.count)} answered with HTTP 429"
    elif variant == "drop_after_accept":
        faults.drop_after_accept(fault.count, path="/v1/orders", method="POST")
        result.detail = f"the next {_requests(fault.count)} carried out, the answer dropped"
    else:
        faults.lookup_lag(fault.duration_s)
        result.detail = f"new orders invisible to lookups for {fault.duration_s:g} s, for {LOOKUP_LAG_ARMED_S:g} s"
    result.status, result.affected = "injected", ["execution/execution"]
    if variant == "lookup_lag":
        time.sleep(LOOKUP_LAG_ARMED_S)
        faults.lookup_lag(0)
    deadline = time.monotonic() + ctx.recovery_bound_s
    while time.monotonic() < deadline and ctx.alive():
        ok = ctx.observer.first_ok_attempt(injected + timedelta(milliseconds=1))
        if ok is not None:
            _recovered(result, ok)
            return
        time.sleep(POLL_S)


def _outage(fault: Fault, ctx: Context, result: FaultResult) -> None:
    faults = ctx.sim_faults
    if faults is None:
        result.status, result.reason = "skipped", "no simulated exchange in this drill"
        return
    result.injected_at = injected = now()
    faults.fail_next(1_000_000, 503, path="/v1/orders", method="POST")
    result.status, result.affected = "injected", ["execution/execution"]
    time.sleep(fault.duration_s)  # the outage itself …
    bound = time.monotonic() + OUTAGE_BOUND_S
    while time.monotonic() < bound and ctx.alive():  # … lasting until an exit could not go out
        exits = ctx.observer.rows("SELECT count(*) FROM pending_exits WHERE since > %s", (injected,))
        if exits and exits[0][0]:
            break
        time.sleep(POLL_S)
    faults.clear()
    result.outage_s = (now() - injected).total_seconds()
    pending = ctx.observer.rows("SELECT count(*) FROM pending_exits WHERE since > %s", (injected,))
    result.detail = (f"every order request answered 503 for {result.outage_s:.1f} s; "
                     f"{pending[0][0] if pending else '?'} exit(s) became pending meanwhile")
    deadline = time.monotonic() + ctx.recovery_bound_s
    while time.monotonic() < deadline and ctx.alive():
        ok = ctx.observer.first_ok_attempt(injected + timedelta(milliseconds=1))
        waiting = ctx.observer.rows("SELECT count(*) FROM pending_exits WHERE resolved_at IS NULL")
        if ok is not None and waiting is not None and waiting[0][0] == 0:
            _recovered(result, max(ok, now()))
            return
        time.sleep(POLL_S)


def _foreign(fault: Fault, ctx: Context, result: FaultResult) -> None:
    faults = ctx.sim_faults
    if faults is None or ctx.ctl is None:
        result.status, result.reason = "skipped", "no simulated exchange in this drill"
        return
    result.injected_at = injected = now()
    faults.identifier_taken(1)
    result.status, result.affected = "injected", ["execution/execution"]
    deadline = time.monotonic() + ctx.recovery_bound_s
    refused = None
    while time.monotonic() < deadline and ctx.alive():
        refused = ctx.observer.rows("SELECT detail->>'identifier' FROM execution_events WHERE kind = 'adoption_refused'"
                                    " AND at > %s", (injected,))
        if refused:
            break
        time.sleep(POLL_S)
    if not refused:
        result.detail = "the next order request's identifier was taken by a foreign order; execution never noticed"
        return
    done, answer = ctx.ctl("killswitch", {"state": "off"})
    result.detail = (f"identifier {refused[0][0]} was taken by a foreign order: not adopted, kill switch set; the "
                     f"operator checked and ran ctl killswitch off ({'done' if done else 'refused'}: {answer})")
    cleared = now()
    while time.monotonic() < deadline and ctx.alive():
        ok = ctx.observer.first_ok_attempt(cleared)
        if ok is not None:
            _recovered(result, ok)
            return
        time.sleep(POLL_S)


def _mode(fault: Fault, ctx: Context, result: FaultResult) -> None:
    if ctx.restart_system is None or ctx.ctl is None:
        result.status, result.reason = "skipped", "this drill cannot restart the system"
        return
    done, answer = ctx.ctl("mode", {"mode": ctx.drill_mode})
    result.injected_at = injected = now()
    ctx.restart_system(fault.target)
    started = now()  # the previous system has exited: every attempt from here on is the new one's
    result.status, result.affected = "injected", ["execution/execution"]
    spell_end = time.monotonic() + fault.duration_s
    while time.monotonic() < spell_end and ctx.alive():
        time.sleep(POLL_S)
    above = _above(fault.target)
    wrong = ctx.observer.rows("SELECT count(*) FROM order_attempts WHERE created_at > %s AND mode = ANY(%s)",
                              (started, list(above)))
    spelled = ctx.observer.rows("SELECT count(*) FROM order_attempts WHERE created_at > %s", (started,))
    back = now()
    ctx.restart_system(ctx.drill_mode)
    result.outage_s = (back - injected).total_seconds()
    n_wrong = wrong[0][0] if wrong else None
    result.detail = (f"ctl mode {ctx.drill_mode} ({'done' if done else 'refused'}: {answer}), then a restart with "
                     f"TRADE_MODE={fault.target} for {fault.duration_s:g} s: {spelled[0][0] if spelled else '?'} "
                     f"attempts, {n_wrong if n_wrong is not None else '?'} of them in a mode above {fault.target}; "
                     f"then restarted in {ctx.drill_mode}")
    if n_wrong:
        result.detail = "CONFIGURED MODE NOT OBEYED: " + result.detail
        return  # never recovered: the recovery check fails it
    _await_processing(ctx, result, ["execution/execution", "market/paper"], after=back, restarted=None)


def _above(mode: str) -> tuple[str, ...]:
    """The modes ranked above ``mode``."""
    order = ("shadow", "test", "live")
    return order[order.index(mode) + 1:]


def _requests(n: int) -> str:
    return "order request was" if n == 1 else f"{n} order requests were"


# --- recovery --------------------------------------------------------------------------------

def _active(ctx: Context, nodes: list[str]) -> list[str]:
    """The actors of ``nodes`` that processed a message in the last ``ACTIVE_WINDOW_S``."""
    actors = ctx.observer.actors() or {}
    since = now() - timedelta(seconds=ACTIVE_WINDOW_S)
    return sorted(a for a, (state, _inc, processed, last) in actors.items()
                  if a.split("/", 1)[0] in nodes and state == "running" and processed > 0
                  and last is not None and last > since)


def _await_node_recovery(ctx: Context, result: FaultResult, node: str, incarnation: int) -> None:
    assert result.injected_at is not None
    injected = result.injected_at
    deadline = time.monotonic() + ctx.recovery_bound_s
    restarted_at = None
    while time.monotonic() < deadline and ctx.alive():
        state = ctx.observer.node(node)
        if state is not None and state[2] > incarnation and state[1] == "running":
            restarted_at = ctx.observer.first_event("root", "started", node, injected)
            if restarted_at is not None:
                break
        time.sleep(POLL_S)
    if restarted_at is None:
        return
    result.restart_s = (restarted_at - injected).total_seconds()
    _await_processing(ctx, result, result.affected, after=injected, restarted=restarted_at)


def _await_processing(ctx: Context, result: FaultResult, affected: list[str], *, after: datetime,
                      restarted: datetime | None) -> None:
    """Wait until every actor in ``affected`` took a message after ``after``."""
    assert result.injected_at is not None
    deadline = time.monotonic() + ctx.recovery_bound_s
    while time.monotonic() < deadline and ctx.alive():
        actors = ctx.observer.actors()
        if actors is not None:
            lasts = [last for a in affected if a in actors and actors[a][0] == "running"
                     and (last := actors[a][3]) is not None and last > after]
            if len(lasts) == len(affected):
                _recovered(result, max([*lasts, *( [restarted] if restarted else []), after]))
                return
        time.sleep(POLL_S)


def _recovered(result: FaultResult, at: datetime) -> None:
    assert result.injected_at is not None
    result.recovered_at = at
    result.recovery_s = max(0.0, (at - result.injected_at).total_seconds())


def crash_with_ctl(settings: Any) -> Callable[[str], tuple[bool, str]]:
    """``ctl restart node/actor`` in-process (the product's own control path), as the drill user."""
    command = ctl_command(settings)
    return lambda target: command("restart", {"target": target})


def ctl_command(settings: Any) -> Callable[[str, dict[str, str]], tuple[bool, str]]:
    """Any ``ctl`` command in-process (the product's own control path), as the drill user."""
    from tools import ctl

    def send(command: str, args: dict[str, str]) -> tuple[bool, str]:
        out = io.StringIO()
        code = ctl.send(settings, command, args, out, timeout=15.0, issuer="drill")
        return code == 0, out.getvalue().strip()

    return send
