"""The backtest command end to end: the real system (root, node processes, actors) on the shipped data.

Each run gets its own database on the test session's server (``--database-url``), as a user's
backtest does on theirs, and its own working directory (no developer ``.env`` leaks in).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from matplotlib import image

from backtest.progress import FeedProgress
from market.capture import read_trades as read_capture
from market.trades_file import write_trades
from persistence.db import with_database
from tests.e2e.harness import (BUSY_STRATEGY, CAPTURE_30S, SLICE_FROM, SLICE_UNTIL, Runner, base_env)

REPO = Path(__file__).resolve().parents[2]
# ``python -m supervisor backtest`` runs the same function (backtest.command.backtest_main).
COMMAND = [sys.executable, "-m", "supervisor", "backtest"]
SLICE = ["--from", SLICE_FROM, "--to", SLICE_UNTIL, "--params", BUSY_STRATEGY]
NO_SERVER = "postgresql://nobody@127.0.0.1:9/none"  # bad input must be refused before any database is touched


def _env(workdir: Path) -> dict[str, str]:
    env = base_env(None, workdir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _backtest(workdir: Path, *args: str, timeout: float = 180,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], cwd=workdir, env={**_env(workdir), **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _paper_trades(url: str) -> list[tuple[object, ...]]:
    """Every paper trade as stored, whatever columns the paper book has grown (but not its wall-clock time)."""
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT * FROM paper_trades ORDER BY id")
        keep = [i for i, c in enumerate(cur.description or ()) if c.name != "created_at"]
        return [tuple(row[i] for i in keep) for row in cur.fetchall()]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def kept_databases(pg_server_url: str) -> Iterator[list[str]]:
    """Names of databases a test's backtests keep; dropped at teardown."""
    names: list[str] = []
    yield names
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_json(report: Path) -> dict[str, object]:
    return json.loads((report / "run.json").read_text())


# --- bad input: a clear message naming what is wrong, exit 2 ---------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["--data", "missing.csv"], ["--data missing.csv: no such file"]),
    (["--from", "2024-08-25", "--to", "2024-08-24"], ["bad window: --from 2024-08-25T00:00:00Z is not before --to"]),
    (["--from", "yesterday"], ["argument --from", "not an ISO-8601 timestamp"]),
    (["--params", '{"window": 5'], ["argument --params", "not valid JSON"]),
    (["--params", '{"window": 1}'], ["--strategy/--params", "window"]),
    (["--strategy", "trading.builtin:NoSuchStrategy"], ["--strategy/--params", "NoSuchStrategy"]),
    (["--markets", "KRW-BTC,"], ["argument --markets", "stray comma"]),
    (["--from", "2030-01-01", "--to", "2030-01-02"],
     ["no trades in the window 2030-01-01T00:00:00Z → 2030-01-02T00:00:00Z",
      "covers 2024-08-24T22:28:00Z → 2025-08-24T09:12:45Z and markets KRW-BTC"]),
    (["--data", str(CAPTURE_30S), "--markets", "KRW-ETH"], ["no trades in the markets KRW-ETH", "KRW-LAMB"]),
])
def test_bad_input_is_refused_with_exit_2(workdir: Path, args: list[str], expected: list[str]) -> None:
    done = _backtest(workdir, "--database-url", NO_SERVER, "--quiet", *args, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    for text in expected:
        assert text in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_row_in_the_data_is_refused_before_the_run(workdir: Path) -> None:
    data = workdir / "krw-btc-1m-mine.csv"
    data.write_text("timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,10,12,9,11,4\n"
                    "2024-01-01 00:01:00,10,12,9,13,4\n")
    done = _backtest(workdir, "--database-url", NO_SERVER, "--data", str(data), timeout=60)
    assert done.returncode == 2
    assert f"--data: {data}:3: column 'close': close 13 is outside [low 9, high 12]" in done.stderr


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("mine.csv", "market,ts_ms,price,volume,side\nKRW-BTC,1724538480000,85533000,1E+400000,BID\n",
     "mine.csv:2: column 'volume': 1E+400000 is too large; allowed: a volume from 1E-12 to 1E+15"),
    ("mine.csv", "market,ts_ms,price,volume,side\nKRW-BTC,1724538480,85533000,0.1,BID\n",
     "mine.csv:2: column 'ts_ms': 1724538480 looks like seconds, expected milliseconds"),
    ("mine.csv", "market,ts_ms,price,volume,side\nKRW-BTC,²,85533000,0.1,BID\n", "mine.csv:2: column 'ts_ms'"),
    ("mine.csv", "market,ts_ms,price,volume\nKRW-BTC,1724538480000,85533000,0.1\n",
     "mine.csv:1: column 'header': missing column(s) 'side' of a trade file"),
    ("mine.jsonl", '{"market": "KRW-", "ts_ms": 1724538480000, "price": 1, "volume": 1, "side": "BID"}\n',
     "mine.jsonl:1: column 'market': expected a market code like KRW-BTC"),
    ("krw-btc-1m-mine.csv", "timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,10,1E+400000,9,11,4\n",
     "krw-btc-1m-mine.csv:2: column 'high': 1E+400000 is too large"),
])
def test_absurd_data_is_refused_before_the_run_with_file_line_and_problem(workdir: Path, name: str, content: str,
                                                                          problem: str) -> None:
    data = workdir / name  # review finding 11: each of these was a traceback or a crash-looping market node
    data.write_text(content, encoding="utf-8")
    done = _backtest(workdir, "--database-url", NO_SERVER, "--data", str(data), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"backtest: error: --data: {workdir}/{problem}" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_database_server_is_exit_1_and_says_so(workdir: Path) -> None:
    done = _backtest(workdir, "--database-url", NO_SERVER, "--quiet", *SLICE, timeout=60)
    assert done.returncode == 1
    assert "cannot create a backtest database on postgresql://nobody@127.0.0.1:9/none" in done.stderr


# --- full runs ---------------------------------------------------------------------------------------


def test_two_runs_over_the_same_input_give_byte_identical_reports(workdir: Path, pg_server_url: str) -> None:
    reports = []
    for name in ("first", "second"):
        report = workdir / name
        done = _backtest(workdir, *SLICE, "--database-url", pg_server_url, "--report", str(report), "--drop-db")
        assert done.returncode == 0, done.stdout + done.stderr
        reports.append(report)
        assert "PnL after fees" in done.stdout and "(dropped)" in done.stdout
        assert "final |" not in done.stdout + done.stderr, "no status lines: a backtest shows a progress bar instead"
    first, second = ((r / "report.json").read_bytes() for r in reports)
    assert first == second
    document = json.loads(first)
    assert document["inputs"]["window"] == {"from": "2024-08-24T22:28:00Z", "to": "2024-08-25T00:28:00Z"}
    assert document["inputs"]["params"] == json.loads(BUSY_STRATEGY)
    assert document["inputs"]["replayed"]["trades"] == 480
    assert len(document["inputs"]["data"]["sha256"]) == 64
    assert document["figures"]["trades"] == len(document["trades"]) > 0
    png = reports[0] / "equity.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _channels = image.imread(png).shape
    assert width >= 1000 and height >= 600
    assert '<img src="equity.png"' in (reports[0] / "report.html").read_text()
    runs = [_run_json(r) for r in reports]
    assert runs[0]["database"] != runs[1]["database"] and runs[0]["kept"] is False
    with psycopg.connect(pg_server_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = ANY(%s)",
                            ([str(r["database"]) for r in runs],)).fetchone()
    assert left == (0,), "--drop-db drops the backtest's database"


def test_a_backtest_and_a_sandbox_run_make_the_same_paper_trades(workdir: Path, pg_server_url: str, db_url: str,
                                                                 kept_databases: list[str]) -> None:
    runner = Runner(workdir=workdir)
    env = base_env(db_url, workdir, STRATEGY_PARAMS=BUSY_STRATEGY)
    sandbox = runner.run(["--speed", "max", "--from", SLICE_FROM, "--until", SLICE_UNTIL, "--exit-at-end"], env,
                         timeout=120)
    assert sandbox.returncode == 0, sandbox.stdout + sandbox.stderr
    report = workdir / "report"
    done = _backtest(workdir, *SLICE, "--database-url", pg_server_url, "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    run = _run_json(report)
    kept_databases.append(str(run["database"]))
    assert run["kept"] is True and f"{run['database']} on" in done.stdout and "(kept)" in done.stdout
    expected = _paper_trades(db_url)
    assert len(expected) > 10
    assert _paper_trades(with_database(pg_server_url, str(run["database"]))) == expected
    listed = json.loads((report / "report.json").read_text())["trades"]
    assert [(t["side"], t["price"]) for t in listed] == [(r[2], format(r[3].normalize(), "f")) for r in expected]


def test_a_trade_file_replays_like_the_capture_it_was_written_from(workdir: Path, pg_server_url: str) -> None:
    trade_file = workdir / "capture-trades.csv"
    write_trades(trade_file, read_capture(CAPTURE_30S))
    params = '{"window": 3, "entry_bps": 0, "exit_bps": 0}'
    documents = []
    for data in (CAPTURE_30S, trade_file):
        report = workdir / f"report-{data.stem}"
        done = _backtest(workdir, "--data", str(data), "--params", params, "--database-url", pg_server_url,
                         "--report", str(report), "--drop-db")
        assert done.returncode == 0, done.stdout + done.stderr
        documents.append(json.loads((report / "report.json").read_text()))
    capture, trades = documents
    assert (capture["inputs"]["data"]["kind"], trades["inputs"]["data"]["kind"]) == ("capture", "trades")
    assert capture["inputs"]["replayed"] == trades["inputs"]["replayed"]
    assert capture["inputs"]["replayed"]["markets"] == ["BTC-ITAM", "KRW-LAMB", "KRW-WAVES"]
    assert capture["trades"] == trades["trades"] and capture["figures"] == trades["figures"]
    assert capture["trades"], "the capture should produce paper trades"


def test_embedded_server_when_no_database_is_configured(workdir: Path) -> None:
    # Not under pytest's basetemp, which a concurrent pytest session may prune mid-test (see tests/conftest.py).
    pg_dir = Path(tempfile.mkdtemp(prefix="upbit-trader-backtest-pg-")) / "pgdata"
    try:
        report = workdir / "report"
        done = _backtest(workdir, "--data", str(CAPTURE_30S), "--report", str(report), "--quiet",
                         env={"EMBEDDED_PG_DIR": str(pg_dir)})
        assert done.returncode == 0, done.stdout + done.stderr
        run = _run_json(report)
        assert run["server"] == f"the embedded PostgreSQL in {pg_dir}"
        assert (pg_dir / "PG_VERSION").exists()
        assert str(run["database"]).startswith("backtest_") and run["kept"] is True
    finally:  # the server stopped when the backtest (its only user) exited
        shutil.rmtree(pg_dir.parent, ignore_errors=True)


# --- the progress bar's arithmetic -------------------------------------------------------------------


def test_progress_maps_file_offsets_onto_the_window_and_never_goes_back() -> None:
    progress = FeedProgress(total=480, first_offset=1000, last_offset=1479, enabled=False, stream=sys.stderr)
    assert [progress.done(o) for o in (-1, 999, 1000, 1239, 1479, 5000)] == [0, 0, 1, 240, 480, 480]
    progress(1239)
    progress(-1)  # a restarted feed reports nothing delivered yet
    assert progress.n == 240
    progress.close()
