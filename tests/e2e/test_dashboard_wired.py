"""The dashboard as the running system serves it (DASHBOARD_PORT), and a taken port never stops trading."""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.e2e.system import SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
from tests.helpers import eventually


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_system_serves_its_dashboard_health_and_metrics(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, DASHBOARD_PORT=str(_free_port()))
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    url = eventually(lambda: (m := re.search(r"dashboard: (http://\S+)", output(proc))) and m.group(1),
                     timeout=60, interval=0.05, what="the dashboard URL printed")
    health = eventually(lambda: (r := requests.get(f"{url.rstrip('/')}/healthz", timeout=5)).status_code == 200 and r,
                        timeout=60, interval=0.1, what="healthy")
    assert health.json()
    metrics = requests.get(f"{url.rstrip('/')}/metrics", timeout=5).text
    assert "# TYPE" in metrics
    assert requests.get(url, timeout=5).status_code == 200
    proc.send_signal(signal.SIGINT)
    assert exit_code(proc, 60) == 0, output(proc)


def test_a_taken_dashboard_port_is_an_alert_not_a_stop(runner: Runner, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = base_env(db_url, runner.workdir, DASHBOARD_PORT=str(taken.getsockname()[1]))
        done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM alerts WHERE kind = 'dashboard'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM market_1s").fetchone()[0] > 0
