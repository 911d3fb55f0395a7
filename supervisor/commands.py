"""The root's handler of operator commands (``control_commands``), shared by ctl and Telegram.

Each pending command is taken under a row lock, carried out, and finished — status, result,
handler — in one transaction with the flags it sets, plus an alert, so the audit trail and the
effect cannot disagree. What each command does:

- ``pause`` / ``resume``: new entries (buy intents) are blocked with reason ``PAUSED`` / allowed
  again; exits still go through.
- ``killswitch on|off``: every intent is blocked with reason ``KILL_SWITCH`` / allowed again.
- ``mode shadow|test|live``: this build executes in shadow mode only; asking for test or live
  is refused and says why (it can never bypass a guard).
- ``restart <node>``: the node process is stopped and started again by the root supervisor.
- ``restart <actor>``: the actor is crashed on purpose inside its node, so its node's supervisor
  restarts it *with its strategy* (in the market node, the actors after it too), exactly as for
  a real failure — a restart that skipped the strategy could lose what was in flight.
- ``flatten``: every paper position is sold at its market's next trade (the paper book carries it
  out and says when all are closed; pause first to keep the strategy from re-entering).
- ``reconcile``: refused in this build (no exchange account to reconcile with).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from persistence import alerts, control
from persistence.errors import translated

log = logging.getLogger(__name__)

HANDLER = "root"
NODE_NAMES = ("ops", "execution", "market")


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
        """Handle every pending command, oldest first; how many were handled."""
        handled = 0
        with self._lock:
            while True:
                with translated(), conn.transaction(), conn.cursor() as cur:
                    command = control.take_pending(cur)
                    if command is None:
                        return handled
                    outcome = self._carry_out(cur, conn, command)
                    control.finish(cur, command.id, ok=outcome.ok, result=outcome.text, handled_by=HANDLER)
                    level = "info" if outcome.ok else "warning"
                    what = " ".join([command.command, *(str(v) for v in command.args.values())])
                    alerts.enqueue(cur, kind="control", level=level,
                                   text=f"{what} by {command.issuer}: {'done' if outcome.ok else 'refused'} — "
                                        f"{outcome.text}")
                log.info("control command %d %s by %s: %s", command.id, command.command, command.issuer, outcome)
                handled += 1

    def _carry_out(self, cur: psycopg.Cursor, conn: psycopg.Connection, command: control.Command) -> Outcome:
        args: dict[str, Any] = command.args
        name = command.command
        if name in ("pause", "resume"):
            control.set_flag(cur, "paused", name == "pause", command.issuer)
            return Outcome(ok=True, text="new entries paused; exits still go through" if name == "pause"
                           else "entries resumed")
        if name == "killswitch":
            state = args.get("state")
            if state not in ("on", "off"):
                return Outcome(ok=False, text="killswitch takes on or off")
            control.set_flag(cur, "killswitch", state == "on", command.issuer)
            return Outcome(ok=True, text="kill switch ON: every order intent is blocked" if state == "on"
                           else "kill switch off")
        if name == "mode":
            mode = args.get("mode")
            if mode == "shadow":
                return Outcome(ok=True, text="execution mode is shadow")
            if mode in ("test", "live"):
                return Outcome(ok=False, text=f"{mode} execution is not available in this build; the system stays "
                                              "in shadow mode (no exchange client, no guards to agree)")
            return Outcome(ok=False, text="mode takes shadow, test or live")
        if name == "restart":
            return self._restart(conn, str(args.get("target", "")), command.issuer)
        if name == "flatten":
            control.set_flag(cur, "flatten", {"id": command.id, "by": command.issuer}, command.issuer)
            return Outcome(ok=True, text="every paper position is sold at its market's next trade (pause first to "
                                         "keep the strategy from entering again); an alert says when all are closed")
        if name == "reconcile":
            return Outcome(ok=False, text="reconcile is not available in this build: there is no exchange account "
                                          "to reconcile with (paper trading and shadow execution only)")
        return Outcome(ok=False, text=f"unknown command {name!r}")

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
