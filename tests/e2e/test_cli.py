"""The command line surface: ctl status against a running and a stopped system, bad input, secrets."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import (BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, expected_candle_bars,
                              output)
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
    assert exit_code(proc, 60) == 0, output(proc)
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


def test_an_unreachable_database_at_start_is_one_line_naming_it_masked(runner: Runner) -> None:
    password = "s3cret-Passw0rd"
    env = base_env(f"postgresql://trader:{password}@127.0.0.1:1/ledger", runner.workdir)
    done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=60)
    assert done.returncode == 1
    text = done.stdout + done.stderr
    assert "Traceback" not in text and password not in text
    line = next(ln for ln in text.splitlines() if ln.startswith("error: "))
    assert "the database is unreachable (DATABASE_URL=postgresql://trader:****@127.0.0.1:1/ledger)" in line
    assert "Connection refused" in line


@pytest.mark.parametrize(("content", "problem"), [
    ("market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,85533000,0.1,BID\nKRW-BTC,1724538481000,1E+400000,1,BID\n",
     "mine.csv:3: column 'price': 1E+400000 is too large"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,1724538480,85533000,0.1,BID\n",
     "mine.csv:2: column 'ts_ms': 1724538480 looks like seconds, expected milliseconds"),
    ("market,ts_ms,price,volume,side\nKRW-,1724538480000,85533000,0.1,BID\n", "mine.csv:2: column 'market'"),
    ("market,ts_ms,price,volume,side\nKRW-BTC,²,85533000,0.1,BID\n", "mine.csv:2: column 'ts_ms'"),
    ("market,ts_ms,price,volume\nKRW-BTC,1724538480000,85533000,0.1\n", "missing column(s) 'side' of a trade file"),
])
def test_a_bad_replay_file_is_named_before_anything_starts(runner: Runner, content: str, problem: str) -> None:
    data = runner.workdir / "mine.csv"
    data.write_text(content, encoding="utf-8")
    env = base_env(None, runner.workdir, REPLAY_FILE=str(data))
    done = runner.run(["--speed", "max", "--exit-at-end"], env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "REPLAY_FILE: " in done.stderr and problem in done.stderr
    assert "Traceback" not in done.stderr
    assert not (runner.workdir / "pgdata").exists(), "nothing may start on a bad recording"


def test_bad_arguments_get_usage_and_exit_2(runner: Runner) -> None:
    env = base_env(None, runner.workdir)
    for args in (["--speed", "-3"], ["--source", "nope"], ["ctl", "frobnicate"], ["--from"]):
        done = runner.run(args, env, timeout=60)
        assert done.returncode == 2, args
        assert "usage:" in done.stderr


def test_configured_secrets_never_reach_the_logs(runner: Runner, db_url: str) -> None:
    from tests.fakes.telegram_server import FakeTelegram

    access, secret = "AKIAEXAMPLEACCESS0123456789", "sEcReTkEy-0123456789-abcdefghijkl"
    token = "123456789:AAExampleTokenValue_abcdefghijklmnop"
    with FakeTelegram(token=token) as fake:
        env = base_env(db_url, runner.workdir, UPBIT_ACCESS_KEY=access, UPBIT_SECRET_KEY=secret,
                       TELEGRAM_BOT_TOKEN=token, TELEGRAM_CHAT_ID="-1001", TELEGRAM_API_URL=fake.url,
                       LOG_LEVEL="DEBUG")
        done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout + done.stderr
    assert "effective configuration" in text
    for value in (access, secret, token):
        assert value not in text
    assert f"{access[:4]}…{access[-4:]}" in text  # masked, still recognisable
    assert fake.texts(), "alerts went out through Telegram"
    with psycopg.connect(db_url) as conn:
        dumped = " ".join(str(r) for r in conn.execute(
            "SELECT detail::text, reason FROM supervisor_events UNION ALL SELECT text, kind FROM alerts"))
    for value in (access, secret, token):
        assert value not in dumped


def test_killing_the_root_leaves_no_orphan_and_a_new_start_resumes(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    proc = runner.start(["--speed", "600", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        def node_pids() -> list[int]:
            assert proc.poll() is None, output(proc)
            rows = conn.execute("SELECT pid FROM runtime_nodes WHERE node <> 'root' AND state = 'running'"
                                " AND pid IS NOT NULL").fetchall()
            bars = conn.execute("SELECT count(*) FROM market_1s").fetchone()[0]
            return [r[0] for r in rows] if len(rows) == 3 and bars > 50 else []

        pids = eventually(node_pids, timeout=60, interval=0.05, what="three nodes running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def gone() -> bool:
            for pid in pids:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    continue
                if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z":
                    return False
            return True

        eventually(gone, timeout=15, interval=0.05, what="every node exited with its root")
        bars_before = conn.execute("SELECT count(*) FROM market_1s").fetchone()[0]
        again = runner.run(["--speed", "max", "--from", SLICE_FROM, "--until", SLICE_UNTIL, "--exit-at-end"], env,
                           timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert bars_before > 0
        bars, volume = expected_candle_bars(SLICE_FROM, SLICE_UNTIL)
        assert conn.execute("SELECT count(*), sum(volume) FROM market_1s").fetchone() == (bars, volume)
        trades = conn.execute("SELECT count(*) FROM paper_trades").fetchone()[0]
        assert conn.execute("SELECT count(DISTINCT paper_trade_id) FROM order_attempts").fetchone()[0] == trades
        assert conn.execute("SELECT count(*) FROM order_attempts").fetchone()[0] == trades


def test_watchdog_alerts_once_when_the_root_is_killed_and_once_on_recovery(runner: Runner, db_url: str) -> None:
    from tests.fakes.telegram_server import FakeTelegram

    token = "123456789:AAExampleTokenValue_abcdefghijklmnop"
    with FakeTelegram(token=token) as fake:
        tg = {"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_CHAT_ID": "42", "TELEGRAM_API_URL": fake.url}
        env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
        state = str(runner.workdir / "wd.json")
        watch = ["watchdog", "--stale-after", "5", "--state-file", state]
        proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
        with psycopg.connect(db_url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT count(*) FROM runtime_nodes WHERE state = 'running'"
                                            " AND pid IS NOT NULL").fetchone()[0] == 4, timeout=60, interval=0.05,
                       what="system up")
        healthy = runner.run(watch, {**env, **tg}, timeout=60)
        assert healthy.returncode == 0 and healthy.stdout.startswith("running"), healthy.stdout + healthy.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first = runner.run(watch, {**env, **tg}, timeout=60)
        assert first.returncode == 1 and "not_running" in first.stdout
        again = runner.run(watch, {**env, **tg}, timeout=60)
        assert again.returncode == 1
        assert [m for m in fake.texts() if "not running" in m] == [fake.texts()[0]]
        assert len(fake.texts()) == 1, "one alert per incident, not one per run"
        restarted = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
        with psycopg.connect(db_url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'root'").fetchone()
                       == (restarted.pid,) and conn.execute(
                           "SELECT count(*) FROM runtime_nodes WHERE state = 'running' AND pid IS NOT NULL"
                       ).fetchone()[0] == 4, timeout=60, interval=0.05, what="system up again")
        back = runner.run(watch, {**env, **tg}, timeout=60)
        assert back.returncode == 0
        assert len(fake.texts()) == 2 and "running again" in fake.texts()[1]
        assert token not in first.stdout + back.stdout


def test_watchdog_sees_a_frozen_root_as_hung(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    watch = ["watchdog", "--stale-after", "1", "--state-file", str(runner.workdir / "wd.json")]
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM runtime_nodes WHERE state = 'running'"
                                        " AND pid IS NOT NULL").fetchone()[0] == 4, timeout=60, interval=0.05,
                   what="system up")
    proc.send_signal(signal.SIGSTOP)  # alive, holding its lock, doing nothing
    try:
        verdict = eventually(lambda: (r := runner.run(watch, env, timeout=60)).returncode == 1 and r.stdout,
                             timeout=30, interval=0.2, what="watchdog reports the frozen root")
        assert verdict.startswith("hung") and "heartbeat" in verdict
    finally:
        proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGINT)
    assert exit_code(proc, 60) == 0, output(proc)
