"""TelegramCommandActor: the operator's commands from Telegram, as the same control messages as ctl.

A reader thread owned by this actor long-polls ``getUpdates`` and hands each message to the
actor. Every update is processed exactly once across restarts: its id is the
``telegram_updates`` cursor, moved in the same transaction that issues the control command it
asked for.

Who may command: a *user* listed in ``TELEGRAM_OPERATOR_IDS`` (``operators``), writing in the
configured chat. A chat alone proves nothing — in a group every member writes in it — so the
sender's numeric user id (``from.id``) decides, never a name. Every command needs an operator,
queries included (/balance shows the account). Anything else — another chat, or a user who is
not an operator — is ignored without a reply, logged, and counted as ``ignored``. With no
operators configured every command is refused with a reply naming the setting (the bot still
sends alerts): commands are never open to whoever is in the chat.

Commands: /status /positions /profit /balance /help answer from the database (/balance: the
account actor's latest balance poll, per currency balance and locked); /pause /resume
/mode /killswitch /flatten /restart /reconcile become ``control_commands`` rows that the root
carries out, and the reply is the root's acknowledgement. Destructive ones — /flatten,
/killswitch off, /mode live — first ask for ``/confirm``, which counts only from the same user
in the same chat within ``CONFIRM_WINDOW_S`` (:class:`Confirmations`); anyone else's /confirm
changes nothing and the reply says so. The audit row's issuer names the asking user by id (and
username), the chat, and for a confirmed command the confirming user:
``telegram:user 123 (alice) in chat -100…; confirmed by user 123 (alice)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

import psycopg

from actors.node_actor import NodeActor
from notify.telegram import TelegramClient, TelegramError, Update
from execution.waiting import describe_waiting
from persistence import attempts, control, cursors, exits, runtime
from persistence.db import connect
from persistence.errors import translated

log = logging.getLogger(__name__)

CURSOR = "telegram_updates"
CONFIRM_WINDOW_S = 60.0
ACK_TIMEOUT_S = 10.0
POLL_S = 5
HELP = """Commands:
/status — nodes, switches, position
/positions — open paper positions
/profit — realised and unrealised PnL, fees
/balance — what the exchange account holds
/pause, /resume — block or allow new entries
/killswitch on|off — block or allow new entries (exits still go through)
/mode shadow|test|live — request an execution mode (every guard still applies)
/flatten — close every position
/restart <node|node/actor> — restart through the supervisor
/reconcile — reconcile with the exchange
Destructive commands ask for /confirm."""
NO_ACCOUNT = "No exchange account (no API keys), or no balance polled yet."
CONTROL = {"pause", "resume", "mode", "killswitch", "flatten", "restart", "reconcile"}


@dataclass(frozen=True, slots=True, kw_only=True)
class _UpdateReceived:
    """Event raised by the reader thread for each incoming message."""

    update: Update


@dataclass(frozen=True, slots=True, kw_only=True)
class Asked:
    """A destructive command waiting for its asker's /confirm."""

    command: str
    args: dict[str, Any]
    chat_id: int
    user_id: int
    asker: str  # who(update) of the asker, for the audit line
    deadline: float  # the injected clock's reading after which /confirm no longer counts


def who(update: Update) -> str:
    """The sender as the audit names them: ``user 123 (alice)``, or ``user 123`` without a username."""
    return f"user {update.sender_id}" + (f" ({update.sender_name})" if update.sender_name else "")


NOTHING_TO_CONFIRM = "Nothing to confirm (or the confirmation window passed)."


class Confirmations:
    """Destructive commands awaiting /confirm: at most one per user and chat (sans-I/O, clock injected).

    A /confirm counts only from the user who asked, in the chat they asked in, within
    ``window_s``; a newer destructive command from the same user replaces their older one.
    """

    def __init__(self, *, window_s: float, clock: Callable[[], float]) -> None:
        self._window_s = window_s
        self._clock = clock
        self._waiting: dict[tuple[int, int], Asked] = {}

    def ask(self, update: Update, command: str, args: dict[str, Any]) -> None:
        self._forget_expired()
        self._waiting[(update.chat_id, update.sender_id)] = Asked(
            command=command, args=args, chat_id=update.chat_id, user_id=update.sender_id, asker=who(update),
            deadline=self._clock() + self._window_s)

    def confirm(self, update: Update) -> Asked | str:
        """The sender's own command to carry out now, or the reply saying why there is none."""
        self._forget_expired()
        own = self._waiting.pop((update.chat_id, update.sender_id), None)
        if own is not None:
            return own
        others = [a for a in self._waiting.values() if a.chat_id == update.chat_id]
        if others:
            waiting = "; ".join(f"{a.asker}'s /{' '.join([a.command, *map(str, a.args.values())])}" for a in others)
            return (f"Nothing of yours to confirm: a /confirm counts only from the user who asked. Still waiting "
                    f"for their own /confirm: {waiting}.")
        return NOTHING_TO_CONFIRM

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, a in self._waiting.items() if now > a.deadline]:
            del self._waiting[key]


def parse(text: str) -> tuple[str, list[str]]:
    """``/killswitch@MyBot on`` → ``("killswitch", ["on"])``."""
    words = text.strip().split()
    if not words or not words[0].startswith("/"):
        return "", []
    return words[0][1:].split("@", 1)[0].lower(), words[1:]


def destructive(command: str, args: dict[str, Any]) -> bool:
    return (command == "flatten" or (command == "killswitch" and args.get("state") == "off")
            or (command == "mode" and args.get("mode") == "live"))


class TelegramCommandActor(NodeActor):
    """Reads Telegram commands from the operators in the configured chat."""

    def __init__(self, *, client: TelegramClient, chat_id: int, operators: tuple[int, ...], db_url: str,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.client = client
        self.chat_id = chat_id
        self.operators = frozenset(operators)
        self.db_url = db_url
        self.conn: psycopg.Connection | None = None
        self.stop_reading = threading.Event()
        self.reader: threading.Thread | None = None
        self.confirmations = Confirmations(window_s=CONFIRM_WINDOW_S, clock=self._clock.monotonic)
        self.counters.update(commands=0, ignored=0)

    def setup(self) -> None:
        super().setup()
        if not self.operators:
            log.warning("TELEGRAM_OPERATOR_IDS is not set: every Telegram command is refused (alerts are still sent)")
        self.conn = connect(self.db_url, autocommit=True, application_name="ops-telegram-commands")
        with translated():
            offset = cursors.get(self.conn, CURSOR)
        self.reader = threading.Thread(target=self._read, args=(offset,), name="telegram-updates", daemon=True)
        self.reader.start()

    def _read(self, offset: int) -> None:
        next_offset = offset + 1 if offset else None
        while not self.stop_reading.is_set():
            try:
                updates = self.client.get_updates(next_offset, timeout_s=POLL_S)
            except TelegramError as exc:
                log.warning("reading Telegram commands failed: %s", exc)
                self.stop_reading.wait(POLL_S)
                continue
            for update in updates:
                next_offset = update.update_id + 1
                try:
                    self.actor_ref.tell(_UpdateReceived(update=update))
                except Exception:  # noqa: BLE001 - the actor is gone: so is this thread's purpose
                    return

    def handle(self, message: Any) -> None:
        if not isinstance(message, _UpdateReceived):
            super().handle(message)
            return
        update = message.update
        assert self.conn is not None
        with translated():
            if update.update_id <= cursors.get(self.conn, CURSOR):
                return  # handled before a restart
            refusal = self._refusal(update)
            if refusal is not None:
                self.counters["ignored"] += 1
                cursors.advance(self.conn, CURSOR, update.update_id)
                if refusal:
                    self._reply(refusal)
                return
            reply, command_id = self._respond(update)
        if reply:
            self._reply(reply)
        if command_id is not None:
            self._reply(self._await(command_id))

    def _refusal(self, update: Update) -> str | None:
        """None when ``update`` may command; else the reply to send (``""``: none, ignore quietly)."""
        if update.chat_id != self.chat_id:
            log.warning("ignored a Telegram message from unauthorised chat %s (%s)", update.chat_id, who(update))
            return ""
        if not self.operators:
            log.warning("refused a Telegram message from %s in chat %s: TELEGRAM_OPERATOR_IDS is not set",
                        who(update), update.chat_id)
            if not parse(update.text)[0]:
                return ""
            return (f"⛔ Commands are disabled: TELEGRAM_OPERATOR_IDS is not set. Add the numeric user ids of the "
                    f"operators (yours is {update.sender_id}) and restart.")
        if update.sender_id not in self.operators:
            log.warning("ignored a Telegram message from %s in the operator chat %s: not in TELEGRAM_OPERATOR_IDS",
                        who(update), update.chat_id)
            return ""
        return None

    def _respond(self, update: Update) -> tuple[str, int | None]:
        """Decide, and move the cursor in the same transaction as any command issued."""
        assert self.conn is not None
        name, words = parse(update.text)
        issuer = f"telegram:{who(update)} in chat {update.chat_id}"
        with self.conn.transaction():
            cursors.advance(self.conn.cursor(), CURSOR, update.update_id)
            if name == "confirm":
                asked = self.confirmations.confirm(update)
                if isinstance(asked, str):
                    return asked, None
                confirmed = f"telegram:{asked.asker} in chat {asked.chat_id}; confirmed by {who(update)}"
                return "", self._issue(confirmed, asked.command, asked.args)
            if name in CONTROL:
                args = _args(name, words)
                if args is None:
                    return f"Usage: /{name} {_USAGE[name]}", None
                if destructive(name, args):
                    self.confirmations.ask(update, name, args)
                    what = " ".join([name, *map(str, args.values())])
                    return (f"⚠️ {what} is destructive. Reply /confirm within {CONFIRM_WINDOW_S:.0f} s"
                            f" (only a /confirm from {who(update)} counts)."), None
                return "", self._issue(issuer, name, args)
            return self._query(name), None

    def _issue(self, issuer: str, name: str, args: dict[str, Any]) -> int:
        assert self.conn is not None
        self.counters["commands"] += 1
        return control.issue(self.conn, issuer=issuer, command=name, args=args, timeout_s=ACK_TIMEOUT_S)

    def _await(self, command_id: int) -> str:
        assert self.conn is not None
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while time.monotonic() < deadline:
            with translated():
                row = control.get(self.conn, command_id)
            if row is not None and row.status != "pending":
                return f"{'✅' if row.status == 'done' else '⛔'} {row.command}: {row.result}"
            self.stop_reading.wait(0.1)  # the root acts in another process; bounded by the deadline
        with translated():
            control.expire(self.conn, command_id, f"no acknowledgement within {ACK_TIMEOUT_S:g} s")
        return f"⛔ no acknowledgement within {ACK_TIMEOUT_S:g} s; the command was withdrawn"

    def _query(self, name: str) -> str:
        assert self.conn is not None
        if name in ("help", "start", ""):
            return HELP
        if name == "status":
            nodes = runtime.read_nodes(self.conn)
            switches = control.flags(self.conn)
            lines = [f"{n['node']}: {n['state']} (restarts {n['restarts']})" for n in nodes]
            on = [k for k in ("paused", "killswitch") if switches.get(k) is True]
            lines.append(f"switches: {', '.join(on) or 'none'}")
            lines += describe_waiting(exits.pending(self.conn), attempts.needs_review(self.conn))
            return "\n".join(lines + [self._positions_text()])
        if name == "positions":
            return self._positions_text()
        if name == "profit":
            row = self.conn.execute(
                "SELECT coalesce(sum(realized_pnl), 0), coalesce(sum(fees_krw), 0),"
                " coalesce(sum(CASE WHEN volume > 0 THEN (last_price - avg_price) * volume - entry_fee_krw END), 0)"
                " FROM paper_positions").fetchone()
            realised, fees, unrealised = row if row else (Decimal(0), Decimal(0), Decimal(0))
            return f"paper PnL: realised {realised:+,.0f} KRW, unrealised {unrealised:+,.0f} KRW, fees {fees:,.0f} KRW"
        if name == "balance":
            return balance_text(self.conn) or f"{NO_ACCOUNT}\n{self._positions_text()}"
        return f"Unknown command /{name}. Send /help."

    def _positions_text(self) -> str:
        assert self.conn is not None
        rows = self.conn.execute("SELECT market, volume, avg_price, last_price FROM paper_positions"
                                 " WHERE volume > 0 ORDER BY market").fetchall()
        if not rows:
            return "paper positions: flat"
        return "paper positions:\n" + "\n".join(
            f"{m} {v.normalize()} @ {a:,.0f} (last {last:,.0f})" for m, v, a, last in rows)

    def _reply(self, text: str) -> None:
        try:
            self.client.send_message(self.chat_id, text[:4096])
        except TelegramError as exc:
            log.warning("could not reply on Telegram: %s", exc)

    def cleanup(self) -> None:
        self.stop_reading.set()
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def balance_text(conn: psycopg.Connection) -> str:
    """The latest balance poll, one line per currency; empty when there has been none."""
    rows = conn.execute(
        "SELECT taken_at, currency, balance, locked, avg_buy_price, unit_currency FROM account_snapshots"
        " WHERE taken_at = (SELECT max(taken_at) FROM account_snapshots)"
        " ORDER BY currency <> 'KRW', currency").fetchall()
    if not rows:
        return ""
    lines = [f"exchange account at {rows[0][0].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC:"]
    for _at, currency, balance, locked, avg, unit in rows:
        line = f"{currency} {_amount(balance)} (locked {_amount(locked)})"
        if currency != unit and avg > 0:
            line += f", avg buy {_amount(avg)} {unit}"
        lines.append(line)
    return "\n".join(lines)


def _amount(value: Decimal) -> str:
    return f"{value.normalize():,f}"


_USAGE = {"mode": "shadow|test|live", "killswitch": "on|off", "restart": "<node|node/actor>", "pause": "",
          "resume": "", "flatten": "", "reconcile": ""}


def _args(name: str, words: list[str]) -> dict[str, Any] | None:
    """The control command's arguments, or None when they are malformed."""
    if name == "mode":
        return {"mode": words[0]} if len(words) == 1 and words[0] in ("shadow", "test", "live") else None
    if name == "killswitch":
        return {"state": words[0]} if len(words) == 1 and words[0] in ("on", "off") else None
    if name == "restart":
        return {"target": words[0]} if len(words) == 1 else None
    return {} if not words else None
