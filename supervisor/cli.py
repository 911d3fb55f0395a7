"""The command line: ``python -m supervisor [run] [flags]`` and ``python -m supervisor ctl status``.

Exit codes: 0 success; 1 the system failed, gave up, or (ctl) is not running; 2 bad arguments
or bad configuration (every bad setting is named); 3 another system already runs on the database.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from config import ConfigError, FeedSource, Settings, configure_logging, load_settings

EXIT_USAGE = 2

log = logging.getLogger("supervisor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor",
        description="Upbit trading system under a supervisor tree. With no configuration: the sandbox "
        "(recorded Upbit data replayed, paper trading, shadow execution).",
    )
    parser.add_argument("--env-file", type=Path, default=None, help="settings file (default: ./.env if present)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run the system (the default command)")
    _add_run_flags(run)
    _add_run_flags(parser, defaults_only=True)
    ctl = sub.add_parser("ctl", help="talk to the running system")
    ctl_sub = ctl.add_subparsers(dest="ctl_command", metavar="CTL_COMMAND", required=True)
    from tools import ctl as ctl_module

    ctl_module.add_commands(ctl_sub)
    from tools import record, watchdog

    record.add_parser(sub)
    watchdog.add_parser(sub)
    from tools import preflight, smoke

    preflight.add_parser(sub)
    smoke.add_parser(sub)
    from tools import drill

    drill.add_parser(sub)
    sub.add_parser("sim", help="run the simulated Upbit (REST + WebSocket on loopback); see sim --help",
                   add_help=False)
    sub.add_parser("backtest", help="replay recorded data at full speed through the system and report; "
                                    "see backtest --help", add_help=False)
    return parser


def _add_run_flags(parser: argparse.ArgumentParser, *, defaults_only: bool = False) -> None:
    # a sub-command's copy of the flags must not overwrite what the main parser already read
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if defaults_only else {}
    parser.add_argument("--speed", type=_speed, help="replay speed: N x real time (default 60) or 'max'", **kw)
    parser.add_argument("--source", choices=["candles", "capture", "capture-long"],
                        help="recording the sandbox replays (REPLAY_SOURCE)", **kw)
    parser.add_argument("--from", dest="replay_from", metavar="TIME",
                        help="replay from this UTC time (ISO 8601)", **kw)
    parser.add_argument("--until", dest="replay_until", metavar="TIME",
                        help="replay until this UTC time (ISO 8601)", **kw)
    parser.add_argument("--exit-at-end", action="store_true",
                        help="exit 0 once the recording is exhausted and everything downstream is drained",
                        **kw)
    parser.add_argument("--reset", action="store_true",
                        help="forget the sandbox's previous progress and replay from the start", **kw)


def _speed(text: str) -> str:
    if text == "max":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a positive number or 'max', got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--speed must be a positive number or 'max', got {text!r}")
    return text


def overrides_from(args: argparse.Namespace) -> dict[str, str]:
    """Command-line flags as settings overrides (they win over environment and .env)."""
    mapping = {"speed": "REPLAY_SPEED", "source": "REPLAY_SOURCE", "replay_from": "REPLAY_FROM",
               "replay_until": "REPLAY_UNTIL"}
    return {env: str(getattr(args, attr)) for attr, env in mapping.items() if getattr(args, attr, None) is not None}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:  # the simulated Upbit has its own flags (and needs no settings)
        from upbit_sim import sim_main

        return sim_main(argv[1:], out, prog="python -m supervisor sim")
    if argv[:1] == ["backtest"]:  # its own parser, settings and exit codes (backtest.command)
        from backtest.command import backtest_main

        return backtest_main(argv[1:], out=out)
    args = build_parser().parse_args(argv)
    if args.command == "preflight":  # before load_settings: a bad configuration is its first check's finding
        from tools import preflight

        return preflight.preflight(args, out)
    try:
        settings = load_settings(env_file=getattr(args, "smoke_env_file", None) or args.env_file,
                                 overrides=overrides_from(args))
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings)
    if args.command == "ctl":
        from tools import ctl

        return ctl.run(settings, args, out)
    if args.command == "watchdog":
        from tools import watchdog

        return watchdog.watchdog(settings, args, out)
    if args.command == "record":
        from tools import record

        return record.record(settings, args, out)
    if args.command == "smoke":
        from tools import smoke

        return smoke.smoke(settings, args, out)
    if args.command == "drill":
        from tools import drill

        return drill.drill(settings, args, out)
    return _run(settings, args, out)


def replay_file_problem(settings: Settings) -> str | None:
    """What is wrong with the user's ``REPLAY_FILE`` (its replayed window), or ``None``.

    The file is read whole once before anything starts, as ``backtest`` does with ``--data``: a
    bad row is named now (file, line, column; exit 2) instead of failing the feed at the same row
    at every restart until the root gives up. The shipped recordings are not re-checked.
    """
    if settings.feed.source is not FeedSource.REPLAY or settings.replay.file is None:
        return None
    from market.candles import CandleError
    from market.capture import CaptureError
    from market.recording import Recording
    from market.trades_file import TradesFileError

    path = settings.replay.file
    recording = Recording.open(path).between(settings.replay.start, settings.replay.until)
    try:
        for _trade in recording.trades():
            pass
    except (CandleError, CaptureError, TradesFileError) as exc:
        return str(exc)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        return f"{path}: cannot be read as {recording.kind.value}: {exc}"
    return None


def _run(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from system.root import RunOptions, run_system
    from trading.strategy import StrategyError, load_factory

    try:
        load_factory(settings.strategy.spec, settings.strategy.params)
    except StrategyError as exc:
        print(f"configuration error:\n  {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = replay_file_problem(settings)
    if problem is not None:
        print(f"configuration error:\n  REPLAY_FILE: {problem}", file=sys.stderr)
        return EXIT_USAGE
    log.info("effective configuration: %s", settings.masked_summary())
    options = RunOptions(exit_at_end=bool(getattr(args, "exit_at_end", False)), reset=bool(getattr(args, "reset", False)))
    return run_system(settings, options, out)
