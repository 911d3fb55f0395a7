"""ctl's durable control messages against a running system: effect, acknowledgement, audit."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.system import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
from tests.helpers import eventually


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def test_control_commands_are_carried_out_acknowledged_and_audited(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    none_running = runner.run(["ctl", "pause"], env, timeout=60)
    assert none_running.returncode == 1 and "not running" in none_running.stdout

    proc = runner.start(["--speed", "300", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        def attempts() -> int:
            assert proc.poll() is None, output(proc)
            return conn.execute("SELECT count(*) FROM order_attempts").fetchone()[0]

        eventually(lambda: attempts() > 0, timeout=60, interval=0.05, what="attempts flowing")

        paused = runner.run(["ctl", "pause"], env, timeout=60)
        assert paused.returncode == 0 and "done" in paused.stdout, paused.stdout + paused.stderr
        mark = conn.execute("SELECT coalesce(max(id), 0) FROM order_attempts").fetchone()[0]
        eventually(lambda: conn.execute("SELECT count(*) FROM order_attempts WHERE id > %s AND side = 'bid'",
                                        (mark,)).fetchone()[0] > 0, timeout=60, interval=0.05, what="a paused entry")
        resumed = runner.run(["ctl", "resume"], env, timeout=60)
        assert resumed.returncode == 0

        live = runner.run(["ctl", "mode", "live"], env, timeout=60)
        assert live.returncode == 0, live.stdout + live.stderr
        assert "requested live; execution applies it only if every live guard agrees" in live.stdout
        assert "ctl status" in live.stdout
        assert conn.execute("SELECT value FROM system_flags WHERE name = 'mode'").fetchone() == ("live",)
        requested = conn.execute("SELECT detail FROM execution_events WHERE kind = 'mode_requested'"
                                 " ORDER BY id").fetchall()
        assert [d["mode"] for (d,) in requested] == ["live"] and requested[0][0]["by"].startswith("cli:")
        shown = runner.run(["ctl", "status"], env, timeout=60)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "execution: requested live (set by ctl/Telegram); effective " in shown.stdout
        for line in ("exchange breakers: ", "reconciliation: ", "entries: ", "live positions: "):
            assert line in shown.stdout, shown.stdout
        assert runner.run(["ctl", "mode", "shadow"], env, timeout=60).returncode == 0
        assert conn.execute("SELECT value FROM system_flags WHERE name = 'mode'").fetchone() == ("shadow",)

        restart = runner.run(["ctl", "restart", "market/bar"], env, timeout=60)
        assert restart.returncode == 0, restart.stdout
        eventually(lambda: conn.execute("SELECT 1 FROM supervisor_events WHERE supervisor = 'market'"
                                        " AND kind = 'started' AND child_id = 'feed' AND incarnation = 2").fetchone(),
                   timeout=30, interval=0.05, what="bar restarted with the feed after it")
        unknown = runner.run(["ctl", "restart", "nope"], env, timeout=60)
        assert unknown.returncode == 1 and "known:" in unknown.stdout
        reconcile = runner.run(["ctl", "reconcile"], env, timeout=60)
        assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
        assert "reconciliation requested; its report follows as an alert and in ctl status" in reconcile.stdout

        flatten = runner.run(["ctl", "flatten"], env, timeout=60)
        assert flatten.returncode == 0, flatten.stdout
        command_id = conn.execute("SELECT max(id) FROM control_commands WHERE command = 'flatten'").fetchone()[0]
        eventually(lambda: conn.execute("SELECT value FROM system_flags WHERE name = 'flatten_done'").fetchone()
                   == (command_id,), timeout=60, interval=0.05, what="flatten carried out by the paper book")

        killed = runner.run(["ctl", "killswitch", "on"], env, timeout=60)
        assert killed.returncode == 0
        assert "kill switch ON: new entries are blocked (exits still go through)" in killed.stdout
        after = conn.execute("SELECT coalesce(max(id), 0) FROM paper_trades").fetchone()[0]
        eventually(lambda: conn.execute("SELECT count(*) FROM order_attempts WHERE paper_trade_id > %s"
                                        " AND side = 'bid'", (after,)).fetchone()[0], timeout=60, interval=0.05,
                   what="an entry committed after the kill switch")
        proc.send_signal(signal.SIGINT)
        assert exit_code(proc, 60) == 0, output(proc)

        blocked = dict(conn.execute("SELECT blocked_reasons::text, count(*) FROM order_attempts"
                                    " WHERE status = 'blocked' GROUP BY 1").fetchall())
        assert any("PAUSED" in k for k in blocked) and any("KILL_SWITCH" in k for k in blocked)
        assert conn.execute("SELECT count(*) FROM order_attempts WHERE status = 'blocked' AND side = 'ask'"
                            " AND blocked_reasons::text LIKE '%PAUSED%'").fetchone()[0] == 0, "exits never paused"
        audit = conn.execute("SELECT command, status, issuer FROM control_commands ORDER BY id").fetchall()
        assert [(c, s) for c, s, _ in audit] == [("pause", "done"), ("resume", "done"), ("mode", "done"),
                                                 ("mode", "done"), ("restart", "done"), ("restart", "failed"),
                                                 ("reconcile", "done"), ("flatten", "done"), ("killswitch", "done")]
        assert all(issuer.startswith("cli:") for *_x, issuer in audit)
        trades = conn.execute("SELECT count(*) FROM paper_trades").fetchone()[0]
        assert conn.execute("SELECT count(DISTINCT paper_trade_id), count(*) FROM order_attempts").fetchone() == (
            trades, trades)
        assert conn.execute("SELECT count(*) FROM order_attempts WHERE paper_trade_id > %s AND side = 'bid' AND"
                            " (status <> 'blocked' OR blocked_reasons::text NOT LIKE '%%KILL_SWITCH%%')",
                            (after,)).fetchone()[0] == 0, "every entry after the kill switch is blocked"


def test_bad_ctl_usage_exits_2(runner: Runner) -> None:
    env = base_env(None, runner.workdir)
    for args in (["ctl"], ["ctl", "frobnicate"], ["ctl", "mode", "yolo"], ["ctl", "killswitch"]):
        done = runner.run(args, env, timeout=60)
        assert done.returncode == 2 and "usage:" in done.stderr, args
