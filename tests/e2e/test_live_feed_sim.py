"""The live feed against the simulated Upbit: drops and stalls during a replay, missed trades
backfilled over REST, bars equal to a direct computation from the recording — or, when the
backfill cannot reach back, marked incomplete per the gap policy."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from market.recording import CAPTURE_2021_04_05, Recording
from tests.e2e.harness import Runner, base_env, exit_code, expected_capture_bars, output
from tests.helpers import eventually
from upbit_sim import SimConfig, SimServer

MARKETS = ("KRW-DAWN", "KRW-STX", "KRW-ADA", "KRW-ANKR", "KRW-IQ", "KRW-BAT")


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    r = Runner(workdir=tmp_path)
    yield r
    r.cleanup()


def _expected() -> dict:
    return {k: v for k, v in expected_capture_bars(CAPTURE_2021_04_05).items() if k[0] in MARKETS}


def _start(runner: Runner, db_url: str, sim: SimServer):
    env = base_env(db_url, runner.workdir, FEED_SOURCE="upbit", UPBIT_WS_URL=sim.ws_url,
                   UPBIT_REST_URL=sim.rest_url, MARKETS=",".join(MARKETS))
    return runner.start([], env)


def _stored(conn: psycopg.Connection) -> dict:
    rows = conn.execute("SELECT market, extract(epoch FROM ts)::bigint, trade_count, volume FROM market_1s").fetchall()
    return {(m, s): (n, v) for m, s, n, v in rows}


def test_drops_and_stalls_are_backfilled_and_the_bars_stay_exact(runner: Runner, db_url: str) -> None:
    recording = Recording.capture(CAPTURE_2021_04_05).only(MARKETS)
    with SimServer(SimConfig(recording=recording, speed=12.0, autoplay=False)) as sim:
        proc = _start(runner, db_url, sim)
        with psycopg.connect(db_url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT count(*) FROM runtime_actors WHERE actor = 'feed'"
                                            " AND (counters->>'sessions')::int >= 1").fetchone()[0], timeout=60,
                       interval=0.05, what="feed subscribed")
            sim.advance(120)  # the first trades flow
            eventually(lambda: conn.execute("SELECT count(*) FROM market_1s").fetchone()[0] > 10, timeout=60,
                       interval=0.05, what="bars flowing")
            for step in range(3):  # drop the stream while trades keep printing, then let it come back
                sim.faults.ws_drop()
                sim.advance(60)
                eventually(lambda s=step: conn.execute(
                    "SELECT (counters->>'sessions')::int FROM runtime_actors WHERE actor = 'feed'").fetchone()[0]
                    >= s + 2, timeout=60, interval=0.05, what=f"reconnect {step + 1}")
            sim.faults.ws_stall(0.5)
            sim.faults.ws_corrupt_next(2)  # malformed frames are dropped and counted, never fatal
            sim.advance(10_000)  # the rest of the recording
            expected = _expected()

            def complete() -> bool:
                assert proc.poll() is None, output(proc)
                return _stored(conn) == expected

            try:
                eventually(complete, timeout=60, interval=0.1, what="every bar of the recording stored exactly")
            except AssertionError:
                stored = _stored(conn)
                diff = {k: (stored.get(k), expected.get(k)) for k in set(stored) | set(expected)
                        if stored.get(k) != expected.get(k)}
                raise AssertionError(f"{len(diff)} bars differ, e.g. {sorted(diff.items())[:5]}") from None
            assert conn.execute("SELECT count(*) FROM market_1s WHERE incomplete").fetchone()[0] == 0
            assert conn.execute("SELECT market, from_ts, until_ts, reason FROM feed_gaps").fetchall() == []
            # the node reports its actors' counters once a second: wait for the report, not a sleep
            backfilled, bad, incarnation = eventually(lambda: (row := conn.execute(
                "SELECT (counters->>'backfilled')::int, (counters->>'bad_frames')::int, incarnation"
                " FROM runtime_actors WHERE actor = 'feed'").fetchone()) and row[1] == 2 and row, timeout=10,
                interval=0.05, what="the feed reported the two bad frames")
        assert backfilled > 0, "trades printed while disconnected came back over REST"
        assert incarnation == 1, "bad frames never crash the feed"
        proc.send_signal(signal.SIGINT)
        assert exit_code(proc, 60) == 0, output(proc)


def test_a_gap_the_backfill_cannot_reach_marks_its_bars_incomplete(runner: Runner, db_url: str) -> None:
    recording = Recording.capture(CAPTURE_2021_04_05).only(MARKETS)
    with SimServer(SimConfig(recording=recording, speed=12.0, autoplay=False)) as sim:
        proc = _start(runner, db_url, sim)
        with psycopg.connect(db_url, autocommit=True) as conn:
            eventually(lambda: conn.execute("SELECT count(*) FROM runtime_actors WHERE actor = 'feed'"
                                            " AND (counters->>'sessions')::int >= 1").fetchone()[0], timeout=60,
                       interval=0.05, what="feed subscribed")
            sim.advance(150)
            eventually(lambda: conn.execute("SELECT count(*) FROM market_1s").fetchone()[0] > 10, timeout=60,
                       interval=0.05, what="bars flowing")
            sim.faults.fail_next(1000, status=503, path="/v1/trades/ticks")  # the backfill cannot succeed
            sim.faults.ws_drop()
            sim.advance(80)  # trades the stream misses while it is down
            breaker = eventually(lambda: conn.execute("SELECT text FROM alerts WHERE kind = 'breaker' ORDER BY id"
                                                      ).fetchall(), timeout=90, interval=0.1,
                                 what="the failing endpoint group's breaker opened, and said so")
            assert "open" in breaker[0][0]
            sim.faults.clear()
            sim.advance(10_000)  # the stream picks the markets up again: each gap ends there
            eventually(lambda: conn.execute("SELECT count(*) FROM feed_gaps").fetchone()[0] >= 1, timeout=60,
                       interval=0.05, what="the gap recorded")
            eventually(lambda: conn.execute("SELECT count(*) FROM alerts WHERE kind = 'feed_gap'").fetchone()[0],
                       timeout=30, interval=0.05, what="the gap alerted")
            gap = conn.execute("SELECT market, from_ts, until_ts FROM feed_gaps ORDER BY id LIMIT 1").fetchone()

            expected = _expected()
            eventually(lambda: conn.execute("SELECT max(ts) FROM market_1s").fetchone()[0] is not None and
                       max(s for _m, s in _stored(conn)) >= max(s for _m, s in expected) - 1, timeout=60,
                       interval=0.1, what="the rest of the recording stored")
            stored = _stored(conn)
            incomplete = {(m, int(t.timestamp())) for m, t in conn.execute(
                "SELECT market, ts FROM market_1s WHERE incomplete").fetchall()}
        wrong = {k for k in expected if stored.get(k) != expected[k]}
        assert wrong, "trades were really lost in the gap"
        assert wrong <= incomplete | {k for k in wrong if k not in stored}, "every wrong bar is marked or absent"
        assert {m for m, _s in incomplete} <= {gap[0]} | {m for m, _s in wrong}
        proc.send_signal(signal.SIGINT)
        assert exit_code(proc, 60) == 0, output(proc)
