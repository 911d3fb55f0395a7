"""The command line: run a simulated Upbit until SIGINT or SIGTERM.

``python -m upbit_sim [flags]`` (and ``python -m supervisor sim [flags]`` where the supervisor's
CLI delegates to :func:`sim_main`). Prints the REST and WebSocket URLs on start-up, one per line,
so a script can read them. Exit codes: 0 after a signal, 1 when the servers cannot start (e.g.
a port is taken), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from market.candles import CandleError
from market.capture import CaptureError
from market.recording import CANDLES_KRW_BTC_1M, CAPTURE_2021_04_05, CAPTURE_2021_04_17, Recording
from market.trades_file import TradesFileError
from otp.signals import SignalRelay
from upbit_sim.config import SimConfig
from upbit_sim.faults import Faults, parse_fault

__all__ = ["build_parser", "sim_main"]

EXIT_USAGE = 2
_SHORTCUTS = {"capture": CAPTURE_2021_04_17, "capture-long": CAPTURE_2021_04_05, "candles": CANDLES_KRW_BTC_1M}
_DEFAULT_KRW = Decimal(10_000_000)


def build_parser(prog: str = "python -m upbit_sim") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A simulated Upbit exchange (REST + WebSocket) on this machine, replaying recorded trades. "
        "Control it from another process with POST <rest-url>/_sim/faults, /_sim/trades, /_sim/deposit.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="REST port (default: a free port)")
    parser.add_argument("--ws-port", type=_port, default=0, help="WebSocket port (default: a free port)")
    parser.add_argument("--data", metavar="FILE",
                        help="recording to replay: a capture file, a candle .csv(.gz), or one of "
                        "'capture', 'capture-long', 'candles' (the shipped data); default: none")
    parser.add_argument("--speed", type=_speed, default=1.0, help="replay speed: N x real time (default 1) or 'max'")
    parser.add_argument("--max-gap", type=float, default=10.0, metavar="SECONDS",
                        help="longest hole in the recording replayed at full length (default 10)")
    parser.add_argument("--access-key", help="access key of the simulated user (with --secret-key)")
    parser.add_argument("--secret-key", help="secret key of the simulated user (with --access-key)")
    parser.add_argument("--balance", action="append", default=[], type=_balance, metavar="CUR=AMOUNT",
                        help="starting balance of the user, repeatable (default KRW=10000000)")
    parser.add_argument("--fault", action="append", default=[], type=_fault, metavar="NAME[:ARGS]",
                        help="arm a fault at start, repeatable: fail_next:3,503  delay:0.5  drop_after_accept:1  "
                        "lookup_lag:2  malformed_next:1  ws_stall:5  ws_corrupt_next:2  (see upbit_sim.faults)")
    parser.add_argument("--no-rate-limits", action="store_true", help="report budgets but never answer 429/418")
    parser.add_argument("--ws-idle-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="close idle WebSocket connections after this long (default 120, as Upbit)")
    return parser


def sim_main(argv: Sequence[str] | None = None, out: TextIO | None = None, *, prog: str = "python -m upbit_sim") -> int:
    """Run the simulator until SIGINT/SIGTERM; return the exit code (see the module docstring).

    ``prog`` names the command in usage and errors (``python -m supervisor sim`` when delegated).
    """
    from upbit_sim.server import SimServer  # noqa: PLC0415 - keep ``--help`` fast

    out = out or sys.stdout
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        config = _config(args)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    stop = threading.Event()
    with SignalRelay((signal.SIGINT, signal.SIGTERM), lambda _signum: stop.set()):
        try:
            sim = SimServer(config).start()
        except OSError as exc:
            print(f"{parser.prog}: cannot start: {exc}", file=sys.stderr)
            return 1
        try:
            for name, params in args.fault:
                sim.faults.inject(name, params)
            print(f"REST {sim.rest_url}", file=out)
            print(f"WS   {sim.ws_url}", file=out)
            print(f"admin {sim.rest_url}/_sim/status (Ctrl-C stops)", file=out, flush=True)
            stop.wait()
        finally:
            sim.stop()
    print("stopped", file=out, flush=True)
    return 0


def _config(args: argparse.Namespace) -> SimConfig:
    if (args.access_key is None) != (args.secret_key is None):
        raise ValueError("--access-key and --secret-key go together")
    keys = {args.access_key: args.secret_key} if args.access_key else {}
    balances: dict[str, dict[str, Decimal]] = {}
    if args.access_key:
        balances[args.access_key] = dict(args.balance) if args.balance else {"KRW": _DEFAULT_KRW}
    elif args.balance:
        raise ValueError("--balance needs --access-key and --secret-key")
    recording = None
    if args.data is not None:
        path = _SHORTCUTS.get(args.data, Path(args.data))
        if not Path(path).is_file():
            raise ValueError(f"--data: no such file: {args.data}")
        recording = Recording.open(path)
        if args.data not in _SHORTCUTS:
            _check_recording(recording)
    for name, params in args.fault:  # check them now, with the other argument errors
        Faults(lambda: 0.0).inject(name, params)
    if not args.max_gap > 0:
        raise ValueError("--max-gap must be positive")
    return SimConfig(
        keys=keys, balances=balances, recording=recording, speed=args.speed, host=args.host, port=args.port,
        ws_port=args.ws_port, rate_limits=not args.no_rate_limits, ws_idle_timeout_s=args.ws_idle_timeout,
        max_gap_s=args.max_gap,
    )


def _check_recording(recording: Recording) -> None:
    """Read a recording of the user's whole once, so a bad row is a usage error now, not a dead replay later.

    A bad row (file, line, problem) or an unreadable file becomes a ``ValueError`` for ``--data``.
    """
    try:
        for _trade in recording.trades():
            pass
    except (CandleError, CaptureError, TradesFileError) as exc:
        raise ValueError(f"--data: {exc}") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"--data {recording.path}: cannot be read as {recording.kind.value}: {exc}") from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port must be a number 0..65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port must be 0..65535, got {value}")
    return value


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a positive number or 'max', got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"--speed must be a positive number or 'max', got {text!r}")
    return value


def _balance(text: str) -> tuple[str, Decimal]:
    currency, eq, amount = text.partition("=")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        value = Decimal(-1)
    if not eq or not currency.isupper() or not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"--balance must look like KRW=1000000, got {text!r}")
    return currency, value


def _fault(text: str) -> tuple[str, dict[str, object]]:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
