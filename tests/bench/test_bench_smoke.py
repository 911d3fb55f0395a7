"""Smoke test of ``python -m bench --quick``: every benchmark runs and reports numeric figures.

Performance is never asserted here (the figures are whatever this machine gives); only that the
benchmarks still run end to end against the real system and write the JSON they promise.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = {"replay_throughput", "tick_to_intent_latency", "tick_to_order_latency", "recovery", "memory_idle",
              "db_write_rate"}
# figures each benchmark must report (others may come and go)
REQUIRED = {
    "replay_throughput": {"pipeline", "ceiling_bar_loop", "ratio_to_bar_loop", "ceiling_orjson_frames",
                          "ratio_to_orjson", "startup"},
    "tick_to_intent_latency": {"p50", "p99", "max"},
    "tick_to_order_latency": {"p50", "p99", "max", "burst_p50", "burst_p99", "burst_max", "p50_handoff",
                              "floor_p50"},
    "recovery": {"p50", "worst", "floor_spawn_import"},
    "memory_idle": {"rss_1_market", "rss_20_markets", "rss_candles_max_speed", "cpu_20_markets"},
    "db_write_rate": {"save_bars", "ceiling_copy", "ratio_to_copy"},
}


@pytest.mark.timeout(900)
def test_quick_bench_reports_every_benchmark_with_numeric_medians(tmp_path: Path) -> None:
    out = tmp_path / "tmp.json"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BENCH_DATABASE_URL"}}
    if os.environ.get("TEST_DATABASE_URL"):  # the suite's own server, when it has one
        env["BENCH_DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=840, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["meta"]["quick"] is True
    benchmarks = report["benchmarks"]
    assert set(benchmarks) == BENCHMARKS
    for key, bench in benchmarks.items():
        assert "error" not in bench, f"{key}: {bench.get('error')}"
        assert REQUIRED[key] <= set(bench["figures"]), f"{key} lacks {REQUIRED[key] - set(bench['figures'])}"
        for name, figure in bench["figures"].items():
            for stat in ("median", "min", "max"):
                value = figure[stat]
                assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{key}.{name}.{stat}"
                assert math.isfinite(value), f"{key}.{name}.{stat} = {value}"
            assert figure["n"] >= 1
    assert "replay_throughput" in done.stdout  # the table was printed
