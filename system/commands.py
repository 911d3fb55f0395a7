"""The root's handler of operator commands (``control_commands``), shared by ctl and Telegram.

Each pending command is taken under a row lock, carried out, and finished — status, result,
handler — in one transaction with the flags it sets, plus an alert, so the audit trail and the
effect cannot disagree. A command is taken only before its deadline (``expires_at``, set by its
issuer), judged by the database's clock in that same transaction; one whose deadline passed
while the root was busy, frozen or down is marked ``expired`` with a warning alert and never
carried out, however much later the root gets to it (``persistence.control``). What each
command does:

- ``pause`` / ``resume``: new entries (buy intents) are blocked with reason ``PAUSED`` / allowed
  again; exits still go through.
- ``killswitch on|off``: new entries are blocked with reason ``KILL_SWITCH`` / allowed again;
  exits still go through (``flatten`` closes positions).
- ``mode shadow|test|live``: records the *requested* mode in ``system_flags['mode']`` and an
  ``execution_events`` row (``mode_requested``). It changes no guard: the execution actor derives
  the effective mode from this request and every guard (keys, ``LIVE_TRADING``, ``LIVE_CONFIRM``,
  ``READ_ONLY`` …), so asking for live can never bypass one. ``ctl status`` shows both modes.
- ``restart <node>``: the node process is stopped and started again by the root supervisor.
- ``restart <actor>``: the actor is crashed on purpose inside its node, so its node's supervisor
  restarts it *with its strategy* (in the market node, the actors after it too), exactly as for
  a real failure — a restart that skipped the strategy could lose what was in flight.
- ``flatten``: every paper position is sold at its market's next trade (the paper book carries it
  out and says when all are closed; pause first to keep the strategy from re-entering).
- ``reconcile``: sets ``system_flags['reconcile_request']`` to ``{"id", "by"}``; the account actor
  consumes it, reconciles with the exchange, and reports as an alert and in
  ``reconciliation_reports`` (shown by ``ctl status``).
- ``review <attempt> placed|absent``: settles an order in the needs-review queue after the
  operator checked the exchange (:func:`_review`).
- ``abandon-exit <paper trade>``: gives up a pending exit; the operator takes over its position.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from model.reasons import Flag
from persistence import account, alerts, attempts, control, execution_state, exits
from persistence.errors import translated

log = logging.getLogger(__name__)

HANDLER = "root"
NODE_NAMES = ("ops", "execution", "market")
MODES = ("shadow", "test", "live")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    ok: bool
    text: str


NodeRestarter = Callable[[str], None]
ActorCrasher = Callable[[str, str, str], Outcome]  # (node, actor, note) -> outcome


class CommandHandler:
    """Carries out pending commands; called from the root's loop."""

    def __init__(self, *, restart_node: NodeRestarter, crash_actor: ActorCrasher,
                 actor_nodes: Callable[[psycopg.Connection], dict[str, str]]) -> None:
        self._restart_node = restart_node
        self._crash_actor = crash_actor
        self._actor_nodes = actor_nodes
        self._lock = threading.Lock()

    def handle_pending(self, conn: psycopg.Connection) -> int:
        """Handle every pending command, oldest first; how many were carried out or refused.

        Commands past their deadline are expired instead (not counted).
        """
        handled = 0
        with self._lock:
            while True:
                outcome: Outcome | None = None
                with translated(), conn.transaction(), conn.cursor() as cur:
                    overdue = control.expire_overdue(cur, handled_by=HANDLER)
                    for stale in overdue:
                        alerts.enqueue(cur, kind="control", level="warning",
                                       text=f"{_what(stale)} by {stale.issuer}: expired — {control.OVERDUE}")
                    command = control.take_pending(cur)
                    if command is not None:
                        outcome = self._carry_out(cur, conn, command)
                        control.finish(cur, command.id, ok=outcome.ok, result=outcome.text, handled_by=HANDLER)
                        level = "info" if outcome.ok else "warning"
                        alerts.enqueue(cur, kind="control", level=level,
                                       text=f"{_what(command)} by {command.issuer}: "
                                            f"{'done' if outcome.ok else 'refused'} — {outcome.text}")
                for stale in overdue:
                    log.warning("control command %d %s by %s expired: its deadline %s passed before the root took it",
                                stale.id, _what(stale), stale.issuer, stale.expires_at)
                if command is None:
                    return handled
                log.info("control command %d %s by %s: %s", command.id, command.command, command.issuer, outcome)
                handled += 1

    def _carry_out(self, cur: psycopg.Cursor, conn: psycopg.Connection, command: control.Command) -> Outcome:
        args: dict[str, Any] = command.args
        name = command.command
        if name in ("pause", "resume"):
            control.set_flag(cur, Flag.PAUSED.value, name == "pause", command.issuer)
            return Outcome(ok=True, text="new entries paused; exits still go through" if name == "pause"
                           else "entries resumed")
        if name == "killswitch":
            state = args.get("state")
            if state not in ("on", "off"):
                return Outcome(ok=False, text="killswitch takes on or off")
            control.set_flag(cur, Flag.KILLSWITCH.value, state == "on", command.issuer)
            return Outcome(ok=True, text="kill switch ON: new entries are blocked (exits still go through); "
                                         "flatten to close positions" if state == "on" else "kill switch off")
        if name == "mode":
            return self._mode(cur, args.get("mode"), command.issuer)
        if name == "restart":
            return self._restart(conn, str(args.get("target", "")), command.issuer)
        if name == "flatten":
            control.set_flag(cur, "flatten", {"id": command.id, "by": command.issuer}, command.issuer)
            return Outcome(ok=True, text="every paper position is sold at its market's next trade (pause first to "
                                         "keep the strategy from entering again); an alert says when all are closed")
        if name == "reconcile":
            account.request_reconciliation(cur, command_id=command.id, by=command.issuer)
            return Outcome(ok=True, text="reconciliation requested; its report follows as an alert and in ctl status")
        if name == "review":
            return _review(cur, args.get("attempt"), args.get("verdict"), command.issuer)
        if name == "abandon-exit":
            return _abandon_exit(cur, args.get("paper_trade"), command.issuer)
        return Outcome(ok=False, text=f"unknown command {name!r}")

    @staticmethod
    def _mode(cur: psycopg.Cursor, mode: object, issuer: str) -> Outcome:
        """Record the requested mode; the execution actor applies it only as far as every guard agrees."""
        if mode not in MODES:
            return Outcome(ok=False, text="mode takes shadow, test or live")
        control.set_flag(cur, Flag.MODE.value, mode, issuer)
        execution_state.event(cur, "mode_requested", {"mode": mode, "by": issuer})
        guards = {"shadow": "execution applies it (a guard can only lower the mode, and shadow sends nothing)",
                  "test": "execution applies it only if every test guard agrees (keys, TEST_ORDERS, READ_ONLY)",
                  "live": "execution applies it only if every live guard agrees"}[str(mode)]
        return Outcome(ok=True, text=f"requested {mode}; {guards} — see ctl status for the effective mode")

    def _restart(self, conn: psycopg.Connection, target: str, issuer: str) -> Outcome:
        if target in NODE_NAMES:
            self._restart_node(target)
            return Outcome(ok=True, text=f"node {target} restarted")
        node, _, actor = target.rpartition("/")
        owners = self._actor_nodes(conn)
        node = node or owners.get(actor, "")
        if not node or owners.get(actor) != node:
            known = ", ".join([*NODE_NAMES, *sorted(f"{n}/{a}" for a, n in owners.items())])
            return Outcome(ok=False, text=f"no node or actor {target!r}; known: {known}")
        return self._crash_actor(node, actor, f"restart requested by {issuer}")


def _what(command: control.Command) -> str:
    return " ".join([command.command, *(str(v) for v in command.args.values())])


def _review(cur: psycopg.Cursor, attempt_id: object, verdict: object, issuer: str) -> Outcome:
    """An operator's verdict on an order in the needs-review queue (they checked the exchange).

    ``placed``: the exchange holds it; the attempt becomes ``submitted`` and execution follows it
    by identifier to its final state. ``absent``: it was never placed; the attempt is ``error``
    and, for an exit, the exit is pending again so a new attempt (a new identifier) goes out.
    Only an attempt that is in the queue (unknown, live, review started) can be settled: one that
    execution is still resolving on its own is refused, so the two never race."""
    if not isinstance(attempt_id, int) or verdict not in ("placed", "absent"):
        return Outcome(ok=False, text="review takes an attempt id and placed or absent")
    row = cur.execute("SELECT paper_trade_id, identifier, market, side, mode, status, review_since FROM order_attempts"
                      " WHERE id = %s FOR UPDATE", (attempt_id,)).fetchone()
    if row is None:
        return Outcome(ok=False, text=f"no attempt {attempt_id}")
    trade, ident, market, side, mode, status, review_since = row
    if status != "unknown" or mode != "live" or review_since is None:
        return Outcome(ok=False, text=f"attempt {attempt_id} ({ident}) is not in the needs-review queue (status "
                                      f"{status}); ctl status lists the ones that are")
    now = datetime.now(UTC)
    attempts.record_review(cur, attempt_id, by=issuer, verdict=str(verdict), at=now)
    execution_state.event(cur, "review", {"attempt": attempt_id, "identifier": ident, "verdict": verdict, "by": issuer})
    if verdict == "placed":
        cur.execute("UPDATE order_attempts SET status = 'submitted', updated_at = now() WHERE id = %s", (attempt_id,))
        return Outcome(ok=True, text=f"attempt {attempt_id} ({ident}) marked placed: execution follows it on the "
                                     "exchange to its final state and records its fills")
    attempts.finish(cur, attempt_id, status="error", error=f"absent: confirmed by {issuer} on review")
    if side == "ask":
        exits.keep_pending(cur, paper_trade_id=trade, market=market, mode=mode, now=now,
                           reason=f"attempt {attempt_id} confirmed absent on review by {issuer}")
        return Outcome(ok=True, text=f"attempt {attempt_id} ({ident}) marked absent; its exit is pending again and "
                                     "goes out as a new attempt with a new identifier")
    return Outcome(ok=True, text=f"attempt {attempt_id} ({ident}) marked absent; the entry is not retried")


def _abandon_exit(cur: psycopg.Cursor, paper_trade: object, issuer: str) -> Outcome:
    """Give up a pending exit: the operator takes over the position (its coins stay on the account)."""
    if not isinstance(paper_trade, int):
        return Outcome(ok=False, text="abandon-exit takes a paper trade id")
    was = exits.resolve(cur, paper_trade, f"abandoned by {issuer}")
    if was is None:
        return Outcome(ok=False, text=f"no exit of paper trade {paper_trade} is pending; ctl status lists the ones "
                                      "that are")
    execution_state.event(cur, "exit_abandoned", {"paper_trade": paper_trade, "market": was.market, "mode": was.mode,
                                                  "since": was.since.isoformat(), "by": issuer})
    return Outcome(ok=True, text=f"the pending {was.mode} exit of {was.market} (paper trade {paper_trade}, pending "
                                 f"since {was.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC) is abandoned: execution "
                                 "no longer retries it; what it was to sell stays on the account for you to handle")
