"""Running the real system (``python -m supervisor``) as a child process of a test.

The system gets this test's own database through ``DATABASE_URL`` and runs in a temporary working
directory (so no developer ``.env`` leaks in). Output goes to a file the test can read on failure.
Every process started here is killed at teardown, whatever the test did.
"""

from __future__ import annotations

import ast
import csv
import gzip
import os
import signal
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from tests.helpers import eventually

REPO = Path(__file__).resolve().parents[2]
CANDLES = REPO / "data" / "upbit" / "krw-btc-1m-candles-2024-08-to-2025-08.csv.gz"  # read here without market/
CAPTURE_30S = REPO / "data" / "upbit" / "upbit-ws-2021-04-17-30s.capture"

# A two-hour slice of the candle year, and a strategy that trades often on it.
SLICE_FROM = "2024-08-24T22:28:00"
SLICE_UNTIL = "2024-08-25T00:28:00"
BUSY_STRATEGY = '{"window": 5, "entry_bps": 0, "exit_bps": 0}'


def base_env(db_url: str | None, workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPBIT_", "TELEGRAM_", "REPLAY_", "DATABASE_"))}
    env.update({"LOG_LEVEL": "INFO", "STATUS_INTERVAL_S": "1", "EMBEDDED_PG_DIR": str(workdir / "pgdata"),
                "PYTHONUNBUFFERED": "1", "DASHBOARD_PORT": "0"})
    if db_url is not None:
        env["DATABASE_URL"] = db_url
    env.update(extra)
    return env


@dataclass
class Runner:
    """Starts CLI processes and cleans them up."""

    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], name: str = "system") -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "supervisor", *args], cwd=self.workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = Path(log.name)  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def run(self, args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "supervisor", *args], cwd=self.workdir, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)


def output(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def exit_code(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The system's exit code once it has exited; if it is still running after ``timeout`` s, the
    test fails with the end of its log, which then holds every thread's stack of the root and its
    nodes (``otp.signals.STACKS_SIGNAL`` to the process group)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        try:
            eventually(lambda: "most recent call first" in output(proc), timeout=5, interval=0.1)
        except AssertionError:
            pass  # no dump (the process ignores the signal): fail below with whatever the log holds
        pytest.fail(f"still running {timeout:g} s after it was told to stop; its log ends:\n{output(proc)[-20000:]}")


# --- independent expectations, computed from the raw files without the product's code ---------

def expected_candle_bars(from_iso: str, until_iso: str) -> tuple[int, Decimal]:
    """Bars and total volume a replay of the candle slice must store: each candle's four trades
    fall in four distinct seconds of its minute, so four bars per candle."""
    start = datetime.fromisoformat(from_iso).replace(tzinfo=UTC)
    end = datetime.fromisoformat(until_iso).replace(tzinfo=UTC)
    candles, volume = 0, Decimal(0)
    with gzip.open(CANDLES, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            ts = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC)
            if start <= ts < end:
                candles += 1
                volume += Decimal(row["volume"])
    return candles * 4, volume


def expected_capture_bars(path: Path = CAPTURE_30S) -> dict[tuple[str, int], tuple[int, Decimal]]:
    """(market, second) → (trade count, volume) straight from the captured frames."""
    bars: dict[tuple[str, int], list] = defaultdict(lambda: [0, Decimal(0)])
    for line in path.read_text().splitlines():
        head, sep, rest = line.partition(": b'")
        if not sep:
            continue
        frame = orjson.loads(ast.literal_eval("b'" + rest))
        if frame.get("ty") != "trade":
            continue
        entry = bars[(frame["cd"], frame["ttms"] // 1000)]
        entry[0] += 1
        entry[1] += Decimal(repr(frame["tv"]))
    return {k: (v[0], v[1]) for k, v in bars.items()}
