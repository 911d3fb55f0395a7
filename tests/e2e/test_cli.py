"""The command line surface: ctl status against a running and a stopped system, bad input, secrets."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.system import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, output
from tests.helpers import eventually


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def test_ctl_status_shows_the_running_tree_and_says_when_nothing_runs(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    before = runner.run(["ctl", "status"], env, timeout=60)
    assert before.returncode == 1
    assert "not running" in before.stdout

    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM runtime_actors WHERE state = 'running'"
                                        " AND last_message_at IS NOT NULL").fetchone()[0] >= 4,
                   timeout=60, interval=0.05, what="actors reporting")
    shown = runner.run(["ctl", "status"], env, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in ("root", "ops", "execution", "market", "market/feed", "market/bar", "market/strategy",
                 "market/paper", "execution/execution", "execution/account", "ops/notifier"):
        assert name in shown.stdout
    assert str(proc.pid) in shown.stdout
    assert "running" in shown.stdout and "MAILBOX" in shown.stdout

    proc.send_signal(signal.SIGINT)  # Ctrl-C: orderly stop in reverse start order
    assert proc.wait(60) == 0, output(proc)
    log = output(proc)
    assert log.index("exited market#1") < log.index("exited execution#1") < log.index("exited ops#1")
    after = runner.run(["ctl", "status"], env, timeout=60)
    assert after.returncode == 1
    assert "not running" in after.stdout


def test_embedded_database_when_no_database_url(runner: Runner) -> None:
    env = base_env(None, runner.workdir)
    done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (runner.workdir / "pgdata" / "PG_VERSION").exists()
    after = runner.run(["ctl", "status"], env, timeout=60)
    assert after.returncode == 1 and "not running" in after.stdout


def test_bad_configuration_names_every_bad_setting_and_exits_2(runner: Runner) -> None:
    env = base_env(None, runner.workdir, REPLAY_SPEED="fast", PAPER_FEE_RATE="5", BOT_ID="Not Valid!")
    done = runner.run([], env, timeout=60)
    assert done.returncode == 2
    for name in ("REPLAY_SPEED", "PAPER_FEE_RATE", "BOT_ID"):
        assert name in done.stderr
    assert not (runner.workdir / "pgdata").exists(), "nothing may start on a bad configuration"


def test_bad_arguments_get_usage_and_exit_2(runner: Runner) -> None:
    env = base_env(None, runner.workdir)
    for args in (["--speed", "-3"], ["--source", "nope"], ["ctl", "frobnicate"], ["--from"]):
        done = runner.run(args, env, timeout=60)
        assert done.returncode == 2, args
        assert "usage:" in done.stderr


def test_configured_secrets_never_reach_the_logs(runner: Runner, db_url: str) -> None:
    access, secret = "AKIAEXAMPLEACCESS0123456789", "sEcReTkEy-0123456789-abcdefghijkl"
    token = "123456789:AAExampleTokenValue_abcdefghijklmnop"
    env = base_env(db_url, runner.workdir, UPBIT_ACCESS_KEY=access, UPBIT_SECRET_KEY=secret,
                   TELEGRAM_BOT_TOKEN=token, TELEGRAM_CHAT_ID="-1001", LOG_LEVEL="DEBUG")
    done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout + done.stderr
    assert "effective configuration" in text
    for value in (access, secret, token):
        assert value not in text
    assert f"{access[:4]}…{access[-4:]}" in text  # masked, still recognisable
    with psycopg.connect(db_url) as conn:
        dumped = " ".join(str(r) for r in conn.execute(
            "SELECT detail::text, reason FROM supervisor_events UNION ALL SELECT text, kind FROM alerts"))
    for value in (access, secret, token):
        assert value not in dumped
