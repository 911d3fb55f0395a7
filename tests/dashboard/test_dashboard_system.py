"""``/healthz``, ``/metrics`` and the status JSON against the real system running as a subprocess.

The system's CLI does not start the dashboard yet, so each test starts a ``DashboardServer`` in the
test process on the database the system writes to — exactly what the root will do once wired.
Failures are real: processes are frozen with SIGSTOP or killed with SIGKILL. To hold a killed node
*down* long enough to observe, the test locks a table only that node reads while it starts
(``consumer_cursors``, read by the execution node's ``prepare``), then releases it.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from config import SecretFilter, load_settings
from dashboard import DashboardServer
from tests.dashboard.conftest import get, get_json
from tests.e2e.harness import BUSY_STRATEGY, CAPTURE_30S, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
from tests.helpers import MS, eventually

Start = Callable[..., DashboardServer]
SLOW = ["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL]  # two hours of recording in two minutes


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _h, body = get(url + "metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def _health_is(server: DashboardServer, status: int, reason_start: str = "") -> Callable[[], dict | None]:
    def check() -> dict | None:
        code, verdict = get_json(server.url + "healthz")
        return verdict if code == status and verdict["reason"].startswith(reason_start) else None
    return check


def _pid(conn: psycopg.Connection, node: str) -> int:
    row = conn.execute("SELECT pid FROM runtime_nodes WHERE node = %s", (node,)).fetchone()
    assert row is not None and row[0]
    return int(row[0])


def test_healthz_and_metrics_through_frozen_processes_and_an_orderly_stop(
        runner: Runner, db_url: str, start_dashboard: Start) -> None:
    dash = start_dashboard(db_url, heartbeat_stale_s=1.5, feed_stale_s=5.0)
    assert eventually(_health_is(dash, 503, "root stopped: "), timeout=5000 * MS)  # nothing runs yet
    proc = runner.start(SLOW, base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY))
    eventually(_health_is(dash, 200, "healthy"), timeout=60_000 * MS, interval=0.05, what=f"healthy\n{output(proc)}")

    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM order_attempts").fetchone()[0] > 0,
                   timeout=60_000 * MS, interval=0.05, what="an order attempt")
        m = _samples(dash.url)
        assert m[("upbit_system_running", ())] == 1
        assert m[("upbit_healthy", ())] == 1
        for node in ("ops", "execution", "market"):
            assert m[("upbit_node_up", (("node", node),))] == 1
            assert m[("upbit_child_restarts_total", (("child", node), ("supervisor", "root")))] == 0
        for node, actor in (("market", "feed"), ("market", "bar"), ("market", "strategy"), ("market", "paper"),
                            ("execution", "execution"), ("ops", "notifier")):
            assert ("upbit_actor_mailbox_depth", (("actor", actor), ("node", node))) in m
        assert m[("upbit_feed_trades_total", ())] > 0
        assert m[("upbit_bars_total", ())] > 0
        assert m[("upbit_order_attempts", (("mode", "shadow"), ("status", "logged")))] > 0
        assert ("upbit_alerts_unsent", ()) in m
        assert m[("upbit_feed_last_write_age_seconds", ())] < 5

        root_pid = proc.pid
        os.kill(root_pid, signal.SIGSTOP)  # a hung root: the lock stays held, heartbeats stop
        try:
            eventually(_health_is(dash, 503, "root unresponsive: "), timeout=10_000 * MS, interval=0.05)
        finally:
            os.kill(root_pid, signal.SIGCONT)
        eventually(_health_is(dash, 200), timeout=10_000 * MS, interval=0.05, what="healthy again")

        market = _pid(conn, "market")
        os.kill(market, signal.SIGSTOP)  # a hung node: alive to the root, silent otherwise
        try:
            verdict = eventually(_health_is(dash, 503, "node market unresponsive: "), timeout=10_000 * MS,
                                 interval=0.05)
            assert "actors last reported" in verdict["reason"]
            assert _samples(dash.url)[("upbit_node_up", (("node", "market"),))] == 0
        finally:
            os.kill(market, signal.SIGCONT)
        eventually(_health_is(dash, 200), timeout=10_000 * MS, interval=0.05, what="healthy again")

    proc.send_signal(signal.SIGINT)
    assert exit_code(proc, 60) == 0, output(proc)
    verdict = eventually(_health_is(dash, 503, "root stopped: "), timeout=5000 * MS)
    assert verdict["checks"]["system_lock"] is False


def test_a_killed_node_is_down_until_restarted_and_counted(runner: Runner, db_url: str,
                                                           start_dashboard: Start) -> None:
    dash = start_dashboard(db_url)
    proc = runner.start(SLOW, base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY))
    eventually(_health_is(dash, 200), timeout=60_000 * MS, interval=0.05, what=f"healthy\n{output(proc)}")
    with psycopg.connect(db_url, autocommit=True) as conn, psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE consumer_cursors IN ACCESS EXCLUSIVE MODE")  # the restart will wait on it
        os.kill(_pid(conn, "execution"), signal.SIGKILL)
        # "exited: killed(SIGKILL)" first, for as long as the root takes to decide the restart
        verdict = eventually(_health_is(dash, 503, "node execution down: restarting"), timeout=10_000 * MS,
                             interval=0.02)
        assert verdict["reason"] == "node execution down: restarting after killed(SIGKILL)"
        status, doc = get_json(dash.url + "api/status")
        execution = next(n for n in doc["system"]["nodes"] if n["node"] == "execution")
        assert (status, execution["state"], execution["pid"]) == (200, "down", None)
        assert {a["state"] for a in execution["actors"]} == {"down"}
        blocker.rollback()  # let it start

        eventually(_health_is(dash, 200), timeout=30_000 * MS, interval=0.05, what="restarted and healthy")
        doc = get_json(dash.url + "api/status")[1]
        execution = next(n for n in doc["system"]["nodes"] if n["node"] == "execution")
        assert (execution["state"], execution["incarnation"], execution["restarts"]) == ("running", 2, 1)
        assert execution["last_exit"]["reason"] == "killed(SIGKILL)"
        assert execution["last_exit"]["down_for_s"] > 0
        assert _samples(dash.url)[("upbit_child_restarts_total", (("child", "execution"), ("supervisor", "root")))] == 1
    assert proc.poll() is None, output(proc)


def test_a_finished_replay_is_healthy_and_says_so(runner: Runner, db_url: str, start_dashboard: Start) -> None:
    dash = start_dashboard(db_url, feed_stale_s=1.0)
    runner.start(["--speed", "max", "--from", SLICE_FROM, "--until", "2024-08-24T22:58:00"],
                 base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY))
    verdict = eventually(_health_is(dash, 200, "healthy; the replay has reached the end"), timeout=60_000 * MS,
                         interval=0.05)
    assert verdict["checks"]["feed"]["state"] == "finished"
    assert _samples(dash.url)[("upbit_feed_replay_finished", ())] == 1


def test_a_live_feed_that_goes_quiet_is_stale(runner: Runner, db_url: str, start_dashboard: Start) -> None:
    from tests.fakes.upbit_ws import FakeUpbitServer
    from tests.market.recorded_frames import raw_trade_frames

    dash = start_dashboard(db_url, feed_stale_s=3.0)
    with FakeUpbitServer(raw_trade_frames(CAPTURE_30S)) as upbit:  # sends the capture once, then nothing
        proc = runner.start([], base_env(db_url, runner.workdir, FEED_SOURCE="upbit", UPBIT_WS_URL=upbit.url,
                                         MARKETS="KRW-LAMB"))
        eventually(_health_is(dash, 200), timeout=60_000 * MS, interval=0.05, what=f"bars flowing\n{output(proc)}")
        verdict = eventually(_health_is(dash, 503, "feed stale: no bar stored for "), timeout=20_000 * MS,
                             interval=0.05)
        assert verdict["checks"]["feed"]["kind"] == "live"
        status, doc = get_json(dash.url + "api/status")
        assert (status, doc["feed"]["connected"], doc["feed"]["markets"][0]["market"]) == (200, True, "KRW-LAMB")


def test_no_configured_secret_ever_reaches_a_page(runner: Runner, db_url: str, start_dashboard: Start,
                                                  tmp_path: Path) -> None:
    with socket.socket() as s:  # a Telegram API that refuses connections: deliveries fail and say why
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    secrets = {"UPBIT_ACCESS_KEY": "qX7vUj2Lm9PzR4tK8sW1yB6nC3dF5gH0aE2iJ4oL",
               "UPBIT_SECRET_KEY": "Zr8Tq2Wm5Xp9Kc3Vb7Nh1Jd4Lf6Gs0Ay2Ue8Io5Rt",
               "TELEGRAM_BOT_TOKEN": "987654321:AAF_s3cretT0kenForTheDashboardTest-xyz"}
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY, TELEGRAM_CHAT_ID="123456789",
                   TELEGRAM_API_URL=dead, **secrets)
    empty = tmp_path / "empty.env"
    empty.write_text("")
    settings = load_settings(env=env, env_file=empty)  # what the root will pass: the same settings
    dash = start_dashboard(db_url, redact=SecretFilter(settings).redact)
    proc = runner.start(SLOW, env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM order_attempts").fetchone()[0] >= 3
                   and conn.execute("SELECT count(*) FROM alerts").fetchone()[0] >= 3,
                   timeout=60_000 * MS, interval=0.05, what=f"attempts and alerts\n{output(proc)}")
    bodies = {path: get(dash.url + path)[2] for path in
              ("", "api/status", "api/series", "healthz", "metrics", "static/app.js", "static/app.css")}
    assert b"paper_fill" in bodies["api/status"]  # real content was served
    for name, value in secrets.items():
        for path, body in bodies.items():
            assert value.encode() not in body, f"{name} in /{path}"
    assert proc.poll() is None, output(proc)
