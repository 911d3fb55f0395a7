"""End to end: the real CLI, node processes, PostgreSQL, the shipped recordings."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import (BUSY_STRATEGY, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, expected_candle_bars,
                              expected_capture_bars, output)
from tests.helpers import eventually


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def _one(conn: psycopg.Connection, sql: str) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def assert_one_attempt_per_paper_trade(conn: psycopg.Connection) -> int:
    trades = int(_one(conn, "SELECT count(*) FROM paper_trades"))
    assert trades > 0, "the slice should produce paper trades"
    per_trade = conn.execute(
        "SELECT p.id, count(a.id) FROM paper_trades p LEFT JOIN order_attempts a ON a.paper_trade_id = p.id"
        " GROUP BY p.id HAVING count(a.id) <> 1").fetchall()
    assert per_trade == [], f"paper trades without exactly one attempt: {per_trade[:10]}"
    assert _one(conn, "SELECT count(*) FROM order_attempts") == trades
    assert _one(conn, "SELECT count(DISTINCT identifier) FROM order_attempts") == trades
    assert _one(conn, "SELECT count(*) FROM order_attempts WHERE status <> 'logged' OR mode <> 'shadow'") == 0
    return trades


def test_capture_replay_yields_the_bars_of_the_raw_frames(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS='{"window": 3, "entry_bps": 0, "exit_bps": 0}')
    done = runner.run(["--source", "capture", "--speed", "max", "--exit-at-end"], env, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = expected_capture_bars()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT market, extract(epoch FROM ts)::bigint, trade_count, volume, late_trades"
                            " FROM market_1s").fetchall()
        stored = {(m, s): (n, v) for m, s, n, v, _late in rows}
        assert stored == expected
        assert sum(late for *_x, late in rows) > 0, "the capture's out-of-order trades are folded in as late"
        assert _one(conn, "SELECT count(DISTINCT source) FROM market_1s") == 1
        assert_one_attempt_per_paper_trade(conn)


def test_candle_slice_at_max_speed_then_exit_at_end(runner: Runner, db_url: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    done = runner.run(["--speed", "max", "--from", SLICE_FROM, "--until", SLICE_UNTIL, "--exit-at-end"], env,
                      timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    bars, volume = expected_candle_bars(SLICE_FROM, SLICE_UNTIL)
    with psycopg.connect(db_url) as conn:
        assert _one(conn, "SELECT count(*) FROM market_1s") == bars
        assert _one(conn, "SELECT sum(volume) FROM market_1s") == volume
        assert _one(conn, "SELECT min(source) FROM market_1s") == "candles-derived"
        trades = assert_one_attempt_per_paper_trade(conn)
        assert _one(conn, "SELECT count(*) FROM alerts WHERE sent_at IS NULL") == 0
        assert _one(conn, "SELECT count(*) FROM alerts WHERE kind = 'paper_fill'") == trades
        kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM supervisor_events")}
        assert {"started", "exited", "stopped"} <= kinds
    assert "final |" in done.stdout


@pytest.mark.parametrize("node", ["execution", "market"])
def test_node_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(runner: Runner, db_url: str,
                                                                          node: str) -> None:
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    proc = runner.start(["--speed", "1200", "--from", SLICE_FROM, "--until", SLICE_UNTIL, "--exit-at-end"], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        def victim() -> int | None:
            assert proc.poll() is None, output(proc)
            if not _one(conn, "SELECT count(*) FROM order_attempts"):
                return None
            row = conn.execute("SELECT pid FROM runtime_nodes WHERE node = %s AND state = 'running'",
                               (node,)).fetchone()
            return row[0] if row and row[0] else None

        pid = eventually(victim, timeout=60, interval=0.05, what=f"{node} node running with attempts made")
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: conn.execute(
            "SELECT 1 FROM supervisor_events WHERE supervisor = 'root' AND kind = 'started' AND child_id = %s"
            " AND incarnation = 2", (node,)).fetchone(), timeout=30, interval=0.05, what=f"{node} restarted")
        assert exit_code(proc, 120) == 0, output(proc)
        exits = conn.execute("SELECT reason FROM supervisor_events WHERE supervisor = 'root' AND kind = 'exited'"
                             " AND child_id = %s AND incarnation = 1", (node,)).fetchall()
        assert exits == [("killed(SIGKILL)",)]
        bars, volume = expected_candle_bars(SLICE_FROM, SLICE_UNTIL)
        assert _one(conn, "SELECT count(*) FROM market_1s") == bars
        assert _one(conn, "SELECT sum(volume) FROM market_1s") == volume
        assert_one_attempt_per_paper_trade(conn)
        assert _one(conn, "SELECT count(*) FROM alerts WHERE kind = 'node_exit'") == 1


def test_same_slice_same_paper_results_with_or_without_a_kill(runner: Runner, db_url: str) -> None:
    """The reference run and a run whose market node is killed agree on every paper trade."""
    env = base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    done = runner.run(["--speed", "max", "--from", SLICE_FROM, "--until", SLICE_UNTIL, "--exit-at-end"], env,
                      timeout=120)
    assert done.returncode == 0, done.stdout
    with psycopg.connect(db_url) as conn:
        reference = conn.execute("SELECT market, side, price, volume, realized_pnl, bar_ts FROM paper_trades"
                                 " ORDER BY id").fetchall()
    # the same database, its sandbox progress reset by the second run
    proc = runner.start(["--reset", "--speed", "1200", "--from", SLICE_FROM, "--until", SLICE_UNTIL,
                         "--exit-at-end"], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        def market_pid() -> int | None:
            assert proc.poll() is None, output(proc)
            root = conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'root'").fetchone()
            if root is None or root[0] != proc.pid:
                return None  # still the previous run's rows
            if int(_one(conn, "SELECT count(*) FROM paper_trades")) < 3:
                return None
            row = conn.execute("SELECT pid FROM runtime_nodes WHERE node = 'market' AND state = 'running'"
                               " AND incarnation = 1").fetchone()
            return row[0] if row else None

        os.kill(eventually(market_pid, timeout=60, interval=0.05, what="market node mid-run"), signal.SIGKILL)
        assert exit_code(proc, 120) == 0, output(proc)
        again = conn.execute("SELECT market, side, price, volume, realized_pnl, bar_ts FROM paper_trades"
                             " ORDER BY id").fetchall()
    assert again == reference
    assert sum((r[4] for r in reference), Decimal(0)) != 0


def test_live_feed_seam_against_a_loopback_upbit(runner: Runner, db_url: str) -> None:
    """FEED_SOURCE=upbit: the real WebSocket client, fed real recorded frames by a fake Upbit."""
    from tests.e2e.harness import CAPTURE_30S
    from tests.fakes.upbit_ws import FakeUpbitServer
    from tests.market.recorded_frames import raw_trade_frames

    frames = raw_trade_frames(CAPTURE_30S)
    with FakeUpbitServer(frames, drop_after=[100, None]) as server:
        env = base_env(db_url, runner.workdir, FEED_SOURCE="upbit", UPBIT_WS_URL=server.url, MARKETS="KRW-LAMB")
        proc = runner.start([], env)
        expected = {k: v for k, v in expected_capture_bars().items() if k[0] == "KRW-LAMB"}
        with psycopg.connect(db_url, autocommit=True) as conn:
            def stored() -> bool:
                assert proc.poll() is None, output(proc)
                return _one(conn, "SELECT count(*) FROM market_1s") == len(expected)

            eventually(stored, timeout=60, interval=0.05, what="every live bar closed by the wall clock")
            rows = conn.execute("SELECT market, extract(epoch FROM ts)::bigint, trade_count, volume, source"
                                " FROM market_1s").fetchall()
        assert {(m, s): (n, v) for m, s, n, v, _src in rows} == expected
        assert {src for *_x, src in rows} == {"live"}
        assert server.accepted >= 2, "the client reconnected after the fake dropped it"
        proc.send_signal(signal.SIGINT)
        assert exit_code(proc, 60) == 0, output(proc)
