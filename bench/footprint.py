"""Benchmark 4 — memory and idle cost of the running system, with 1 and with 20 markets.

Memory is the total resident set (RSS, from ``/proc/<pid>/stat``) of the root process and every
process below it (the three node processes; PostgreSQL is not ours and is reported apart). Shared
pages count once per process in RSS; the proportional set size (PSS, ``smaps_rollup``) beside it
splits them.

- **live-like, 1 and 20 markets**: the system runs with the live feed (``FEED_SOURCE=upbit``)
  against the simulated Upbit on loopback, subscribed to 1 or to 20 markets, while the bench feeds
  the real 2-minute capture spread over those markets at real time (:mod:`bench.market_load`:
  no 20-market recording ships, so the capture's 7 real streams are shifted onto 20 real market
  codes; about 16 trades a second for 20 markets, the busiest stream, ~2.7 a second, for 1). Every
  trade goes the whole way: WebSocket frame, bars persisted, strategy, paper book, execution
  (shadow). After a warm-up, RSS is sampled every second over consecutive windows.
- **candles (1 market)**: the peak over each replay-throughput run at ``--speed max`` (the
  fullest mailboxes the system sees), and over the paced latency runs.

CPU at a live-like rate: during the 20-market run, the CPU time (user + system) of the root and
its nodes over each window, as a share of one core; the embedded PostgreSQL's beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from bench import procfs
from bench.context import Context
from bench.market_load import Feeder, choose_markets, source_streams, spread
from bench.result import Result
from bench.sampler import TreeMemory, node_names
from bench.stats import Figure, Target
from bench.system import BenchError, system_env
from upbit_sim import SimConfig, SimServer
from upbit_sim.markets import MarketList

WARMUP_S = 3.0
WINDOWS_FULL = {1: (2, 5.0), 20: (4, 5.0)}  # markets: (windows, seconds each)
WINDOWS_QUICK = {1: (1, 2.0), 20: (1, 2.5)}


@dataclass(slots=True)
class Windows:
    cpu_pct: list[float]
    pg_pct: list[float]
    rss_mb: list[float]
    pss_mb: list[float]
    breakdown: dict[str, float]
    trades: int


def _postgres_cpu(postmaster: int | None) -> dict[int, float]:
    return {} if postmaster is None else procfs.cpu_by_pid(procfs.tree(postmaster))


def measure_markets(ctx: Context, sim: SimServer, markets: list[str], count: int, length: float) -> Windows:
    """Run the system on ``markets`` under the spread load; ``count`` windows of ``length`` seconds."""
    db_url = ctx.server.create(f"footprint{len(markets)}")
    postmaster = ctx.server.postmaster_pid()
    out = Windows(cpu_pct=[], pg_pct=[], rss_mb=[], pss_mb=[], breakdown={}, trades=0)
    feeder = Feeder(sim.feed, spread(markets, source_streams()))
    try:
        system = ctx.launcher.start([], system_env(db_url, ctx.workdir, FEED_SOURCE="upbit", UPBIT_WS_URL=sim.ws_url,
                                                   UPBIT_REST_URL=sim.rest_url, MARKETS=",".join(markets)),
                                    f"footprint{len(markets)}")
        deadline = time.monotonic() + 60
        while not _subscribed(db_url):
            if not system.running() or time.monotonic() > deadline:
                raise BenchError(f"the live feed did not subscribe:\n{system.tail()}")
            time.sleep(0.2)
        feeder.start()
        names = node_names(db_url)
        time.sleep(WARMUP_S)
        with psycopg.connect(db_url, autocommit=True) as conn:
            trades_before = _feed_trades(conn)
            for _ in range(count):
                memory = TreeMemory(system.pid, names)
                before, pg_before = procfs.cpu_by_pid(procfs.tree(system.pid)), _postgres_cpu(postmaster)
                started = time.monotonic()
                end = started + length
                while time.monotonic() < end:
                    memory.sample()
                    time.sleep(min(1.0, max(0.0, end - time.monotonic())))
                after, pg_after = procfs.cpu_by_pid(procfs.tree(system.pid)), _postgres_cpu(postmaster)
                elapsed = time.monotonic() - started
                if not system.running():
                    raise BenchError(f"the system exited while being measured:\n{system.tail()}")
                out.cpu_pct.append(100 * procfs.cpu_delta(before, after) / elapsed)
                if postmaster is not None:
                    out.pg_pct.append(100 * procfs.cpu_delta(pg_before, pg_after) / elapsed)
                out.rss_mb.append(memory.peak_rss_kb / 1024)
                out.pss_mb.append(memory.peak_pss_kb / 1024)
                out.breakdown = memory.peak_breakdown_mb
            out.trades = _feed_trades(conn) - trades_before
        feeder.stop()
        if system.stop() != 0:
            raise BenchError(f"the system on {len(markets)} markets did not stop cleanly:\n{system.tail()}")
        if out.trades <= 0:
            raise BenchError(f"the system on {len(markets)} markets received no trades while measured")
    finally:
        feeder.stop()
        ctx.server.drop(db_url)
    return out


def run(ctx: Context, candle_peaks_mb: list[float], paced_peaks_mb: list[float]) -> Result:
    plan = WINDOWS_QUICK if ctx.quick else WINDOWS_FULL
    streams = source_streams()
    results: dict[int, Windows] = {}
    with SimServer(SimConfig()) as sim:
        listed = [m.market for m in MarketList.default()]
        for n, (count, length) in plan.items():
            markets = choose_markets(n, list(streams), listed)
            ctx.say(f"footprint: {n} market(s) at 1x over the live feed, {count} window(s) of {length:g} s"
                    f" after {WARMUP_S:g} s warm-up")
            results[n] = measure_markets(ctx, sim, markets, count, length)
            w = results[n]
            ctx.say(f"  {n} market(s): RSS {max(w.rss_mb):.0f} MB, CPU {sorted(w.cpu_pct)[len(w.cpu_pct) // 2]:.1f} %"
                    f" of a core, {w.trades} trades")
    one, twenty = results[1], results[20]
    figures = [
        Figure(name="rss_1_market", unit="MB", samples=tuple(one.rss_mb), target=Target(op="<=", value=300),
               what="peak total RSS per window, root + nodes, live feed from the simulator, 1 market at 1x"),
        Figure(name="rss_20_markets", unit="MB", samples=tuple(twenty.rss_mb), target=Target(op="<=", value=300),
               what="the same, 20 markets"),
        Figure(name="pss_20_markets", unit="MB", samples=tuple(twenty.pss_mb), what="same, proportional set size"),
        Figure(name="rss_candles_max_speed", unit="MB", samples=tuple(candle_peaks_mb),
               target=Target(op="<=", value=300),
               what="peak total RSS per replay-throughput run (candles, --speed max)"),
    ]
    if paced_peaks_mb:
        figures.append(Figure(name="rss_candles_paced", unit="MB", samples=tuple(paced_peaks_mb),
                              what="peak total RSS per latency run (candles at 40x)"))
    figures.append(Figure(name="cpu_20_markets", unit="% of one core", samples=tuple(twenty.cpu_pct),
                          target=Target(op="<=", value=25),
                          what=f"root + nodes, 20 markets at 1x, per {plan[20][1]:g} s window"))
    figures.append(Figure(name="cpu_1_market", unit="% of one core", samples=tuple(one.cpu_pct),
                          what=f"root + nodes, 1 market at 1x, per {plan[1][1]:g} s window"))
    if twenty.pg_pct:
        figures.append(Figure(name="cpu_postgres_20_markets", unit="% of one core", samples=tuple(twenty.pg_pct),
                              what="the embedded PostgreSQL server (all backends) over the same windows"))
    return Result(
        key="memory_idle",
        title="Memory and idle cost (1 and 20 markets, live feed at 1x)",
        method=("the real CLI with FEED_SOURCE=upbit against the simulated Upbit, fed the real 2-minute capture"
                " spread over 1 and 20 market codes at real time (bench.market_load); total RSS (and PSS) of the"
                " root and its descendants from /proc, CPU = Δ(utime+stime) of the same processes ÷ wall time"),
        figures=figures,
        notes=["no 20-market recording ships: the capture's 7 real trade streams are shifted onto 20 real market"
               " codes (bench/market_load.py)",
               f"trades received while measured: {one.trades} (1 market), {twenty.trades} (20 markets)"],
        details={"peak_breakdown_20_markets_mb": twenty.breakdown, "peak_breakdown_1_market_mb": one.breakdown},
    )


def _subscribed(db_url: str) -> bool:
    """Whether the market node's feed reported a subscribed WebSocket session."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT counters->>'connected' FROM runtime_actors WHERE node = 'market'"
                               " AND actor = 'feed'").fetchone()
        except psycopg.errors.UndefinedTable:
            return False  # not migrated yet
    return row is not None and row[0] == "true"


def _feed_trades(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT (counters->>'trades')::bigint FROM runtime_actors WHERE node = 'market'"
                       " AND actor = 'feed'").fetchone()
    return int(row[0]) if row and row[0] is not None else 0
