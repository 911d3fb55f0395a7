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

from tests.e2e.harness import SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
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


def test_an_exposed_dashboard_needs_its_token_and_then_asks_for_it(runner: Runner, db_url: str) -> None:
    exposed = base_env(db_url, runner.workdir, DASHBOARD_PORT=str(_free_port()), DASHBOARD_HOST="0.0.0.0")
    refused = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], exposed, timeout=60)
    assert refused.returncode == 2
    assert "DASHBOARD_TOKEN: required because DASHBOARD_HOST=0.0.0.0 is not a loopback address" in refused.stderr
    assert "Traceback" not in refused.stderr

    token = "e2e-dashboard-token-0123456789"
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL],
                        {**exposed, "DASHBOARD_TOKEN": token})
    url = eventually(lambda: (m := re.search(r"dashboard: (http://\S+)", output(proc))) and m.group(1),
                     timeout=60, interval=0.05, what="the dashboard URL printed")
    local = url.replace("0.0.0.0", "127.0.0.1").rstrip("/")
    assert requests.get(f"{local}/api/status", timeout=5).status_code == 401
    assert requests.get(f"{local}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code \
        == 200
    assert requests.get(f"{local}/healthz", timeout=5).status_code in {200, 503}  # open to health checkers
    proc.send_signal(signal.SIGINT)
    assert exit_code(proc, 60) == 0, output(proc)
    assert token not in output(proc)
