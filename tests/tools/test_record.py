"""``record``: live frames written byte for byte to a file the replay reads back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from market.recording import CAPTURE_2021_04_17, Recording
from tests.e2e.harness import base_env
from tests.fakes.upbit_ws import FakeUpbitServer
from tests.market.recorded_frames import raw_trade_frames


def test_record_writes_a_capture_that_replays_to_the_same_trades(tmp_path: Path) -> None:
    frames = raw_trade_frames(CAPTURE_2021_04_17)
    out = tmp_path / "rec" / "lamb.capture"
    with FakeUpbitServer(frames, drop_after=[40, None]) as server:
        done = subprocess.run(
            [sys.executable, "-m", "supervisor", "record", "--markets", "KRW-LAMB", "--out", str(out),
             "--url", server.url, "--max-frames", "299"],
            cwd=tmp_path, env=base_env(None, tmp_path), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recorded 299 frames (299 trades)" in done.stdout
    recorded = [(t.market, t.ts_ms, t.price, t.volume, t.seq) for t in Recording.capture(out).trades()]
    original = [(t.market, t.ts_ms, t.price, t.volume, t.seq)
                for t in Recording.capture(CAPTURE_2021_04_17).only(["KRW-LAMB"]).trades()]
    assert recorded == original  # across a dropped connection, in the original order


def test_record_refuses_to_overwrite_and_rejects_bad_markets(tmp_path: Path) -> None:
    out = tmp_path / "exists.capture"
    out.write_text("keep me\n")
    env = base_env(None, tmp_path)
    done = subprocess.run([sys.executable, "-m", "supervisor", "record", "--markets", "KRW-BTC", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "exists" in done.stdout
    assert out.read_text() == "keep me\n"
    bad = subprocess.run([sys.executable, "-m", "supervisor", "record", "--markets", "krw-btc!",
                          "--out", str(tmp_path / "new.capture")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "krw-btc!" in bad.stdout
    assert not (tmp_path / "new.capture").exists()
