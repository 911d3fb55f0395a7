"""Benchmark 1 — replay throughput of the whole pipeline, against two ceilings.

System: the real CLI, ``python -m supervisor --speed max --exit-at-end`` over the shipped candle
recording (KRW-BTC, 420,800 candle-derived trades; ``--quick``: one week of it), default strategy
and settings, into a fresh database. Feed → Bar → Strategy → Paper in the market node, every bar
persisted, every paper trade turned into a shadow ``order_attempts`` row by the execution node.

Timing comes from the system's own log (UTC, millisecond stamps):

- **pipeline**: from the FeedActor's ``replaying …`` line (written in its setup, right before its
  first delivery) to the PaperActor's ``paper stage drained`` line (the last bar has been
  persisted, evaluated and applied to the paper book) — trades ÷ that time is the headline;
- **feed**: from the same first line to the feed's ``recording exhausted`` line (its last
  delivery; back-pressure keeps it at most 4 batches ahead of the BarActor);
- **start-up**: process creation → the feed's first delivery (interpreter, migrations, three
  node processes, actor set-up); **shut-down**: drained → the root process has exited.

The run is checked: the stored bars hold every trade, and every paper trade has its attempt.

Ceilings, measured in this process next to each system run:

- **bar loop**: read the same recording (``market.recording``) and aggregate 1-second bars with
  ``market.bars.BarAggregator`` in batches of 2,000 (the feed's batch) — no actors, no database.
  It runs the product's own decoder and aggregator, so making those faster raises this ceiling
  too (the ratio then understates the gain; ``ratio_to_orjson`` does not move with them);
- **orjson**: ``orjson.loads`` of each trade frame of the 2-minute WebSocket capture, frames held
  in memory (the least a live feed must do per trade). ``market.frames.decode_trade`` (the
  product's decoder, with exact Decimals) is reported beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypedDict

import orjson
import psycopg

from bench.context import CANDLES, Context, Window
from bench.result import Result
from bench.sampler import CpuTrace, TreeMemory, node_names, wait_sampling
from bench.stats import Figure, Target, ratios
from bench.system import BenchError, first, system_env
from market.bars import BarAggregator
from market.capture import read_frames
from market.frames import decode_trade
from market.recording import CAPTURE_2021_04_05

FULL = Window()
QUICK = Window(start="2024-08-24T22:28:00", until="2024-09-01T00:00:00")
FEED_BATCH = 2_000  # actors.feed.BATCH
RUN_TIMEOUT_S = 240.0


def bar_loop(window: Window) -> tuple[int, int, float]:
    """(trades, bars, seconds) of reading ``window`` and aggregating it into 1-second bars."""
    started = time.perf_counter()  # one thread, busy throughout: its wall time is its CPU time
    agg = BarAggregator()
    trades = bars = 0
    for batch in window.recording().batches(FEED_BATCH):
        trades += len(batch)
        bars += len(agg.add_many(batch))
    bars += len(agg.flush())
    return trades, bars, time.perf_counter() - started


def trade_frames() -> list[bytes]:
    """The raw trade frames of the 2-minute capture (orderbook frames left out)."""
    out = []
    for _recv, frame in read_frames(CAPTURE_2021_04_05):
        message = orjson.loads(frame)
        if message.get("ty", message.get("type")) == "trade":
            out.append(frame)
    return out


def decode_rate(frames: list[bytes], decode: Callable[[bytes], object], min_s: float = 0.25) -> float:
    """Frames per second through ``decode`` (repeated over the frames for at least ``min_s``)."""
    done, started = 0, time.perf_counter()
    while True:
        for f in frames:
            decode(f)
        done += len(frames)
        elapsed = time.perf_counter() - started
        if elapsed >= min_s:
            return done / elapsed


class SystemRun(TypedDict):
    """One run of the real system over the window (seconds, counts, memory and cores)."""

    pipeline_s: float
    feed_s: float
    startup_s: float
    shutdown_s: float
    wall_s: float
    bars: int
    paper_trades: int
    peak_rss_mb: float
    peak_pss_mb: float
    system_cores: float | None
    postgres_cores: float | None
    peak_breakdown_mb: dict[str, float]


def system_run(ctx: Context, window: Window, expected_trades: int) -> SystemRun:
    db_url = ctx.server.create("replay")
    try:
        run = ctx.launcher.start(["--speed", "max", "--exit-at-end", *window.args()],
                                 system_env(db_url, ctx.workdir), "replay")
        memory = TreeMemory(run.pid, node_names(db_url))
        cpu = CpuTrace(run.pid, ctx.server.postmaster_pid())
        if not wait_sampling(run.running, memory, RUN_TIMEOUT_S, cpu=cpu):
            run.kill()
            raise BenchError(f"the replay did not finish within {RUN_TIMEOUT_S:.0f} s:\n{run.tail()}")
        code = run.wait(5)
        if code != 0:
            raise BenchError(f"the replay exited {code}:\n{run.tail()}")
        lines = run.log()
        start = first(lines, "actors.feed", "replaying ")
        exhausted = first(lines, "actors.feed", "recording exhausted")
        drained = first(lines, "actors.paper", "paper stage drained")
        if start is None or exhausted is None or drained is None:
            raise BenchError(f"the replay's log lacks the feed/paper lines the timing needs:\n{run.tail()}")
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT coalesce(sum(trade_count), 0), count(*) FROM market_1s").fetchone()
            stored, bars = (int(row[0]), int(row[1])) if row else (0, 0)
            row = conn.execute("SELECT (SELECT count(*) FROM paper_trades), (SELECT count(*) FROM order_attempts)"
                               ).fetchone()
            paper, attempts = (int(row[0]), int(row[1])) if row else (0, 0)
        if stored != expected_trades:
            raise BenchError(f"the stored bars hold {stored} trades, the recording {expected_trades}")
        if attempts != paper:
            raise BenchError(f"{paper} paper trades but {attempts} order attempts")
        assert run.exited_at is not None
        cores = cpu.cores_between(start.at, drained.at)
        return {
            "pipeline_s": drained.at - start.at,
            "feed_s": exhausted.at - start.at,
            "startup_s": start.at - run.spawned_at,
            "shutdown_s": run.exited_at - drained.at,
            "wall_s": run.exited_at - run.spawned_at,
            "bars": bars,
            "paper_trades": paper,
            "peak_rss_mb": memory.peak_rss_kb / 1024,
            "peak_pss_mb": memory.peak_pss_kb / 1024,
            "system_cores": cores[0] if cores else None,
            "postgres_cores": cores[1] if cores else None,
            "peak_breakdown_mb": memory.peak_breakdown_mb,
        }
    finally:
        ctx.server.drop(db_url)


def _cpu_figures(system: list[SystemRun], trades: int) -> list[Figure]:
    """Cores kept busy during the pipeline, and CPU per trade, against the loop's one core."""
    runs = [(ours, postgres, r["pipeline_s"]) for r in system
            if (ours := r["system_cores"]) is not None and (postgres := r["postgres_cores"]) is not None]
    if not runs:
        return []
    per_trade = [(ours + postgres) * pipeline_s / trades * 1e6 for ours, postgres, pipeline_s in runs]
    return [
        Figure(name="cores_system", unit="cores", samples=tuple(ours for ours, _p, _s in runs), decimals=2,
               what="CPU of the root and its nodes ÷ wall time, during the pipeline (the bar loop: 1 core)"),
        Figure(name="cores_postgres", unit="cores", samples=tuple(postgres for _o, postgres, _s in runs), decimals=2,
               what="CPU of the embedded PostgreSQL (all its processes) ÷ wall time, same stretch"),
        Figure(name="cpu_per_trade", unit="µs", samples=tuple(per_trade), decimals=1,
               what="(system + PostgreSQL cores) × pipeline time ÷ trades — the bar loop's is 1e6 ÷ its rate"),
    ]


def run(ctx: Context) -> Result:
    window = QUICK if ctx.quick else FULL
    expected = window.recording().total()
    frames = trade_frames()
    system: list[SystemRun] = []
    loop_rates: list[float] = []
    orjson_rates: list[float] = []
    decoder_rates: list[float] = []
    for i in range(ctx.runs):
        trades, _bars, seconds = bar_loop(window)
        loop_rates.append(trades / seconds)
        orjson_rates.append(decode_rate(frames, orjson.loads))
        decoder_rates.append(decode_rate(frames, decode_trade))
        ctx.say(f"replay run {i + 1}/{ctx.runs}: {expected:,} trades at --speed max "
                f"(bar-loop ceiling {loop_rates[-1]:,.0f} trades/s)")
        system.append(system_run(ctx, window, expected))
        ctx.say(f"  pipeline {expected / system[-1]['pipeline_s']:,.0f} trades/s, "
                f"start-up {system[-1]['startup_s']:.2f} s, wall {system[-1]['wall_s']:.1f} s")
    pipeline = [expected / r["pipeline_s"] for r in system]
    feed = [expected / r["feed_s"] for r in system]
    result = Result(
        key="replay_throughput",
        title="Replay throughput (Feed → Bar → Strategy → Paper, bars persisted)",
        method=(f"real CLI at --speed max --exit-at-end over {CANDLES.name}, {window.describe()} ({expected:,} trades),"
                " fresh database per run; trades ÷ (feed's first delivery → paper stage drained), from the"
                " system's own log lines; ceilings measured in the bench process next to each run"),
        figures=[
            Figure(name="pipeline", unit="trades/s", samples=tuple(pipeline), decimals=0,
                   what="feed's first delivery → last bar applied by the paper stage"),
            Figure(name="feed_first_to_last_delivery", unit="trades/s", samples=tuple(feed), decimals=0,
                   what="feed's first → last delivery (downstream may still be working)"),
            Figure(name="ceiling_bar_loop", unit="trades/s", samples=tuple(loop_rates), decimals=0,
                   what="one process: read the recording + BarAggregator, no actors, no database"),
            Figure(name="ratio_to_bar_loop", unit="x ceiling", samples=ratios(pipeline, loop_rates), decimals=3,
                   target=Target(op=">=", value=0.35), what="pipeline ÷ bar-loop ceiling (pairwise per run)"),
            Figure(name="ceiling_orjson_frames", unit="trades/s", samples=tuple(orjson_rates), decimals=0,
                   what=f"orjson.loads of the {len(frames)} trade frames of {CAPTURE_2021_04_05.name}"),
            Figure(name="ratio_to_orjson", unit="x ceiling", samples=ratios(pipeline, orjson_rates), decimals=4,
                   what="pipeline ÷ orjson frame-decoding ceiling"),
            Figure(name="decode_trade_frames", unit="trades/s", samples=tuple(decoder_rates), decimals=0,
                   what="market.frames.decode_trade (exact Decimals) on the same frames, for comparison"),
            *_cpu_figures(system, expected),
            Figure(name="startup", unit="s", samples=tuple(r["startup_s"] for r in system), decimals=2,
                   what="process start → feed's first delivery (migrations, 3 node processes, actors)"),
            Figure(name="shutdown", unit="s", samples=tuple(r["shutdown_s"] for r in system), decimals=2,
                   what="paper stage drained → root process exited"),
            Figure(name="wall", unit="s", samples=tuple(r["wall_s"] for r in system), decimals=1,
                   what="whole CLI run"),
        ],
        details={"trades": expected, "window": window.describe(), "runs": system},
    )
    return result
