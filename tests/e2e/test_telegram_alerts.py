"""Alerts through a Telegram outage and a notifier restart: every one delivered exactly once."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from notify.compose import line
from model.alerts import Alert
from tests.e2e.harness import BUSY_STRATEGY, SLICE_FROM, Runner, base_env, exit_code, output
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import eventually

TOKEN = "123456789:AAExampleTokenValue_abcdefghijklmnop"
CHAT = -100123


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def test_outage_and_notifier_kill_lose_nothing_and_send_nothing_twice(runner: Runner, db_url: str) -> None:
    with FakeTelegram(token=TOKEN) as fake:
        fake.faults.down = True
        env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY, TELEGRAM_BOT_TOKEN=TOKEN,
                       TELEGRAM_CHAT_ID=str(CHAT), TELEGRAM_API_URL=fake.url)
        proc = runner.start(["--speed", "max", "--from", SLICE_FROM, "--until", "2024-08-24T23:28:00",
                             "--exit-at-end"], env)
        with psycopg.connect(db_url, autocommit=True) as conn:
            def ops_pid_during_outage() -> int | None:
                assert proc.poll() is None, output(proc)
                failed = conn.execute("SELECT count(*) FROM alerts WHERE attempts > 0 AND sent_at IS NULL").fetchone()
                row = conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'ops' AND state = 'running'").fetchone()
                return row[0] if failed[0] and row else None

            os.kill(eventually(ops_pid_during_outage, timeout=60, interval=0.05, what="delivery failing"),
                    signal.SIGKILL)
            eventually(lambda: conn.execute("SELECT 1 FROM supervisor_events WHERE supervisor = 'root' AND"
                                            " kind = 'started' AND child_id = 'ops' AND incarnation = 2").fetchone(),
                       timeout=30, interval=0.05, what="ops node restarted")
            fake.faults.down = False  # Telegram is back
            assert exit_code(proc, 120) == 0, output(proc)
            rows = conn.execute("SELECT id, created_at, kind, level, text, attempts, channel, sent_at FROM alerts"
                                " ORDER BY id").fetchall()
    assert rows and all(r[7] is not None and r[6] == "telegram" for r in rows)
    kinds = Counter(r[2] for r in rows)
    assert kinds["paper_fill"] > 5 and kinds["node_exit"] == 1
    delivered = Counter(text for message in fake.texts() for text in message.split("\n"))
    for r in rows:
        assert delivered[line(Alert(id=r[0], created_at=r[1], kind=r[2], level=r[3], text=r[4], attempts=r[5]))] == 1
    assert all(len(m) <= 4096 for m in fake.texts())
    assert len(fake.texts()) < len(rows), "bursts were grouped"
    assert TOKEN not in output(proc)


def test_disabled_kinds_and_low_levels_are_recorded_but_not_sent(runner: Runner, db_url: str) -> None:
    with FakeTelegram(token=TOKEN) as fake:
        env = base_env(db_url, runner.workdir, STRATEGY_PARAMS='{"window": 3, "entry_bps": 0, "exit_bps": 0}',
                       TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID=str(CHAT), TELEGRAM_API_URL=fake.url,
                       ALERTS_DISABLED="paper_fill", ALERT_MIN_LEVEL="info")
        done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        with psycopg.connect(db_url) as conn:
            channels = dict(conn.execute("SELECT kind, min(channel) FROM alerts GROUP BY kind").fetchall())
        assert channels["paper_fill"] == "suppressed" and channels["system"] == "telegram"
        assert not any("paper_fill" in m for m in fake.texts())
        assert any("system starting" in m for m in fake.texts())
