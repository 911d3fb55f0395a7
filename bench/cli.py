"""``python -m bench [--quick] [--out FILE.json] [--runs N] [--only KEY,…]``: run, print a table, write JSON.

Exit status: 0 every benchmark measured; 1 one or more failed (each failure is in the JSON and
on stderr; the others are still reported); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import footprint, latency, order_latency, recovery, replay, writes
from bench.context import Context
from bench.database import open_server
from bench.result import Result
from bench.stats import Figure
from bench.system import Launcher

KEYS = ("db_write_rate", "replay_throughput", "tick_to_intent_latency", "tick_to_order_latency", "memory_idle",
        "recovery")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the trading system against ceilings measured on this machine in the same run:"
        " replay throughput, tick-to-intent and tick-to-order (test mode) latency, recovery after SIGKILL, memory and idle CPU, bar write rate."
        " Prints a table and writes JSON. Uses an embedded PostgreSQL in a temporary directory unless"
        " BENCH_DATABASE_URL (or DATABASE_URL) names a server (its role needs CREATEDB).",
    )
    parser.add_argument("--quick", action="store_true",
                        help="one run of each on a small slice (a smoke test, about a minute; figures are rough)")
    parser.add_argument("--runs", type=_positive, default=None, metavar="N",
                        help="runs per figure, each figure their median with min and max (default 3; --quick: 1)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.json", help="write the results here")
    parser.add_argument("--only", type=_keys, default=KEYS, metavar="KEY,…",
                        help=f"run only these benchmarks (of {', '.join(KEYS)})")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in KEYS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"unknown benchmark(s) {unknown or text!r}; choose from {', '.join(KEYS)}")
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    runs = args.runs or (1 if args.quick else 3)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the cleanup below runs
    tmp = Path(tempfile.mkdtemp(prefix="upbit-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # registered first: runs after the server's stop
    started = time.monotonic()
    launcher = Launcher(tmp / "runs")
    results: dict[str, Result] = {}
    meta: dict[str, Any] = {"quick": bool(args.quick), "runs": runs}
    try:
        server = open_server(tmp)
        ctx = Context(server=server, launcher=launcher, runs=runs, quick=args.quick, workdir=tmp / "runs")
        ctx.say(f"PostgreSQL: {server.label} {server.version()}, commit timestamps"
                f" {'on' if server.commit_timestamps() else 'off'}; {runs} run(s){' (quick)' if args.quick else ''}")
        meta.update(_meta(args, runs, server.label, server.version(), server.commit_timestamps()))
        candle_peaks: list[float] = []
        paced_peaks: list[float] = []

        def do_replay() -> Result:
            res = replay.run(ctx)
            candle_peaks.extend(r["peak_rss_mb"] for r in res.details["runs"])
            return res

        def do_latency() -> Result:
            res = latency.run(ctx)
            paced_peaks.extend(res.details["peak_rss_mb_paced_candles"])
            return res

        def do_footprint() -> Result:
            peaks = candle_peaks or [r["peak_rss_mb"] for r in [replay.system_run(ctx, replay.QUICK,
                                                                                   replay.QUICK.recording().total())]]
            return footprint.run(ctx, peaks, paced_peaks)

        plan: dict[str, Callable[[], Result]] = {
            "db_write_rate": lambda: writes.run(ctx),
            "replay_throughput": do_replay,
            "tick_to_intent_latency": do_latency,
            "tick_to_order_latency": lambda: order_latency.run(ctx),
            "memory_idle": do_footprint,
            "recovery": lambda: recovery.run(ctx),
        }
        for key in KEYS:
            if key in args.only:
                results[key] = _measure(ctx, key, plan[key])
    finally:
        launcher.close()
    meta["seconds"] = round(time.monotonic() - started, 1)
    print(render(results), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"meta": meta, "benchmarks": {k: r.to_json() for k, r in results.items()}},
                                       indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    failed = [k for k, r in results.items() if r.error is not None]
    print(f"bench: {len(results) - len(failed)} of {len(results)} benchmarks measured in {meta['seconds']:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _measure(ctx: Context, key: str, bench: Callable[[], Result]) -> Result:
    started = time.monotonic()
    try:
        result = bench()
    except Exception as exc:  # noqa: BLE001 - one failed benchmark is reported; the others still run
        traceback.print_exc(file=sys.stderr)
        result = Result(key=key, title=key, method="", error=f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - started
    ctx.say(f"{key}: {'FAILED' if result.error else 'done'} in {result.seconds:.1f} s")
    return result


def _meta(args: argparse.Namespace, runs: int, db: str, version: str, commit_ts: bool) -> dict[str, Any]:
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "database": {"server": db, "version": version, "track_commit_timestamp": commit_ts},
    }


# --- the table ---------------------------------------------------------------------------------


def render(results: dict[str, Result]) -> str:
    header = f"{'benchmark / figure':<34} {'median':>12} {'min':>12} {'max':>12}  {'unit':<15} target"
    lines = [header, "-" * len(header)]
    for key, result in results.items():
        lines.append(f"{key}" + (f"  FAILED: {result.error}" if result.error else ""))
        for f in result.figures:
            lines.append(f"  {f.name:<32} {_num(f.median, f):>12} {_num(f.min, f):>12} {_num(f.max, f):>12}  "
                         f"{f.unit:<15} {_target(f)}")
        lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def _num(value: float, figure: Figure) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{figure.decimals}f}"


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    met = figure.target.met_by(figure.median)
    return f"{figure.target.op} {figure.target.value:g} ({'met' if met else 'NOT met'})"
