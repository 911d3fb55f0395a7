"""Test and live execution of the whole system against the simulated Upbit over loopback.

The system runs as its own processes (``python -m supervisor``) with keys of a simulated user;
orders go to the simulator's REST API, which replays the same real candle year so market orders
fill. Faults are injected at the simulator (accept-then-drop, listing lag) and inside the
execution node (FAILPOINTS: SIGKILL right after an attempt is committed, and right after the
exchange answered but before the answer is recorded).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from config import LIVE_CONFIRM_PHRASE
from market.recording import Recording
from tests.e2e.harness import BUSY_STRATEGY, CANDLES, SLICE_FROM, SLICE_UNTIL, Runner, base_env, exit_code, output
from tests.helpers import eventually
from upbit_sim import SimConfig, SimServer

ACCESS, SECRET = "SIMACCESS" * 3, "SIMSECRET" * 6
START_KRW, START_BTC = Decimal(50_000_000), Decimal(1)
HALF_UNTIL = "2024-08-24T23:28:00"  # the first hour of the slice: enough paper trades, at 8 test orders a second


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    config = SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": START_KRW, "BTC": START_BTC}},
                       recording=Recording.open(CANDLES), speed=240.0, max_gap_s=1.0)
    with SimServer(config) as server:
        yield server


def _env(runner: Runner, db_url: str, sim: SimServer, **extra: str) -> dict[str, str]:
    return base_env(db_url, runner.workdir, STRATEGY_PARAMS=BUSY_STRATEGY, UPBIT_ACCESS_KEY=ACCESS,
                    UPBIT_SECRET_KEY=SECRET, UPBIT_REST_URL=sim.rest_url, EXEC_MAX_DATA_LAG_S="600",
                    ACCOUNT_POLL_S="1", **extra)


def _one(conn: psycopg.Connection, sql: str) -> object:
    return conn.execute(sql).fetchone()[0]


def test_test_mode_gives_every_paper_trade_exactly_one_test_ok_attempt(runner: Runner, db_url: str,
                                                                       sim: SimServer) -> None:
    env = _env(runner, db_url, sim, TRADE_MODE="test")
    done = runner.run(["--speed", "600", "--from", SLICE_FROM, "--until", HALF_UNTIL, "--exit-at-end"], env,
                      timeout=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with psycopg.connect(db_url) as conn:
        trades = int(_one(conn, "SELECT count(*) FROM paper_trades"))
        assert trades > 20
        per_intent = conn.execute(
            "SELECT p.id, count(a.id), min(a.status), max(a.status), min(a.mode) FROM paper_trades p"
            " LEFT JOIN order_attempts a ON a.paper_trade_id = p.id GROUP BY p.id").fetchall()
        assert all(n == 1 and lo == hi == "test_ok" and mode == "test" for _, n, lo, hi, mode in per_intent), \
            [r for r in per_intent if r[1:] != (1, "test_ok", "test_ok", "test")][:5]
    assert sim.venue.orders(ACCESS) == []  # a test order creates nothing
    smoke = runner.run(["smoke", "--window", "600", "--json"], env, timeout=60)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert '"test_ok"' in smoke.stdout, smoke.stdout


_IDENT = re.compile(r"^sbx-(\d+)-(\d+)-[a-z0-9]{8}$")
LONG_UNTIL = "2024-08-25T02:28:00"  # four hours of the busy strategy: well over 200 paper trades


@pytest.mark.timeout(300)
def test_live_orders_survive_kills_drops_and_listing_lag_exactly_once(runner: Runner, db_url: str,
                                                                      sim: SimServer) -> None:
    env = _env(runner, db_url, sim, TRADE_MODE="live", LIVE_TRADING="true", LIVE_CONFIRM=LIVE_CONFIRM_PHRASE,
               LIVE_MARKETS="KRW-BTC", EXEC_LOOKUP_ANSWERS="3", EXEC_LOOKUP_WINDOW_S="1.2",
               FAILPOINTS="execution.after_intent_commit%23,execution.after_send%19",
               ROOT_INTENSITY="1000", ROOT_PERIOD_S="1")
    sim.faults.lookup_lag(0.4)  # orders are listed late: the lookup window must outlast it
    proc = runner.start(["--speed", "600", "--from", SLICE_FROM, "--until", LONG_UNTIL, "--exit-at-end"], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: (proc.poll() is None or pytest.fail(output(proc)[-3000:]))
                   and _one(conn, "SELECT count(*) FROM order_attempts WHERE status <> 'blocked'") >= 20,
                   timeout=120, interval=0.1, what="live orders flowing")
        sim.faults.drop_after_accept(4, path="/v1/orders", method="POST")  # placed, and the answer lost
        assert exit_code(proc, 280) == 0, output(proc)[-5000:]

        attempts = conn.execute("SELECT paper_trade_id, attempt, identifier, status, uuid, executed_volume,"
                                " paid_fee FROM order_attempts").fetchall()
        trades = int(_one(conn, "SELECT count(*) FROM paper_trades"))
        kills = int(_one(conn, "SELECT count(*) FROM supervisor_events WHERE supervisor = 'root'"
                               " AND kind = 'exited' AND child_id = 'execution' AND reason = 'killed(SIGKILL)'"))
        fills = dict(conn.execute("SELECT a.uuid, sum(f.volume) FROM order_fills f JOIN order_attempts a"
                                  " ON a.id = f.attempt_id GROUP BY a.uuid").fetchall())
        ledger_krw, ledger_btc = conn.execute(
            "SELECT coalesce(sum(CASE WHEN f.side = 'bid' THEN -f.funds ELSE f.funds END), 0),"
            " coalesce(sum(CASE WHEN f.side = 'bid' THEN f.volume ELSE -f.volume END), 0)"
            " FROM order_fills f").fetchone()
        fees = _one(conn, "SELECT coalesce(sum(paid_fee), 0) FROM order_attempts WHERE mode = 'live'")
        absent = int(_one(conn, "SELECT count(*) FROM order_attempts WHERE error LIKE 'never placed%'"))
        adopted = int(_one(conn, "SELECT count(DISTINCT attempt_id) FROM order_snapshots WHERE source = 'lookup'"))
        last_report = conn.execute("SELECT ok, differences FROM reconciliation_reports WHERE error IS NULL"
                                   " ORDER BY id DESC LIMIT 1").fetchone()

    orders = sim.venue.orders(ACCESS)
    assert len(orders) >= 200 and trades >= 200, (len(orders), trades)
    assert kills >= 5, kills
    assert absent >= 1 and adopted >= 1, (absent, adopted)  # both sides of the unknown were exercised
    assert last_report is not None and last_report[0] is True, last_report
    # every attempt final; every paper trade has its attempt(s)
    assert {a[3] for a in attempts} <= {"done", "cancelled", "error", "blocked", "throttled"}, Counter(a[3] for a in attempts)
    assert len({a[0] for a in attempts}) == trades
    # the exchange: no identifier twice, at most one order per intent, each one adopted by its attempt
    idents = [o["identifier"] for o in orders]
    assert len(idents) == len(set(idents))
    per_intent = Counter(int(_IDENT.match(i).group(1)) for i in idents)
    assert max(per_intent.values()) == 1
    by_ident = {a[2]: a for a in attempts}
    for order in orders:
        attempt = by_ident[order["identifier"]]
        assert attempt[4] == order["uuid"] and attempt[3] in ("done", "cancelled")
        assert attempt[5] == Decimal(order["executed_volume"]) == fills.get(order["uuid"], Decimal(0))
        assert attempt[6] == Decimal(order["paid_fee"])
    # our ledger equals the simulator's own, to the won
    krw, btc = sim.holding(ACCESS, "KRW"), sim.holding(ACCESS, "BTC")
    assert krw.balance + krw.locked == START_KRW + ledger_krw - fees
    assert btc.balance + btc.locked == START_BTC + ledger_btc


def test_a_balance_changed_behind_our_back_is_reported_and_halts_entries(runner: Runner, db_url: str,
                                                                         sim: SimServer) -> None:
    env = _env(runner, db_url, sim, TRADE_MODE="live", LIVE_TRADING="true", LIVE_CONFIRM=LIVE_CONFIRM_PHRASE,
               LIVE_MARKETS="KRW-BTC", RECONCILE_INTERVAL_S="600")  # reconciled at start, then on request
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        eventually(lambda: (proc.poll() is None or pytest.fail(output(proc)[-3000:]))
                   and _one(conn, "SELECT count(*) FROM order_attempts WHERE mode = 'live' AND status = 'done'") >= 2,
                   timeout=90, interval=0.1, what="live orders filled")
        assert _one(conn, "SELECT bool_and(ok) FROM reconciliation_reports WHERE error IS NULL") is True
        sim.deposit(ACCESS, "KRW", Decimal(1_000_000))  # someone else moved money on the account
        asked = runner.run(["ctl", "reconcile"], env, timeout=60)
        assert asked.returncode == 0 and "reconciliation requested" in asked.stdout, asked.stdout + asked.stderr
        report = eventually(lambda: conn.execute(
            "SELECT id, differences, halted FROM reconciliation_reports WHERE NOT ok AND error IS NULL").fetchone(),
            timeout=30, interval=0.1, what="the difference reported")
        assert report[2] is True and "KRW" in str(report[1])
        assert _one(conn, "SELECT value FROM system_flags WHERE name = 'reconcile_halt'")["report"] == report[0]
        assert _one(conn, "SELECT count(*) FROM alerts WHERE kind = 'reconcile' AND level = 'error'") >= 1
        # from now on every new entry is blocked (exits still go out)
        last = int(_one(conn, "SELECT coalesce(max(id), 0) FROM paper_trades"))
        eventually(lambda: _one(conn, f"SELECT count(*) FROM order_attempts a JOIN paper_trades p"
                                      f" ON p.id = a.paper_trade_id WHERE p.id > {last} AND p.side = 'buy'") >= 1,
                   timeout=60, interval=0.1, what="a later entry")
        later = conn.execute(f"SELECT p.side, a.status, a.blocked_reasons FROM order_attempts a JOIN paper_trades p"
                             f" ON p.id = a.paper_trade_id WHERE p.id > {last}").fetchall()
        assert all(status == "blocked" and "RECONCILE_HALT" in reasons for side, status, reasons in later
                   if side == "buy"), later
        status = runner.run(["ctl", "status"], env, timeout=60)
        assert "effective live (every guard agrees)" in status.stdout, status.stdout
        assert "exchange breakers: " in status.stdout and "order closed" in status.stdout, status.stdout
        assert f"reconciliation #{report[0]} (command)" in status.stdout or "DIFFERENCES" in status.stdout
        assert "entries: HALTED" in status.stdout, status.stdout


def test_mode_requested_at_run_time_is_applied_only_as_far_as_the_guards_agree(runner: Runner, db_url: str,
                                                                             sim: SimServer) -> None:
    env = _env(runner, db_url, sim)  # TRADE_MODE=shadow; keys set; no live guard set
    proc = runner.start(["--speed", "60", "--from", SLICE_FROM, "--until", SLICE_UNTIL], env)
    with psycopg.connect(db_url, autocommit=True) as conn:
        def attempts_in(mode: str) -> int:
            assert proc.poll() is None, output(proc)[-3000:]
            return int(conn.execute("SELECT count(*) FROM order_attempts WHERE mode = %s", (mode,)).fetchone()[0])

        eventually(lambda: attempts_in("shadow") >= 1, timeout=90, interval=0.1, what="shadow attempts")
        asked = runner.run(["ctl", "mode", "test"], env, timeout=60)
        assert asked.returncode == 0, asked.stdout + asked.stderr
        eventually(lambda: attempts_in("test") >= 1, timeout=60, interval=0.1, what="test attempts after ctl mode")
        assert _one(conn, "SELECT count(*) FROM order_attempts WHERE mode = 'test' AND status <> 'test_ok'"
                          " AND status <> 'blocked'") == 0
        asked = runner.run(["ctl", "mode", "live"], env, timeout=60)  # no live guard agrees: never live
        assert asked.returncode == 0, asked.stdout + asked.stderr
        event = eventually(lambda: conn.execute(
            "SELECT detail FROM execution_events WHERE kind = 'mode_changed' AND detail->>'requested' = 'live'"
        ).fetchone(), timeout=30, interval=0.1, what="the live request decided")[0]
        assert event["effective"] == "shadow"
        assert {"LIVE_DISABLED", "LIVE_UNCONFIRMED", "AUTO_TEST_DISABLED"} <= set(event["reasons"])
        assert _one(conn, "SELECT count(*) FROM order_attempts WHERE mode = 'live'") == 0
        kinds = {r[0] for r in conn.execute("SELECT kind FROM execution_events")}
        assert {"mode_requested", "mode_changed"} <= kinds
        texts = [r[0] for r in conn.execute("SELECT text FROM alerts WHERE kind = 'mode'")]
        assert any("live requested, running shadow" in t for t in texts), texts
        # the node reports its mode to the status table on its own beat: wait for the report, not one reading
        wanted = "requested live (set by ctl/Telegram); effective shadow, downgraded: "
        statuses: list[str] = []

        def status_shows_the_downgrade() -> bool:
            statuses.append(runner.run(["ctl", "status"], env, timeout=60).stdout)
            return wanted in statuses[-1]

        try:
            eventually(status_shows_the_downgrade, timeout=30, interval=0.5, what="ctl status shows the downgrade")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast status:\n{statuses[-1]}") from None
