"""Benchmark 2b — tick-to-order latency: a WebSocket trade frame → the order request at the simulated Upbit.

**What is timed, on one clock.** The bench process runs the simulated Upbit
(:class:`upbit_sim.SimServer`) itself, so both ends are ``time.time()`` in one process:

- *start*: right before the bench hands the trade to the simulator, which publishes it as a
  WebSocket trade frame to the system's ``LiveFeedActor``. This is earlier than the issue's "frame
  arriving at FeedActor" by the simulator's print, the loopback hop and the websockets reader;
  the floor below measures that head start (``floor_p50_to_received``);
- *stop*: the simulator's request observer (``SimServer(on_request=…)``), stamped as the
  ``POST /v1/orders/test`` request reaches its REST pipeline, before it is authenticated or
  answered.

**The system** is the real CLI (root, market, execution and ops nodes, the PostgreSQL hand-off
between them) with ``FEED_SOURCE=upbit`` pointed at the simulator, ``TRADE_MODE=test`` with the
simulated user's keys, ``SmaMomentum`` with window 2 and 0 bps bands, ``RISK_MAX_POSITIONS`` and
``RISK_DAILY_LOSS_KRW`` out of the way (risk is not what is timed) and the account poll and
reconciliation at an hour (no account traffic during the stream).

**The stream** (:mod:`bench.tick_stream`): 7 signal markets, each trading once a second at its
own instant in the second (one frame every 143 ms overall), stamped with the publish instant,
the price alternating 1 % from second to second. Every frame is the first trade of a new second
of its market, so it closes the market's previous 1-second bar (the feed's clock tick would close
it only 1.5 s after that second ends, after the frame), and every such bar fills the paper order
the bar before it decided — entries and exits in turn. One frame → one bar closed → one paper
trade → one ``order_attempts`` row → one ``orders/test`` request whose ``identifier`` names the
attempt. The first 5 s are warm-up: a market's first order comes with its 4th or 5th frame, and
the first second of orders (cold start) is left out.

**Attribution** (:mod:`bench.order_attribution`): identifier → attempt → paper trade → its fill
bar (``fill_ts``) → the first published frame of that market in a later second. Orders whose bar
was closed otherwise (the clock tick: the paper trade committed, or the request arrived, before
"its" frame was published), orders after the stream ended, unsent ones and the warm-up are
counted apart, never clipped. Each sample is split at the paper trade's commit
(``pg_xact_commit_timestamp(xmin)``; the embedded server runs with ``track_commit_timestamp = on``
on this machine's clock): frame → paper trade committed (Feed → Bar → Strategy → Paper, market
node) and paper trade committed → request arrived (NOTIFY, execution node, risk, attempt
commit, HTTP).

**Two phases**, interleaved frame by frame in every run, so one system start serves both:
*quiet* (a signal frame alone) and *burst* (right after every other signal frame the bench
prints 500 trades — 300 with ``--quick`` — of 20 other subscribed markets at once, at a constant
price, so market data is in flight in the market node while the order is handled). Per run: p50, p99 and max of each
phase; each figure is their median over runs, the issue's targets (p50 ≤ 1 ms, p99 ≤ 5 ms) on the
p50 and p99 of both phases.

**Rates.** The simulator's ``order-test`` budget is raised far above Upbit's 8/s (``limits``), so
the engine's ``Remaining-Req`` throttle (``EXEC_THROTTLE_REMAINING``) never holds an order for the
next second — Upbit's limit itself is tested elsewhere. Our client also paces itself with a token
bucket at Upbit's documented 8/s (``exchange.rate_limit``, not configurable), so the stream stays
at 7 orders a second, below it: that caps the samples at about 7 per second of stream.

**The floor** (:mod:`bench.order_floor`), measured once after the runs: the same timing, the
same pacing and the same bursts through a bare process that only receives the frame (websockets)
and sends the test order (``UpbitClient``): what the two hops and the measurement itself cost on
this machine with no system in between, in each phase.

**In-process artefacts, and what is done about them.** The simulator shares the bench's
interpreter, so while the bench prints a burst its GIL would hold back the simulator's WebSocket
sender and request threads for up to the 5 ms switch interval: the bench lowers its own switch
interval to 50 µs while it drives the stream. The burst's printing still costs CPU on the same
cores as the system (reported as ``bench_cpu_per_stream_s``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal

import orjson
import psycopg

from bench import latency
from bench.context import Context
from bench.order_attribution import CATEGORIES, Attribution, PaperTrade, Sample, attribute
from bench.order_floor import FloorSample, measure_floor
from bench.result import Result
from bench.stats import Figure, Target, percentile
from bench.system import BenchError, SystemProcess, first, system_env
from bench.tick_stream import Published, drive, plan_stream, switch_interval
from upbit_sim import SimConfig, SimServer
from upbit_sim.rest import RestRequest

ACCESS, SECRET = "BENCHACCESS" * 2, "BENCHSECRET" * 5
SIGNAL_MARKETS = ("KRW-ETH", "KRW-XRP", "KRW-ADA", "KRW-DOT", "KRW-LINK", "KRW-LTC", "KRW-BCH")
BURST_MARKETS = ("KRW-EOS", "KRW-TRX", "KRW-XLM", "KRW-ATOM", "KRW-NEO", "KRW-QTUM", "KRW-ETC", "KRW-BTG",
                 "KRW-BAT", "KRW-ZRX", "KRW-SAND", "KRW-MANA", "KRW-ENJ", "KRW-CHZ", "KRW-HBAR", "KRW-VET",
                 "KRW-ICX", "KRW-ONT", "KRW-WAVES", "KRW-XTZ")
LOW, HIGH = Decimal(10_000_000), Decimal(10_100_000)  # on the 1,000 KRW tick grid; 1 % apart
BURST_PRICE = Decimal(5_000_000)
ORDER_TEST_BUDGET = 1_000  # per second (Upbit: 8)
# seconds of stream, of warm-up, trades per burst. A market's first order is closed by its 4th or 5th
# frame (2 bars of SMA window, a decision, the fill bar): a warm-up of 4 s excludes nothing more,
# 5 s also the first second of orders (cold start). Full: 7 × 15 = 105 measured orders a run.
SECONDS_FULL, WARMUP_FULL, BURST_FULL = 20, 5, 500
SECONDS_QUICK, WARMUP_QUICK, BURST_QUICK = 6, 4, 300
SWITCH_INTERVAL_S = 0.00005  # the bench's GIL switch interval while driving (Python's default: 0.005)
FLOOR_FRAMES_FULL, FLOOR_FRAMES_QUICK = 28, 14  # half of them followed by a burst
READY_TIMEOUT_S = 60.0
SETTLE_S, SETTLE_MAX_S = 0.5, 5.0  # after the last frame: until no request came for SETTLE_S
TARGET_P50_MS, TARGET_P99_MS = 1.0, 5.0

_QUERY = """
SELECT p.id, p.market, extract(epoch FROM p.fill_ts)::bigint, extract(epoch FROM pg_xact_commit_timestamp(p.xmin)),
       a.identifier
FROM paper_trades p LEFT JOIN order_attempts a ON a.paper_trade_id = p.id
WHERE p.fill_ts IS NOT NULL ORDER BY p.id, a.attempt
"""


@dataclass(slots=True)
class Arrivals:
    """The simulator's request observer: when each ``orders/test`` request arrived (cheap: parse later)."""

    seen: list[tuple[float, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, arrived_at: float, request: RestRequest) -> None:
        if request.method == "POST" and request.path == "/v1/orders/test":
            with self.lock:
                self.seen.append((arrived_at, request.body))

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def first_by_identifier(self) -> dict[str, float]:
        """identifier → its first arrival (a test identifier may be sent again by a later attempt)."""
        with self.lock:
            seen = list(self.seen)
        out: dict[str, float] = {}
        for arrived_at, body in seen:
            ident = orjson.loads(body).get("identifier")
            if isinstance(ident, str) and (ident not in out or arrived_at < out[ident]):
                out[ident] = arrived_at
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    attribution: Attribution
    frames: int
    burst_s: list[float]  # time to print each burst
    late_frames: int  # frames published more than 50 ms after their timestamp
    unmatched_requests: int  # orders/test requests whose identifier names no attempt
    stream_s: float
    bench_cpu: float  # CPU seconds of the bench process (simulator included) per second of stream
    run_s: float


def _settings(sim: SimServer, db_url: str, ctx: Context) -> dict[str, str]:
    markets = SIGNAL_MARKETS + BURST_MARKETS
    return system_env(
        db_url, ctx.workdir, FEED_SOURCE="upbit", UPBIT_WS_URL=sim.ws_url, UPBIT_REST_URL=sim.rest_url,
        MARKETS=",".join(markets), TRADE_MODE="test", UPBIT_ACCESS_KEY=ACCESS, UPBIT_SECRET_KEY=SECRET,
        STRATEGY="trading.builtin:SmaMomentum", STRATEGY_PARAMS=latency.STRATEGY_PARAMS,
        RISK_MAX_POSITIONS=str(len(markets)), RISK_DAILY_LOSS_KRW="1000000000",
        ACCOUNT_POLL_S="3600", RECONCILE_INTERVAL_S="3600")


def _sim_config() -> SimConfig:
    coins = {m.split("-", 1)[1]: Decimal(1_000) for m in SIGNAL_MARKETS}
    return SimConfig(keys={ACCESS: SECRET}, balances={ACCESS: {"KRW": Decimal(10**12), **coins}}, seed=False,
                     markets=SIGNAL_MARKETS + BURST_MARKETS, limits={"order-test": ORDER_TEST_BUDGET})


def _wait_ready(system: SystemProcess, sim: SimServer) -> None:
    """Until the feed is subscribed to the simulator and the execution node is reading intents."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        lines = system.log()
        connections = sim.status()["ws_connections"]
        if (first(lines, "actors.live_feed", "live Upbit trades") is not None
                and first(lines, "execution.engine", "execution resuming") is not None
                and isinstance(connections, int) and connections > 0):
            return
        if not system.running() or time.monotonic() > deadline:
            raise BenchError(f"the system did not get ready within {READY_TIMEOUT_S:.0f} s:\n{system.tail()}")
        time.sleep(0.05)


def _settle(arrivals: Arrivals) -> None:
    """Wait for the requests still in flight: until none arrived for ``SETTLE_S`` (at most ``SETTLE_MAX_S``)."""
    deadline = time.monotonic() + SETTLE_MAX_S
    count, quiet_since = arrivals.count(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < SETTLE_S:
        time.sleep(0.05)
        if (now := arrivals.count()) != count:
            count, quiet_since = now, time.monotonic()


def _paper_trades(db_url: str) -> list[PaperTrade]:
    """Every filled paper trade with its commit time and its attempts' identifiers (rows in id order)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(_QUERY).fetchall()
    out: list[PaperTrade] = []
    for pid, market, fill_s, committed, ident in rows:
        if not out or out[-1].paper_trade_id != pid:
            out.append(PaperTrade(paper_trade_id=pid, market=market, fill_s=int(fill_s), committed_at=float(committed),
                                  identifiers=()))
        if ident is not None:
            out[-1] = replace(out[-1], identifiers=(*out[-1].identifiers, ident))
    return out


def _one_run(ctx: Context, index: int) -> RunOutcome:
    started = time.monotonic()
    seconds, warmup, burst = (SECONDS_QUICK, WARMUP_QUICK, BURST_QUICK) if ctx.quick else (
        SECONDS_FULL, WARMUP_FULL, BURST_FULL)
    arrivals = Arrivals()
    db_url = ctx.server.create("order_latency")
    try:
        with SimServer(_sim_config(), on_request=arrivals) as sim:
            system = ctx.launcher.start([], _settings(sim, db_url, ctx), "order_latency")
            try:
                _wait_ready(system, sim)
                plan = plan_stream(signal_markets=SIGNAL_MARKETS, start_s=math.floor(time.time()) + 1, seconds=seconds,
                                   warmup_seconds=warmup, low=LOW, high=HIGH)
                ctx.say(f"  run {index + 1}: system ready after {time.monotonic() - started:.1f} s; {len(plan)} frames"
                        f" over {seconds} s ({warmup} s warm-up), bursts of {burst} trades")
                with switch_interval(SWITCH_INTERVAL_S):
                    stream_started, cpu_started = time.monotonic(), time.process_time()
                    published = drive(sim, plan, burst_markets=BURST_MARKETS, burst_size=burst,
                                      burst_price=BURST_PRICE)
                    stream_s = time.monotonic() - stream_started
                    bench_cpu = (time.process_time() - cpu_started) / stream_s
                    _settle(arrivals)
                if not system.running():
                    raise BenchError(f"the system exited during the stream:\n{system.tail()}")
                trades = _paper_trades(db_url)
            finally:
                system.stop()
    finally:
        ctx.server.drop(db_url)
    firsts = arrivals.first_by_identifier()
    known = {i for t in trades for i in t.identifiers}
    return RunOutcome(attribution=attribute(published, trades, firsts), frames=len(published),
                      burst_s=[p.burst_s for p in published if p.burst], late_frames=_late(published),
                      unmatched_requests=sum(1 for i in firsts if i not in known), stream_s=stream_s,
                      bench_cpu=bench_cpu, run_s=time.monotonic() - started)


def _late(published: list[Published]) -> int:
    return sum(1 for p in published if p.published_at - p.ts_ms / 1000 > 0.05)


def _ms(samples: list[Sample], part: str) -> list[float]:
    return [getattr(s, part) * 1000 for s in samples]


def _per_run(runs: list[RunOutcome], phase: str, part: str, q: float) -> tuple[float, ...]:
    return tuple(percentile(_ms(getattr(r.attribution, phase), part), q) for r in runs)


def _pooled(runs: list[RunOutcome], phase: str) -> dict[str, float | int]:
    total = [x for r in runs for x in _ms(getattr(r.attribution, phase), "total_s")]
    market = [x for r in runs for x in _ms(getattr(r.attribution, phase), "market_node_s")]
    handoff = [x for r in runs for x in _ms(getattr(r.attribution, phase), "handoff_s")]
    return {"n": len(total), "p50": round(percentile(total, 0.5), 3), "p99": round(percentile(total, 0.99), 3),
            "max": round(max(total), 3), "market_node_p50": round(percentile(market, 0.5), 3),
            "market_node_p99": round(percentile(market, 0.99), 3), "handoff_p50": round(percentile(handoff, 0.5), 3),
            "handoff_p99": round(percentile(handoff, 0.99), 3)}


def run(ctx: Context) -> Result:
    if not ctx.server.commit_timestamps():
        raise BenchError("the order latency needs track_commit_timestamp = on (the bench's embedded server has it)")
    runs: list[RunOutcome] = []
    for i in range(ctx.runs):
        ctx.say(f"order latency run {i + 1}/{ctx.runs}: frames into the simulated Upbit's WebSocket → orders/test")
        outcome = _one_run(ctx, i)
        att = outcome.attribution
        if not att.quiet or not att.burst:
            raise BenchError(f"run {i + 1} measured no {'quiet' if not att.quiet else 'burst'} orders: {att.counts}")
        runs.append(outcome)
        q, b = _ms(att.quiet, "total_s"), _ms(att.burst, "total_s")
        ctx.say(f"  quiet {len(q)}: p50 {percentile(q, 0.5):.2f} ms, p99 {percentile(q, 0.99):.2f} ms,"
                f" max {max(q):.2f} ms; burst {len(b)}: p50 {percentile(b, 0.5):.2f} ms,"
                f" p99 {percentile(b, 0.99):.2f} ms, max {max(b):.2f} ms; {att.counts}; run {outcome.run_s:.1f} s")
    frames = FLOOR_FRAMES_QUICK if ctx.quick else FLOOR_FRAMES_FULL
    ctx.say(f"order latency floor: {frames} frames through a bare client (websockets + UpbitClient), no system")
    floor = measure_floor(_sim_config(), ACCESS, SECRET, frames=frames, burst_markets=BURST_MARKETS,
                          burst_size=BURST_QUICK if ctx.quick else BURST_FULL, switch_s=SWITCH_INTERVAL_S)
    if not any(f.burst for f in floor) or all(f.burst for f in floor):
        raise BenchError(f"the floor lacks a phase: {len(floor)} of {frames} frames came back as requests")
    ctx.say(f"  floor p50: quiet {_floor(floor, False, 'total_s', 0.5):.2f} ms,"
            f" burst {_floor(floor, True, 'total_s', 0.5):.2f} ms")
    return _result(ctx, runs, floor)


def _floor(floor: list[FloorSample], burst: bool, part: str, q: float) -> float:
    return percentile([getattr(f, part) * 1000 for f in floor if f.burst == burst], q)


def _result(ctx: Context, runs: list[RunOutcome], floor: list[FloorSample]) -> Result:
    p50, p99 = Target(op="<=", value=TARGET_P50_MS), Target(op="<=", value=TARGET_P99_MS)

    def fig(name: str, phase: str, part: str, q: float, what: str, target: Target | None = None) -> Figure:
        return Figure(name=name, unit="ms", samples=_per_run(runs, phase, part, q), what=what, target=target,
                      decimals=2)

    counts = {c: [r.attribution.counts[c] for r in runs] for c in CATEGORIES}
    burst_ms = [s * 1000 for r in runs for s in r.burst_s]
    burst = BURST_QUICK if ctx.quick else BURST_FULL
    return Result(
        key="tick_to_order_latency",
        title="Tick-to-order latency, test mode (WebSocket frame published → orders/test request at the simulated"
              " Upbit)",
        method=(f"real CLI, FEED_SOURCE=upbit and TRADE_MODE=test against the bench's in-process simulated Upbit;"
                f" {len(SIGNAL_MARKETS)} signal markets trading once a second each, every frame closing a bar that"
                f" fills one paper order (STRATEGY_PARAMS={latency.STRATEGY_PARAMS}), {len(SIGNAL_MARKETS)} orders/s"
                " (under the client's own 8/s order-test pacing; the simulator's order-test budget raised to"
                f" {ORDER_TEST_BUDGET}/s so Remaining-Req never throttles); time.time() before the bench prints the"
                " frame → time.time() as the request reaches the simulator's REST pipeline, matched by identifier →"
                " attempt → paper trade → fill bar → the frame that closed it; burst phase: after every other frame"
                f" {burst} trades of {len(BURST_MARKETS)} other subscribed markets; percentiles per run, summarised"
                " over runs; floor: the same timing through a bare websockets + UpbitClient process"
                " (bench/order_latency.py, bench/order_floor.py)"),
        figures=[
            fig("p50", "quiet", "total_s", 0.5, "quiet: median per run", p50),
            fig("p99", "quiet", "total_s", 0.99, "quiet: 99th percentile per run", p99),
            fig("max", "quiet", "total_s", 1.0, "quiet: worst per run"),
            fig("burst_p50", "burst", "total_s", 0.5, "burst in flight: median per run", p50),
            fig("burst_p99", "burst", "total_s", 0.99, "burst in flight: 99th percentile per run", p99),
            fig("burst_max", "burst", "total_s", 1.0, "burst in flight: worst per run"),
            fig("p50_market_node", "quiet", "market_node_s", 0.5,
                "quiet: frame → paper trade committed (Feed → Bar → Strategy → Paper)"),
            fig("p50_handoff", "quiet", "handoff_s", 0.5,
                "quiet: paper trade committed → request arrived (NOTIFY → execution node → HTTP)"),
            fig("burst_p50_market_node", "burst", "market_node_s", 0.5, "burst: frame → paper trade committed"),
            fig("burst_p50_handoff", "burst", "handoff_s", 0.5, "burst: paper trade committed → request arrived"),
            Figure(name="floor_p50", unit="ms", samples=(_floor(floor, False, "total_s", 0.5),), decimals=2,
                   what="quiet: frame → request through a bare client, no system (measured once)"),
            Figure(name="floor_burst_p50", unit="ms", samples=(_floor(floor, True, "total_s", 0.5),), decimals=2,
                   what="burst: frame → request through a bare client, no system (measured once)"),
            Figure(name="floor_p50_to_received", unit="ms", samples=(_floor(floor, False, "received_s", 0.5),),
                   decimals=2, what="quiet: frame published → the bare client's recv() returned it: the bench's"
                                    " head start on the issue's 'frame arriving at FeedActor'"),
            Figure(name="quiet_orders_per_run", unit="orders", decimals=0,
                   samples=tuple(float(len(r.attribution.quiet)) for r in runs)),
            Figure(name="burst_orders_per_run", unit="orders", decimals=0,
                   samples=tuple(float(len(r.attribution.burst)) for r in runs)),
            Figure(name="seconds_per_run", unit="s", samples=tuple(r.run_s for r in runs),
                   what="system start → stream → settle → stop"),
        ],
        notes=[
            "the issue's targets apply to frame → request at the exchange; the path holds two PostgreSQL commits"
            " (paper trade, attempt) and the NOTIFY hand-off between the market and execution nodes; floor_p50 is"
            " what the two hops and the measurement cost with no system in between",
            f"orders not measured, per run: {', '.join(f'{c} {v}' for c, v in counts.items() if c != 'measured')}"
            " (before_frame: the bar was closed by the feed's clock tick, not by a frame — never clipped to 0)",
            f"samples are capped at ~{len(SIGNAL_MARKETS)} orders per second of stream by the client's own"
            " order-test pacing (Upbit's 8/s, exchange.rate_limit, not configurable): p99 per run rests on"
            f" ~{min(len(r.attribution.quiet) for r in runs)} samples per phase; details has the pooled percentiles",
            "the simulator runs in the bench process and prints the bursts on the same cores as the system"
            f" (bench CPU {max(r.bench_cpu for r in runs):.0%} of a core at most over a stream)",
        ],
        details={
            "quiet_pooled_ms": _pooled(runs, "quiet"),
            "burst_pooled_ms": _pooled(runs, "burst"),
            "floor_ms": {phase: {"n": sum(1 for f in floor if f.burst == burst),
                                 "p50": round(_floor(floor, burst, "total_s", 0.5), 3),
                                 "p99": round(_floor(floor, burst, "total_s", 0.99), 3),
                                 "max": round(_floor(floor, burst, "total_s", 1.0), 3),
                                 "to_received_p50": round(_floor(floor, burst, "received_s", 0.5), 3)}
                         for phase, burst in (("quiet", False), ("burst", True))},
            "categories_per_run": counts,
            "unmatched_requests_per_run": [r.unmatched_requests for r in runs],
            "frames_per_run": [r.frames for r in runs],
            "late_frames_per_run": [r.late_frames for r in runs],
            "burst_print_ms": {"p50": round(percentile(burst_ms, 0.5), 2), "max": round(max(burst_ms), 2)}
            if burst_ms else {},
            "bench_cpu_per_stream_s": [round(r.bench_cpu, 3) for r in runs],
            "stream_s_per_run": [round(r.stream_s, 2) for r in runs],
            "run_s": [round(r.run_s, 2) for r in runs],
        },
    )
