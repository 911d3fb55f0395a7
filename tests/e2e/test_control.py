"""ctl's durable control messages against a running system: effect, acknowledgement, audit."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from persistence import control, runtime
from system.commands import CommandHandler, Outcome
from tests.e2e.harness import BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
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

    # six hours of candles at 300x: 72 s of trades, so the market still trades when flatten needs a
    # next trade, however slowly a busy machine carries out the commands before it
    proc = runner.start(["--speed", "300", "--from", SLICE_FROM, "--until", "2024-08-25T04:28:00"], env)
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


@pytest.mark.parametrize("timeout", ["-5", "0", "nan", "inf", "-inf", "1e9", "soon"])
def test_a_timeout_that_is_not_a_positive_finite_number_of_seconds_is_a_usage_error(runner: Runner,
                                                                                    timeout: str) -> None:
    done = runner.run(["ctl", "killswitch", "off", "--timeout", timeout], base_env(None, runner.workdir), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage:" in done.stderr and "error: argument --timeout" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


class _Nodes:
    """A root's node operations that must not be used (a withdrawn command must not reach them)."""

    def restart(self, node: str) -> None:
        raise AssertionError(f"restart {node}")

    def crash(self, node: str, actor: str, note: str) -> Outcome:
        raise AssertionError(f"crash {node}/{actor}: {note}")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_ctl_withdraws_its_command_and_the_root_never_carries_it_out(
        runner: Runner, db_url: str, sig: signal.Signals, code: int) -> None:
    env = base_env(db_url, runner.workdir)
    with psycopg.connect(db_url, autocommit=True) as root:
        assert runtime.try_lock_system(root)  # a root that is busy or frozen: it holds the lock, handles nothing
        control.set_flag(root, "killswitch", True, "risk")  # the automatic daily-loss kill switch
        ctl = runner.start(["ctl", "killswitch", "off", "--timeout", "600"], env, name="ctl")
        command_id = eventually(lambda: root.execute("SELECT id FROM control_commands WHERE status = 'pending'"
                                                     ).fetchone(), timeout=30, interval=0.05,
                                what="ctl's command pending")[0]
        ctl.send_signal(sig)
        assert exit_code(ctl, 30) == code, output(ctl)
        text = output(ctl)
        assert "Traceback" not in text, text
        assert text.strip().splitlines()[-1] == (f"ctl: {sig.name}: command #{command_id} (killswitch) withdrawn"
                                                 " before the system acted on it; it will not be carried out")
        row = control.get(root, command_id)
        assert row is not None and row.status == "expired"
        assert row.result == f"withdrawn: ctl was interrupted ({sig.name}) before an acknowledgement"

        # the root wakes up: nothing is carried out, the kill switch stays on
        nodes = _Nodes()
        handler = CommandHandler(restart_node=nodes.restart, crash_actor=nodes.crash, actor_nodes=lambda _c: {})
        assert handler.handle_pending(root) == 0
        assert (row := control.get(root, command_id)) is not None and row.status == "expired"
        assert root.execute("SELECT value FROM system_flags WHERE name = 'killswitch'").fetchone() == (True,)


def test_a_command_whose_deadline_passed_while_the_root_was_frozen_is_never_carried_out(runner: Runner,
                                                                                        db_url: str) -> None:
    """The issuer could not withdraw it (ctl was SIGKILLed): the deadline alone holds it back."""
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM runtime_nodes WHERE state = 'running'"
                                        " AND pid IS NOT NULL").fetchone()[0] == 4, timeout=60, interval=0.05,
                   what="system up")
        os.kill(proc.pid, signal.SIGSTOP)  # the root is frozen: the lock stays held, no command is handled
        try:
            ctl = runner.start(["ctl", "killswitch", "on", "--timeout", "1"], env, name="ctl")
            command_id = eventually(lambda: conn.execute("SELECT id FROM control_commands WHERE status = 'pending'"
                                                         ).fetchone(), timeout=30, interval=0.05,
                                    what="ctl's command pending")[0]
            ctl.kill()  # no chance to withdraw it
            assert exit_code(ctl, 30) == -signal.SIGKILL
            eventually(lambda: conn.execute("SELECT clock_timestamp() > expires_at FROM control_commands"
                                            " WHERE id = %s", (command_id,)).fetchone()[0], timeout=30,
                       interval=0.05, what="the deadline passed")
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        # commands are handled in id order: once this one is done, the stale one has had its chance
        paused = runner.run(["ctl", "pause"], env, timeout=60)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert conn.execute("SELECT status, result, handled_by FROM control_commands WHERE id = %s",
                            (command_id,)).fetchone() == ("expired", control.OVERDUE, "root")
        assert conn.execute("SELECT value FROM system_flags WHERE name = 'killswitch'").fetchone() is None
        issuer = conn.execute("SELECT issuer FROM control_commands WHERE id = %s", (command_id,)).fetchone()[0]
        assert conn.execute("SELECT level FROM alerts WHERE text = %s",
                            (f"killswitch on by {issuer}: expired — {control.OVERDUE}",)).fetchall() == [("warning",)]
    proc.send_signal(signal.SIGINT)
    assert exit_code(proc, 60) == 0, output(proc)


def test_a_runtime_mode_lasts_until_the_next_start(runner: Runner, db_url: str) -> None:
    """An operator who sets TRADE_MODE and restarts to stop real orders gets TRADE_MODE, whatever
    `ctl mode` said during the previous run (review finding 4)."""
    env = base_env(db_url, runner.workdir, TRADE_MODE="shadow")
    with psycopg.connect(db_url, autocommit=True) as conn:
        control.set_flag(conn, "mode", "live", "cli:operator@host")  # what `ctl mode live` left behind
    done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TRADE_MODE=shadow governs this start; the runtime mode 'live' set by cli:operator@host" in done.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT value FROM system_flags WHERE name = 'mode'").fetchone() is None
        (discarded,) = conn.execute("SELECT detail FROM execution_events WHERE kind = 'mode_discarded'").fetchone()
        assert (discarded["mode"], discarded["configured"]) == ("live", "shadow")
        requested = [d["requested"] for (d,) in conn.execute(
            "SELECT detail FROM execution_events WHERE kind = 'mode_changed'")]
        assert requested and set(requested) == {"shadow"}


def test_reset_refuses_to_forget_a_live_ledger(runner: Runner, db_url: str) -> None:
    """--reset truncates the attempts and their fills: never where live trading is possible (finding 5)."""
    env = base_env(db_url, runner.workdir)
    armed = runner.run(["--reset", "--source", "capture", "--exit-at-end"], {**env, "LIVE_TRADING": "true"},
                       timeout=90)
    assert armed.returncode == 1 and "--reset refused: LIVE_TRADING=true" in armed.stdout, armed.stdout
    with psycopg.connect(db_url, autocommit=True) as conn:
        trade = conn.execute(
            "INSERT INTO paper_trades (market, side, price, volume, amount_krw, fee_krw, reason, bar_ts, source)"
            " VALUES ('KRW-BTC', 'buy', 1, 1, 1, 0, 't', now(), 't') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO order_attempts (paper_trade_id, attempt, identifier, mode, status, market, side,"
                     " request) VALUES (%s, 1, 'sbx-1-1-abcdefgh', 'live', 'done', 'KRW-BTC', 'bid', '{}')", (trade,))
    ledger = runner.run(["--reset", "--source", "capture", "--exit-at-end"], env, timeout=90)
    assert ledger.returncode == 1 and "holds 1 live order attempt(s)" in ledger.stdout, ledger.stdout
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM order_attempts").fetchone() == (1,)
