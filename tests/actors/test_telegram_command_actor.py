"""The Telegram command actor: its pure parts, its /balance answer, and who may command.

The authorisation tests run the real actor against the fake Bot API server and a real database,
with a stand-in root (a thread running the root's ``CommandHandler``); the whole system runs in
tests/e2e/test_telegram_commands.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pykka
import pytest

from actors.telegram_commands import (
    CONFIRM_WINDOW_S,
    HELP,
    NOTHING_TO_CONFIRM,
    Asked,
    Confirmations,
    TelegramCommandActor,
    _args,
    balance_text,
    destructive,
    parse,
)
from notify.telegram import Pacer, TelegramClient, Update
from persistence import control
from otp.child import ChildContext
from model.clock import FakeClock
from system.commands import CommandHandler, Outcome
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import MS, eventually


def test_balance_is_the_latest_poll_per_currency(db: psycopg.Connection) -> None:
    assert balance_text(db) == ""  # no poll: the actor answers "No exchange account (no API keys)…"
    db.execute("INSERT INTO account_snapshots (taken_at, currency, balance, locked, avg_buy_price, unit_currency)"
               " VALUES ('2025-01-01T00:00:00Z', 'KRW', 5, 0, 0, 'KRW'),"
               " ('2025-01-01T00:00:10Z', 'BTC', 0.00120000, 0.0001, 95000000, 'KRW'),"
               " ('2025-01-01T00:00:10Z', 'KRW', 1000000.0, 50000, 0, 'KRW')")
    assert balance_text(db) == ("exchange account at 2025-01-01 00:00:10 UTC:\n"
                                "KRW 1,000,000 (locked 50,000)\n"
                                "BTC 0.0012 (locked 0.0001), avg buy 95,000,000 KRW")


@pytest.mark.parametrize(("text", "args"), [("/mode live", {"mode": "live"}), ("/mode@Bot test", {"mode": "test"}),
                                            ("/mode", None), ("/mode fast", None), ("/reconcile", {}),
                                            ("/reconcile now", None)])
def test_mode_and_reconcile_arguments(text: str, args: dict[str, str] | None) -> None:
    name, words = parse(text)
    assert _args(name, words) == args


def test_only_live_mode_needs_confirmation() -> None:
    assert destructive("mode", {"mode": "live"})
    assert not destructive("mode", {"mode": "test"}) and not destructive("mode", {"mode": "shadow"})
    assert not destructive("reconcile", {})
    assert "/reconcile" in HELP and "/balance" in HELP and "/mode shadow|test|live" in HELP


# --- who may command (security review, issue 15, finding 6) ----------------------------------------

TOKEN = "123456789:AAExampleTokenValue_abcdefghijklmnop"
GROUP = -1001234567890  # the operator chat is a group: every member writes in it
ALICE, BOB, MALLORY = 111, 222, 999  # two operators and a member who is not one


def update(text: str, user: int, chat: int = GROUP, name: str = "") -> Update:
    return Update(update_id=1, chat_id=chat, sender_id=user, sender_name=name, text=text)


def test_a_confirm_counts_only_from_the_asker_in_the_same_chat_within_the_window() -> None:
    clock = FakeClock()
    book = Confirmations(window_s=60.0, clock=clock.monotonic)
    book.ask(update("/killswitch off", ALICE, name="alice"), "killswitch", {"state": "off"})

    not_bob = book.confirm(update("/confirm", BOB, name="bob"))
    assert not_bob == ("Nothing of yours to confirm: a /confirm counts only from the user who asked. Still waiting"
                       " for their own /confirm: user 111 (alice)'s /killswitch off.")
    assert book.confirm(update("/confirm", ALICE, chat=ALICE)) == NOTHING_TO_CONFIRM  # her private chat: not here
    clock.advance(59.0)
    mine = book.confirm(update("/confirm", ALICE))
    assert isinstance(mine, Asked) and (mine.command, mine.args, mine.asker) == ("killswitch", {"state": "off"},
                                                                                  "user 111 (alice)")
    assert book.confirm(update("/confirm", ALICE)) == NOTHING_TO_CONFIRM  # once only

    book.ask(update("/flatten", BOB), "flatten", {})
    clock.advance(60.5)
    assert book.confirm(update("/confirm", BOB)) == NOTHING_TO_CONFIRM  # the window passed
    assert book.confirm(update("/confirm", ALICE)) == NOTHING_TO_CONFIRM  # and nobody is waiting any more


class _Root:
    """A stand-in root: a thread carrying out pending commands with the root's real handler."""

    def __init__(self, db_url: str) -> None:
        self.restarted: list[str] = []
        self.handler = CommandHandler(restart_node=self.restarted.append, crash_actor=self._crash,
                                      actor_nodes=lambda _conn: {})
        self.stop = threading.Event()
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.thread = threading.Thread(target=self._loop, name="stand-in-root", daemon=True)
        self.thread.start()

    @staticmethod
    def _crash(node: str, actor: str, note: str) -> Outcome:
        return Outcome(ok=False, text=f"no actor {node}/{actor} here ({note})")

    def _loop(self) -> None:
        while not self.stop.wait(20 * MS):
            self.handler.handle_pending(self.conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5000 * MS)
        self.conn.close()


@dataclass
class Bot:
    fake: FakeTelegram
    actor: pykka.ActorRef[Any]
    clock: FakeClock
    db: psycopg.Connection

    def says(self, user: int, text: str, name: str | None = None, chat: int = GROUP) -> None:
        self.fake.user_says(chat, text, username=name, user_id=user)

    def reply(self, containing: str) -> str:
        return eventually(lambda: next((t for t in self.fake.texts() if containing in t), None),
                          timeout=10_000 * MS, interval=10 * MS, what=f"a reply containing {containing!r}")

    def sync(self) -> str:
        """An operator's /help, answered after everything said before it was handled (updates are in order)."""
        before = len(self.fake.texts())
        self.says(ALICE, "/help", "alice")
        return eventually(lambda: len(self.fake.texts()) > before and self.fake.texts()[-1], timeout=10_000 * MS,
                          interval=10 * MS, what="the reply to /help")

    def audit(self) -> list[tuple[str, str, str]]:
        return self.db.execute("SELECT command, status, issuer FROM control_commands ORDER BY id").fetchall()

    def flag(self, name: str) -> object:
        row = self.db.execute("SELECT value FROM system_flags WHERE name = %s", (name,)).fetchone()
        return None if row is None else row[0]

    def counters(self) -> dict[str, Any]:
        return self.actor.proxy().counters.get(timeout=5000 * MS)


def start_bot(db_url: str, db: psycopg.Connection, operators: tuple[int, ...]) -> Iterator[Bot]:
    root = _Root(db_url)
    clock = FakeClock()
    with FakeTelegram(token=TOKEN) as fake:
        client = TelegramClient(fake.url, TOKEN, pacer=Pacer(sleep=lambda _s: None))
        ctx = ChildContext(supervisor_name="test", child_id="telegram", incarnation=1, exit_sink=lambda _r: None)
        actor = TelegramCommandActor.start(context=ctx, clock=clock, client=client, chat_id=GROUP,
                                           operators=operators, db_url=db_url)
        try:
            yield Bot(fake=fake, actor=actor, clock=clock, db=db)
        finally:
            actor.stop(block=True, timeout=5000 * MS)
            root.close()


@pytest.fixture
def bot(db_url: str, db: psycopg.Connection) -> Iterator[Bot]:
    yield from start_bot(db_url, db, operators=(ALICE, BOB))


@pytest.fixture
def unconfigured_bot(db_url: str, db: psycopg.Connection) -> Iterator[Bot]:
    yield from start_bot(db_url, db, operators=())


def test_a_member_of_the_operator_chat_who_is_not_an_operator_commands_nothing(bot: Bot) -> None:
    control.set_flag(bot.db, "killswitch", True, "risk")  # the automatic daily-loss kill switch
    for text in ("/killswitch off", "/flatten", "/mode live", "/pause", "/restart ops", "/balance", "/confirm"):
        bot.says(MALLORY, text, "mallory")
    bot.says(ALICE, "/pause", "alice", chat=ALICE)  # an operator, but not in the operator chat
    assert "/reconcile" in bot.sync()

    assert bot.audit() == [], "nothing issued"
    assert bot.fake.texts() == [HELP], "the stranger got no reply at all (not even a confirmation prompt)"
    assert bot.flag("killswitch") is True
    assert bot.counters()["ignored"] == 8


def test_only_the_asker_confirms_and_the_audit_names_asker_and_confirmer(bot: Bot) -> None:
    control.set_flag(bot.db, "killswitch", True, "risk")
    bot.says(ALICE, "/killswitch off", "alice")
    assert "(only a /confirm from user 111 (alice) counts)" in bot.reply("Reply /confirm")
    bot.says(MALLORY, "/confirm", "mallory")  # not an operator: ignored
    bot.says(BOB, "/confirm", "bob")  # an operator, but not the one who asked
    assert "user 111 (alice)'s /killswitch off" in bot.reply("Nothing of yours to confirm")
    bot.sync()
    assert bot.audit() == [] and bot.flag("killswitch") is True

    bot.says(ALICE, "/confirm", "alice")
    assert bot.reply("✅ killswitch") == "✅ killswitch: kill switch off"
    assert bot.flag("killswitch") is False
    assert bot.audit() == [("killswitch", "done",
                            f"telegram:user {ALICE} (alice) in chat {GROUP}; confirmed by user {ALICE} (alice)")]

    bot.says(BOB, "/pause")  # no username: the id alone names him; not destructive, no /confirm
    bot.reply("✅ pause")
    assert bot.audit()[-1] == ("pause", "done", f"telegram:user {BOB} in chat {GROUP}")


def test_a_confirm_after_the_window_does_nothing(bot: Bot) -> None:
    bot.says(BOB, "/flatten", "bob")
    bot.reply("flatten is destructive")
    bot.clock.advance(CONFIRM_WINDOW_S + 1)
    bot.says(BOB, "/confirm", "bob")
    bot.reply(NOTHING_TO_CONFIRM)
    assert bot.audit() == [] and bot.flag("flatten") is None


def test_without_operators_every_command_is_refused_and_says_why(unconfigured_bot: Bot) -> None:
    bot = unconfigured_bot
    bot.says(ALICE, "/status", "alice")
    assert bot.reply("TELEGRAM_OPERATOR_IDS is not set") == (
        "⛔ Commands are disabled: TELEGRAM_OPERATOR_IDS is not set. Add the numeric user ids of the operators"
        f" (yours is {ALICE}) and restart.")
    bot.says(ALICE, "/killswitch on", "alice")
    bot.says(ALICE, "just chatting", "alice")  # not a command: no reply
    bot.says(ALICE, "/confirm", "alice")
    eventually(lambda: len(bot.fake.texts()) == 3, timeout=10_000 * MS, interval=10 * MS, what="three refusals")
    assert all("TELEGRAM_OPERATOR_IDS is not set" in t for t in bot.fake.texts())
    eventually(lambda: bot.counters()["ignored"] == 4, timeout=10_000 * MS, interval=10 * MS, what="4 ignored")
    assert bot.audit() == [] and bot.flag("killswitch") is None


def test_status_shows_pending_exits_and_the_needs_review_queue(bot: Bot) -> None:
    bot.says(ALICE, "/status", "alice")
    quiet = bot.reply("exits pending")
    assert "exits pending: none" in quiet and "needs review: none" in quiet
    trade = bot.db.execute("INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts,"
                           " source) VALUES ('KRW-BTC', 'sell', 100, 1, 100, 0, 't', now(), 't') RETURNING id"
                           ).fetchone()[0]
    bot.db.execute("INSERT INTO pending_exits (paper_trade_id, market, mode, reason, next_at)"
                   " VALUES (%s, 'KRW-BTC', 'live', 'blocked (BREAKER_OPEN)', now())", (trade,))
    bot.says(ALICE, "/status", "alice")
    shown = eventually(lambda: [t for t in bot.fake.texts() if "exits pending: 1" in t], timeout=10_000 * MS,
                       interval=10 * MS, what="a /status with the pending exit")[0]
    assert f"paper trade {trade}: KRW-BTC live exit" in shown and "blocked (BREAKER_OPEN)" in shown
