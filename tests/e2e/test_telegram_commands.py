"""Telegram commands against a running system, through a fake Bot API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, output
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import eventually

TOKEN = "123456789:AAExampleTokenValue_abcdefghijklmnop"
CHAT = 4242


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def test_commands_from_the_operator_chat_only_and_destructive_ones_need_confirmation(runner: Runner,
                                                                                     db_url: str) -> None:
    with FakeTelegram(token=TOKEN) as fake:
        env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY, TELEGRAM_BOT_TOKEN=TOKEN,
                       TELEGRAM_CHAT_ID=str(CHAT), TELEGRAM_OPERATOR_IDS=str(CHAT), TELEGRAM_API_URL=fake.url)
        proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)

        def reply_containing(text: str) -> str:
            def found() -> str | None:
                assert proc.poll() is None, output(proc)
                return next((m for m in fake.texts() if text in m), None)
            return eventually(found, timeout=30, interval=0.05, what=f"a reply containing {text!r}")

        with psycopg.connect(db_url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT count(*) FROM runtime_actors WHERE actor = 'telegram'"
                                            " AND state = 'running'").fetchone()[0] and conn.execute(
                                                "SELECT count(*) FROM runtime_nodes WHERE state = 'running'"
                                            ).fetchone()[0] == 4, timeout=60, interval=0.05, what="system up")
            fake.user_says(999, "/pause", username="stranger")
            fake.user_says(CHAT, "/status")
            status = reply_containing("switches:")
            assert "market: running" in status
            assert conn.execute("SELECT count(*) FROM control_commands").fetchone()[0] == 0, "stranger ignored"

            fake.user_says(CHAT, "/pause")
            assert "✅ pause" in reply_containing("pause:")
            fake.user_says(CHAT, "/killswitch on")
            reply_containing("kill switch ON")
            fake.user_says(CHAT, "/killswitch off")
            reply_containing("Reply /confirm")
            assert conn.execute("SELECT value FROM system_flags WHERE name = 'killswitch'").fetchone()[0] is True
            fake.user_says(CHAT, "/confirm")
            reply_containing("kill switch off")
            fake.user_says(CHAT, "/mode live")
            reply_containing("mode live is destructive")
            fake.user_says(CHAT, "/confirm")
            assert "requested live; execution applies it only if every live guard agrees" in reply_containing(
                "✅ mode")
            assert conn.execute("SELECT value FROM system_flags WHERE name = 'mode'").fetchone() == ("live",)
            fake.user_says(CHAT, "/confirm")
            reply_containing("Nothing to confirm")
            fake.user_says(CHAT, "/killswitch maybe")
            reply_containing("Usage: /killswitch on|off")
            audit = conn.execute("SELECT command, args::text, status, issuer FROM control_commands ORDER BY id"
                                 ).fetchall()
        assert [(c, s) for c, _a, s, _i in audit] == [("pause", "done"), ("killswitch", "done"),
                                                      ("killswitch", "done"), ("mode", "done")]
        asked = "telegram:user 4242 (operator) in chat 4242"
        assert [i for *_x, i in audit] == [asked, asked, f"{asked}; confirmed by user 4242 (operator)",
                                           f"{asked}; confirmed by user 4242 (operator)"]
        n_control = len(audit)

        # a restart of the ops node must not replay commands already handled
        with psycopg.connect(db_url, autocommit=True) as conn:
            ops = conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'ops'").fetchone()[0]
            done = runner.run(["ctl", "restart", "ops"], env, timeout=60)
            assert done.returncode == 0, done.stdout
            eventually(lambda: conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'ops' AND state = 'running'"
                                            ).fetchone() not in (None, (ops,)), timeout=30, interval=0.05,
                       what="ops restarted")
            fake.user_says(CHAT, "/resume")
            reply_containing("entries resumed")
            for command, answer in (("/positions", "paper positions"), ("/profit", "paper PnL: realised"),
                                    ("/balance", "No exchange account (no API keys)"),
                                    ("/help", "/reconcile — reconcile with the exchange"),
                                    ("/reconcile", "✅ reconcile: reconciliation requested"),
                                    ("/mode shadow", "✅ mode: requested shadow"),
                                    ("/restart market/strategy", "✅ restart"), ("/nonsense", "Unknown command")):
                fake.user_says(CHAT, command)
                reply_containing(answer)
            fake.user_says(CHAT, "/flatten")
            reply_containing("flatten is destructive")
            assert conn.execute("SELECT count(*) FROM control_commands WHERE issuer LIKE 'telegram:%'"
                                ).fetchone()[0] == n_control + 4  # resume, reconcile, mode, restart; not flatten



GROUP = -1004242  # the operator chat is a group: every member writes in it
OPERATOR, STRANGER = 4242, 5555


def test_in_a_group_only_an_operator_commands_and_only_the_asker_confirms(runner: Runner, db_url: str) -> None:
    """Security review, issue 15, finding 6: the chat is not the person."""
    with FakeTelegram(token=TOKEN) as fake:
        env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY, TELEGRAM_BOT_TOKEN=TOKEN,
                       TELEGRAM_CHAT_ID=str(GROUP), TELEGRAM_OPERATOR_IDS=f"{OPERATOR},4343", TELEGRAM_API_URL=fake.url)
        proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)

        def says(user: int, text: str, name: str) -> None:
            fake.user_says(GROUP, text, username=name, user_id=user)

        def reply_containing(text: str) -> str:
            def found() -> str | None:
                assert proc.poll() is None, output(proc)
                return next((m for m in fake.texts() if text in m), None)
            return eventually(found, timeout=30, interval=0.05, what=f"a reply containing {text!r}")

        with psycopg.connect(db_url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT count(*) FROM runtime_actors WHERE actor = 'telegram'"
                                            " AND state = 'running'").fetchone()[0] and conn.execute(
                                                "SELECT count(*) FROM runtime_nodes WHERE state = 'running'"
                                            ).fetchone()[0] == 4, timeout=60, interval=0.05, what="system up")
            says(OPERATOR, "/killswitch on", "alice")  # as the daily-loss limit would
            reply_containing("kill switch ON")

            for text in ("/killswitch off", "/flatten", "/mode live", "/confirm"):
                says(STRANGER, text, "mallory")
            says(OPERATOR, "/status", "alice")  # answered only after the stranger's messages were handled
            reply_containing("switches: killswitch")
            assert not [t for t in fake.texts() if "destructive" in t or "Nothing" in t], "no reply to the stranger"

            says(OPERATOR, "/killswitch off", "alice")
            reply_containing("Reply /confirm")
            says(STRANGER, "/confirm", "mallory")
            says(4343, "/confirm", "bob")  # another operator: still not the one who asked
            reply_containing("Nothing of yours to confirm")
            flag = "SELECT value FROM system_flags WHERE name = 'killswitch'"
            assert conn.execute(flag).fetchone() == (True,)
            says(OPERATOR, "/confirm", "alice")
            reply_containing("✅ killswitch: kill switch off")
            assert conn.execute(flag).fetchone() == (False,)
            audit = conn.execute("SELECT command, args, status, issuer FROM control_commands ORDER BY id").fetchall()
        asker = f"telegram:user {OPERATOR} (alice) in chat {GROUP}"
        assert audit == [("killswitch", {"state": "on"}, "done", asker),
                         ("killswitch", {"state": "off"}, "done", f"{asker}; confirmed by user {OPERATOR} (alice)")]
        assert "ignored a Telegram message from user 5555 (mallory) in the operator chat" in output(proc)
