"""Benchmark 2 — tick-to-intent latency: a trade entering the FeedActor → its shadow order attempt committed.

Shadow execution: the order path ends at the ``order_attempts`` row the execution node commits.
The order at the simulated Upbit in test mode is :mod:`bench.order_latency`.

Method: the real CLI replays a continuous stretch of the candle recording at a paced speed with a
strategy that trades on almost every bar (``SmaMomentum`` window 2, entry/exit 0 bps). With
``REPLAY_MAX_GAP_S`` 5 s, candle trades (15 s apart) are ``5 / speed`` seconds apart on the wall
clock — 125 ms at 40× — far more than the pipeline needs per trade, so each signal is measured in
isolation (the share of samples above that gap is reported).

- **When a trade entered the FeedActor**: the feed anchors its ``ReplayPacer`` at its first trade
  in its setup and logs ``replaying …`` right then (UTC, ms). The bench rebuilds the very same
  pacer (same speed and gap cap) on the same trades anchored at that log stamp, which gives every
  trade's due time — the moment the feed hands it on (a feed running late is pipeline latency).
- **Which trade caused an attempt**: the paper book fills a signal at the next 1-second bar
  (``paper_trades.fill_ts``), and that bar reaches the paper stage when it closes, i.e. when the
  first trade of a later second of that market arrives. That trade is the tick.
- **When the attempt was committed**: ``pg_xact_commit_timestamp(order_attempts.xmin)`` — the
  exact commit time, as the bench's embedded server runs with ``track_commit_timestamp = on``.
  On a server without it the bench falls back to ``created_at`` (the start of the execution
  node's transaction, a few ms early) and says so.

The latency splits at the PostgreSQL hand-off: tick → the paper trade committed (market node),
and that commit → the attempt committed (NOTIFY, the execution node's waker and actor).
"""

from __future__ import annotations

import bisect
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from bench.context import MAX_GAP_S, Context, Window
from bench.result import Result
from bench.sampler import TreeMemory, node_names, wait_sampling
from bench.stats import Figure, percentile
from bench.system import BenchError, first, system_env
from market.recording import ReplayPacer

SPEED = 40.0
STRATEGY_PARAMS = json.dumps({"window": 2, "entry_bps": 0, "exit_bps": 0})
START = "2024-08-24T22:28:00"  # the first 200-minute stretch of consecutive candles in the file
MINUTES_FULL = 30  # 120 trades, 15 s of wall clock at 40x
MINUTES_QUICK = 6
RUN_TIMEOUT_S = 120.0

_QUERY = """
SELECT p.id, p.market, extract(epoch FROM p.fill_ts)::bigint,
       extract(epoch FROM {paper_ts}), extract(epoch FROM {attempt_ts})
FROM paper_trades p JOIN order_attempts a ON a.paper_trade_id = p.id
WHERE p.fill_ts IS NOT NULL ORDER BY p.id
"""


def window(quick: bool) -> Window:
    start = datetime.fromisoformat(START)
    minutes = MINUTES_QUICK if quick else MINUTES_FULL
    return Window(start=START, until=(start + timedelta(minutes=minutes)).isoformat())


def samples_of(rows: list[tuple], trades: list, due: list[float]) -> list[tuple[float, float, float]]:
    """(tick→attempt, tick→paper commit, paper→attempt) in seconds, per attempt with a known tick."""
    by_market: dict[str, tuple[list[int], list[int]]] = {}
    for index, trade in enumerate(trades):
        times, indexes = by_market.setdefault(trade.market, ([], []))
        times.append(trade.ts_ms)
        indexes.append(index)
    out = []
    for _id, market, fill_s, paper_at, attempt_at in rows:
        times, indexes = by_market.get(market, ([], []))
        # candle trades are in time order: the first trade of a later second closes the fill bar
        pos = bisect.bisect_left(times, (int(fill_s) + 1) * 1000)
        if pos == len(times):
            continue  # closed by the end of the recording (flush), not by a trade
        tick = due[indexes[pos]]
        out.append((float(attempt_at) - tick, float(paper_at) - tick, float(attempt_at) - float(paper_at)))
    return out


@dataclass(frozen=True, slots=True)
class PacedRun:
    """A finished paced replay: its database (dropped when the ``with`` ends), when each trade was due."""

    db_url: str
    trades: list
    due: list[float]
    peak_rss_mb: float


@contextlib.contextmanager
def paced_replay(ctx: Context, win: Window, name: str, **settings: str) -> Iterator[PacedRun]:
    """Run the real CLI over ``win`` at :data:`SPEED` with the busy strategy (plus ``settings``) to its
    end, and rebuild every trade's due time from the feed's ``replaying`` log stamp."""
    db_url = ctx.server.create(name)
    try:
        run = ctx.launcher.start(["--speed", f"{SPEED:g}", "--exit-at-end", *win.args()],
                                 system_env(db_url, ctx.workdir, STRATEGY_PARAMS=STRATEGY_PARAMS, **settings), name)
        memory = TreeMemory(run.pid, node_names(db_url))
        if not wait_sampling(run.running, memory, RUN_TIMEOUT_S):
            run.kill()
            raise BenchError(f"the paced replay ({name}) did not finish within {RUN_TIMEOUT_S:.0f} s:\n{run.tail()}")
        if (code := run.wait(5)) != 0:
            raise BenchError(f"the paced replay ({name}) exited {code}:\n{run.tail()}")
        anchor = first(run.log(), "actors.feed", "replaying ")
        if anchor is None:
            raise BenchError(f"no 'replaying' line from the feed:\n{run.tail()}")
        trades = list(win.recording().trades())
        pacer = ReplayPacer(speed=SPEED, max_gap_s=MAX_GAP_S)
        pacer.start(wall_s=anchor.at, ts_ms=trades[0].ts_ms)
        yield PacedRun(db_url=db_url, trades=trades, due=[pacer.due(t.ts_ms) for t in trades],
                       peak_rss_mb=memory.peak_rss_kb / 1024)
    finally:
        ctx.server.drop(db_url)


def system_run(ctx: Context, win: Window, commit_ts: bool) -> tuple[list[tuple[float, float, float]], float]:
    with paced_replay(ctx, win, "latency") as run:
        stamp = "pg_xact_commit_timestamp({}.xmin)" if commit_ts else "{}.created_at"
        with psycopg.connect(run.db_url) as conn:
            rows = conn.execute(_QUERY.format(paper_ts=stamp.format("p"), attempt_ts=stamp.format("a"))).fetchall()
        samples = samples_of(rows, run.trades, run.due)
        if not samples:
            raise BenchError("the paced replay produced no order attempts to time")
        return samples, run.peak_rss_mb


def run(ctx: Context) -> Result:
    win = window(ctx.quick)
    commit_ts = ctx.server.commit_timestamps()
    gap_ms = MAX_GAP_S / SPEED * 1000
    per_run: list[list[tuple[float, float, float]]] = []
    rss: list[float] = []
    for i in range(ctx.runs):
        ctx.say(f"latency run {i + 1}/{ctx.runs}: candles {win.describe()} at {SPEED:g}x, one trade every"
                f" {gap_ms:.0f} ms")
        samples, peak = system_run(ctx, win, commit_ts)
        per_run.append(samples)
        rss.append(peak)
        ms = [s[0] * 1000 for s in samples]
        ctx.say(f"  {len(ms)} attempts: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms,"
                f" max {max(ms):.1f} ms")
    total = [s[0] * 1000 for r in per_run for s in r]
    market = [s[1] * 1000 for r in per_run for s in r]
    handoff = [s[2] * 1000 for r in per_run for s in r]
    if min(total) < 0:
        raise BenchError(f"a negative latency ({min(total):.1f} ms): the pacer anchor is off")

    def per(q: float, part: int = 0) -> tuple[float, ...]:
        return tuple(percentile([s[part] * 1000 for s in r], q) for r in per_run)

    notes = [
        "tick-to-intent: shadow execution, ends at the committed attempt; tick_to_order_latency measures the"
        " order to the simulated Upbit in test mode",
        f"{sum(1 for t in total if t > gap_ms)} of {len(total)} samples exceeded the {gap_ms:.0f} ms between"
        " trades (those were not fully isolated)",
    ]
    if not commit_ts:
        notes.append("track_commit_timestamp is off on this server: commit times are the rows' created_at"
                     " (transaction start), a few ms early")
    return Result(
        key="tick_to_intent_latency",
        title="Tick-to-intent latency (trade into FeedActor → shadow order_attempts row committed)",
        method=(f"real CLI, candles {win.describe()} at {SPEED:g}x, STRATEGY_PARAMS={STRATEGY_PARAMS}; trade entry ="
                " the feed's ReplayPacer due time rebuilt from its 'replaying' log stamp; commit ="
                f" {'pg_xact_commit_timestamp(xmin)' if commit_ts else 'created_at'}; percentiles per run,"
                " summarised over runs"),
        figures=[
            Figure(name="p50", unit="ms", samples=per(0.5), what="median per run"),
            Figure(name="p99", unit="ms", samples=per(0.99), what="99th percentile per run"),
            Figure(name="max", unit="ms", samples=per(1.0), what="worst per run"),
            Figure(name="p50_market_node", unit="ms", samples=per(0.5, 1),
                   what="tick → paper trade committed (Feed → Bar → Strategy → Paper)"),
            Figure(name="p50_handoff", unit="ms", samples=per(0.5, 2),
                   what="paper trade committed → attempt committed (NOTIFY → execution node)"),
            Figure(name="signals_per_run", unit="attempts", samples=tuple(float(len(r)) for r in per_run),
                   decimals=0),
        ],
        notes=notes,
        details={
            "pooled_ms": {"n": len(total), "p50": round(percentile(total, 0.5), 2),
                          "p99": round(percentile(total, 0.99), 2), "max": round(max(total), 2),
                          "market_node_p50": round(percentile(market, 0.5), 2),
                          "handoff_p50": round(percentile(handoff, 0.5), 2),
                          "handoff_p99": round(percentile(handoff, 0.99), 2)},
            "commit_timestamps": commit_ts,
            "trade_gap_ms": gap_ms,
            "peak_rss_mb_paced_candles": [round(r, 1) for r in rss],
        },
    )
