"""Benchmark 2b — tick-to-order latency in test mode: a trade entering the FeedActor → the test order
the simulated Upbit answered, recorded.

The same paced replay as :mod:`bench.latency` (candles at 40×, a strategy that trades on almost
every bar, each trade far enough from the next to be measured in isolation), but with
``TRADE_MODE=test`` against a simulated Upbit started by the bench on loopback: every intent
crosses the PostgreSQL hand-off to the execution node, is committed as an attempt, goes out as
``POST /v1/orders/test`` over HTTP (JWT signed, rate-limited) and its ``test_ok`` answer is
committed.

- **Tick**: as in :mod:`bench.latency` (the feed's pacer due time of the trade that closed the
  fill bar).
- **Order**: ``pg_xact_commit_timestamp(order_attempts.xmin)`` of the attempt's final version,
  i.e. the commit of the ``test_ok`` answer — an *upper bound* of "the request arrived at the
  exchange" (it adds the exchange's answer and one commit). ``created_at`` of the attempt (its
  insert's transaction start) splits off the hand-off: tick → paper trade committed (market
  node), paper trade → attempt committed → answer recorded (execution node).
- Upbit allows 8 test orders a second; execution waits for the next second when the budget is
  nearly spent, so a signal arriving right behind a burst waits by design (counted separately).
"""

from __future__ import annotations

from decimal import Decimal

import psycopg

from bench import latency
from bench.context import Context, Window
from bench.result import Result
from bench.stats import Figure, percentile
from bench.system import BenchError
from upbit_sim import SimConfig, SimServer

ACCESS, SECRET = "BENCHACCESS" * 2, "BENCHSECRET" * 5

_QUERY = """
SELECT p.id, p.market, extract(epoch FROM p.fill_ts)::bigint,
       extract(epoch FROM pg_xact_commit_timestamp(p.xmin)), extract(epoch FROM pg_xact_commit_timestamp(a.xmin)),
       extract(epoch FROM a.created_at), a.status
FROM paper_trades p JOIN order_attempts a ON a.paper_trade_id = p.id
WHERE p.fill_ts IS NOT NULL ORDER BY p.id
"""


def _run(ctx: Context, win: Window, sim: SimServer) -> tuple[list[tuple[float, float, float]], int]:
    with latency.paced_replay(ctx, win, "order_latency", TRADE_MODE="test", UPBIT_ACCESS_KEY=ACCESS,
                              UPBIT_SECRET_KEY=SECRET, UPBIT_REST_URL=sim.rest_url, ACCOUNT_POLL_S="5") as run:
        with psycopg.connect(run.db_url) as conn:
            rows = conn.execute(_QUERY).fetchall()
    not_ok = sum(1 for r in rows if r[6] != "test_ok")
    samples = []
    for r in rows:
        if r[6] != "test_ok":
            continue
        for total, market, _answer in latency.samples_of([r[:5]], run.trades, run.due):  # at most one: its tick
            samples.append((total, market, float(r[5]) - float(r[3])))
    if not samples:
        raise BenchError("the paced test-mode replay produced no test_ok attempts to time")
    return samples, not_ok


def run(ctx: Context) -> Result:
    if not ctx.server.commit_timestamps():
        raise BenchError("the order latency needs track_commit_timestamp = on (the bench's embedded server has it)")
    win = latency.window(ctx.quick)
    config = SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": Decimal(10**10), "BTC": Decimal(100)}})
    per_run: list[list[tuple[float, float, float]]] = []
    refused = []
    with SimServer(config) as sim:
        for i in range(ctx.runs):
            ctx.say(f"order latency run {i + 1}/{ctx.runs}: test orders to the simulated Upbit, candles"
                    f" {win.describe()} at {latency.SPEED:g}x")
            samples, not_ok = _run(ctx, win, sim)
            per_run.append(samples)
            refused.append(not_ok)
            ms = [s[0] * 1000 for s in samples]
            ctx.say(f"  {len(ms)} test orders: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms")

    def per(q: float, part: int = 0) -> tuple[float, ...]:
        return tuple(percentile([s[part] * 1000 for s in r], q) for r in per_run)

    total = [s[0] * 1000 for r in per_run for s in r]
    return Result(
        key="tick_to_order_latency",
        title="Tick-to-order latency, test mode (trade into FeedActor → orders/test answered and recorded)",
        method=(f"real CLI, TRADE_MODE=test against the simulated Upbit on loopback, candles {win.describe()} at"
                f" {latency.SPEED:g}x, STRATEGY_PARAMS={latency.STRATEGY_PARAMS}; order = commit of the test_ok"
                " answer (an upper bound of the request's arrival); percentiles per run, summarised over runs"),
        figures=[
            Figure(name="p50", unit="ms", samples=per(0.5), what="median per run"),
            Figure(name="p99", unit="ms", samples=per(0.99), what="99th percentile per run"),
            Figure(name="max", unit="ms", samples=per(1.0), what="worst per run"),
            Figure(name="p50_market_node", unit="ms", samples=per(0.5, 1),
                   what="tick → paper trade committed (Feed → Bar → Strategy → Paper)"),
            Figure(name="p50_handoff", unit="ms", samples=per(0.5, 2),
                   what="paper trade committed → attempt inserted (NOTIFY → execution node)"),
            Figure(name="orders_per_run", unit="orders", samples=tuple(float(len(r)) for r in per_run), decimals=0),
        ],
        notes=[f"attempts not test_ok (left out): {refused}",
               "a sample near 1 s is an order that waited for the next second because Upbit's 8-per-second"
               " test-order budget was nearly spent (EXEC_THROTTLE_REMAINING), by design",
               "the issue's target is p50 ≤ 1 ms / p99 ≤ 5 ms from the frame to the request at the exchange;"
               " this figure also includes two PostgreSQL commits, the NOTIFY hand-off and the answer"],
        details={"pooled_ms": {"n": len(total), "p50": round(percentile(total, 0.5), 2),
                               "p99": round(percentile(total, 0.99), 2), "max": round(max(total), 2)}},
    )
