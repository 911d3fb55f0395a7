"""``python -m supervisor record``: record live Upbit trades to a replayable file.

    python -m supervisor record --markets KRW-BTC,KRW-ETH --out var/recordings/today.capture

Runs until Ctrl-C, ``--duration`` seconds or ``--max-frames`` frames; then prints how much it
recorded. Replay the file with ``REPLAY_FILE=<file>`` (sandbox) or ``backtest --data <file>``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TextIO

from config import Settings
from market.recorder import CaptureWriter, RecordingExists
from market.upbit_ws import FeedConfigError, FeedError, UpbitTradeStream
from otp.signals import SignalRelay

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rec = sub.add_parser("record", help="record live Upbit trades to a file the sandbox and backtests replay")
    rec.add_argument("--markets", required=True, help="comma-separated market codes, e.g. KRW-BTC,KRW-ETH")
    rec.add_argument("--out", required=True, type=Path, help="the capture file to write")
    rec.add_argument("--append", action="store_true", help="append to an existing file")
    rec.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    rec.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    rec.add_argument("--url", default=None, help="WebSocket URL (default: UPBIT_WS_URL)")


def record(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    """Run the recorder; the exit code."""
    markets = [m.strip() for m in args.markets.split(",") if m.strip()]
    if args.duration is not None and args.duration <= 0 or args.max_frames is not None and args.max_frames <= 0:
        print("error: --duration and --max-frames must be positive", file=out)
        return EXIT_USAGE
    url = args.url or settings.feed.upbit_ws_url
    stop = threading.Event()
    writer: CaptureWriter | None = None
    trades = 0

    def on_frame(frame: bytes) -> None:
        assert writer is not None
        writer.write(frame)
        if args.max_frames is not None and writer.frames >= args.max_frames:
            stop.set()

    def on_trades(batch: list) -> None:
        nonlocal trades
        trades += len(batch)

    try:
        stream = UpbitTradeStream(url, markets, on_trades, stop, on_frame=on_frame)
        writer = CaptureWriter(args.out, url=url, append=args.append)
    except (FeedConfigError, RecordingExists) as exc:
        print(f"error: {exc}", file=out)
        return EXIT_USAGE
    timer = threading.Timer(args.duration or 0, stop.set)
    timer.daemon = True
    if args.duration is not None:
        timer.start()
    try:
        with SignalRelay((signal.SIGINT, signal.SIGTERM), lambda _signum: stop.set()):
            print(f"recording {','.join(markets)} from {url} to {args.out} (Ctrl-C stops)", file=out, flush=True)
            stream.run()
    except FeedError as exc:
        print(f"error: the feed failed: {exc}", file=out)
        return EXIT_FAILED
    finally:
        stop.set()
        timer.cancel()
        writer.close()
    print(f"recorded {writer.frames} frames ({trades} trades) to {args.out}", file=out)
    return EXIT_OK
