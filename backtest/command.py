"""``python -m supervisor backtest``: replay a recording at full speed through the real system.

    python -m supervisor backtest [--data PATH] [--from TIME] [--to TIME] [--markets A,B]
                                  [--strategy module:Class] [--params JSON] [--report DIR]
                                  [--database-url URL] [--keep-db | --drop-db] [--quiet] [--verbose]
    python -m supervisor backtest import-candles IN [IN ...] OUT [--force]
    python -m supervisor backtest import-ticks IN [IN ...] OUT [--force]

There is no separate backtest engine: the command runs the system itself — root, node processes,
actors, PostgreSQL — exactly as ``python -m supervisor --speed max --exit-at-end`` does, against a
fresh database of its own (:mod:`backtest.database`), then computes the figures from the paper
trades the run recorded (:mod:`backtest.report`) and draws them (:mod:`backtest.chart`).

What the run uses: the data, window, markets, strategy and parameters come from the command line
only (each defaulted: the shipped candle year, all of it, every market in it, the default
``STRATEGY`` and ``STRATEGY_PARAMS``), so a backtest is reproducible from its command line;
``REPLAY_*``, ``MARKETS``, ``STRATEGY*`` of the environment do not apply. Paper settings
(``PAPER_*``) and supervision come from the configuration as usual and are recorded in the report.
A backtest always runs in shadow mode, never notifies Telegram and starts no dashboard, whatever is
configured.

The figures cover the window ``[--from, --to)``; without them, the data's own span (from its
first trade to the end of the second of its last). Output in ``--report DIR`` (default ``var/backtests/<database name>``): ``report.json`` (sorted
keys, no wall-clock time: the same inputs give the same bytes), ``equity.png``, ``report.html``
and ``run.json`` (the database, the server and the wall-clock facts of this run).

Exit status: 0 done; 1 the run failed or was interrupted (the database is kept for inspection);
2 bad arguments or bad input (each names what is wrong).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from backtest import chart, database, importers, output
from backtest.progress import FeedProgress
from backtest.report import ReportError, compute, iso
from config import (SETTINGS_SPEC, ConfigError, DatabaseUrl, FeedSource, LogLevel, Settings, TradeMode,
                    configure_logging, load_settings)
from config import parsing
from market.candles import CandleError
from market.capture import CaptureError
from market.recording import CANDLES_KRW_BTC_1M, Recording
from market.trades_file import TradesFileError
from persistence.db import connect
from persistence.errors import DatabaseError, translated

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_REPORTS = Path("var/backtests")
_DEFAULTS = {spec.name: spec.default for spec in SETTINGS_SPEC}
_IMPORTS = ("import-candles", "import-ticks")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- arguments -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supervisor backtest",
        description="Replay recorded data at full speed through the real system (root, nodes, actors) against a"
        " fresh database, then report the paper trades' figures. Every option has a default: with none, the"
        " default strategy runs over all of the shipped KRW-BTC candle year.",
        epilog="Import Upbit REST data first with:  backtest import-candles IN... OUT  |  backtest import-ticks IN..."
        " OUT  (see --help of each).",
    )
    parser.add_argument("--data", type=Path, default=None, metavar="PATH",
                        help="recording to replay: candle CSV, trade file (CSV/JSONL) or a capture (default: the"
                        f" shipped {CANDLES_KRW_BTC_1M.name})")
    parser.add_argument("--from", dest="start", type=_time("--from"), default=None, metavar="TIME",
                        help="start of the window, ISO 8601, inclusive (naive = UTC; default: the data's start)")
    parser.add_argument("--to", dest="end", type=_time("--to"), default=None, metavar="TIME",
                        help="end of the window, ISO 8601, exclusive (default: the data's end)")
    parser.add_argument("--markets", type=_parsed(parsing.markets, "--markets"), default=None, metavar="A,B",
                        help="only these markets (default: every market in the data)")
    parser.add_argument("--strategy", type=_parsed(parsing.strategy_ref, "--strategy"), default=None,
                        metavar="module:Class", help=f"strategy class (default: {_DEFAULTS['STRATEGY']})")
    parser.add_argument("--params", type=_parsed(parsing.json_object, "--params"), default=None, metavar="JSON",
                        help="strategy parameters as a JSON object (default: {} = the strategy's defaults)")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help=f"where report.json, equity.png and report.html go (default: {DEFAULT_REPORTS}/<database>)")
    parser.add_argument("--database-url", type=_parsed(parsing.database_url, "--database-url", secret=True), default=None,
                        metavar="URL", help="PostgreSQL server for the backtest's own database (default: DATABASE_URL,"
                        " else the embedded server); the role needs CREATEDB")
    keep = parser.add_mutually_exclusive_group()
    keep.add_argument("--keep-db", dest="keep_db", action="store_true", default=True,
                      help="keep the backtest's database after the run (the default)")
    keep.add_argument("--drop-db", dest="keep_db", action="store_false", help="drop it once the report is written")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="the system's INFO log lines (default: warnings only)")
    parser.add_argument("--env-file", type=Path, default=None, help="settings file (default: ./.env if present)")
    return parser


def _parsed(parse: Any, flag: str, *, secret: bool = False) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except parsing.InvalidValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) if secret else f"{exc} (got {text!r})") from None

    convert.__name__ = flag
    return convert


def _time(flag: str) -> Any:
    return _parsed(parsing.utc_timestamp, flag)


# --- the command -----------------------------------------------------------------------------


def backtest_main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the ``backtest`` command; the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in _IMPORTS:
        return import_main(argv[0], argv[1:], out=out, err=err)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage and the problem
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _Backtest(args, out, err).run()
    except _Usage as exc:
        print(f"backtest: error: {exc}", file=err)
        return EXIT_USAGE
    except (database.BacktestDatabaseError, DatabaseError, ReportError) as exc:
        print(f"backtest: failed: {exc}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:  # before or after the run (during it, the root stops the system itself)
        print("backtest: interrupted", file=err)
        return EXIT_FAILED


class _Usage(Exception):
    """Bad input: printed as one line, exit 2."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Span:
    """What the window of the data holds (one validating pass over it)."""

    trades: int
    markets: tuple[str, ...]
    first_offset: int
    last_offset: int
    first_ms: int
    last_ms: int


class _Backtest:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err

    def run(self) -> int:
        args = self.args
        if args.start is not None and args.end is not None and args.start >= args.end:
            raise _Usage(f"bad window: --from {_iso(args.start)} is not before --to {_iso(args.end)}")
        data = (args.data or CANDLES_KRW_BTC_1M).expanduser()
        if not data.is_file():
            raise _Usage(f"--data {data}: no such file")
        recording = Recording.open(data).between(args.start, args.end).only(args.markets)
        settings = self._settings(data)
        configure_logging(settings)
        self._check_strategy(settings)
        span = self._scan(recording)
        digest = _sha256(data)
        if args.report is not None:
            self._check_report_dir(args.report.expanduser())
        started = time.monotonic()
        server = self._server(settings)
        name = database.create(server)
        db_url = server.database_url(name)
        report_dir = (args.report or DEFAULT_REPORTS / name).expanduser()
        self._check_report_dir(report_dir)
        settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database,
                                                                              url=DatabaseUrl(db_url)))
        configure_logging(settings)  # again: the secret filter now masks the backtest database's URL too
        print(f"backtest: {span.trades:,} trades of {data.name} ({recording.kind.value}) → database {name} on"
              f" {server.label}", file=self.err)
        code = self._replay(settings, span)
        if code != EXIT_OK:
            print(f"backtest: the run failed (exit {code}); database {name} kept for inspection", file=self.err)
            return EXIT_FAILED
        with connect(db_url, application_name="backtest-report") as conn, translated():
            applied = conn.execute("SELECT coalesce(max(applied_offset), -1) FROM feed_offsets").fetchone()
            if applied is None or applied[0] < span.last_offset:
                print(f"backtest: interrupted before the end of the data (applied offset {applied and applied[0]}"
                      f" of {span.last_offset}); no report; database {name} kept", file=self.err)
                return EXIT_FAILED
            trades = database.paper_trades(conn)
            last = database.last_prices(conn)
            start_ms = _ms(args.start) if args.start is not None else span.first_ms
            end_ms = _ms(args.end) if args.end is not None else (span.last_ms // 1000 + 1) * 1000
            report = compute(trades, start_ms=start_ms, end_ms=end_ms, last_prices=last)
            prices = chart.downsample(database.closes(conn), start_ms=start_ms, end_ms=end_ms)
        inputs = self._inputs(data, digest, recording, settings, span)
        facts = output.RunFacts(database=name, server=server.label, kept=args.keep_db,
                                duration_s=round(time.monotonic() - started, 1))
        output.write_report(report_dir, report=report, trades=trades, inputs=inputs, prices=prices, start_ms=start_ms,
                            end_ms=end_ms, facts=facts)
        if not args.keep_db:
            database.drop(server, name)
        print(output.summary(report, inputs, report_dir, facts), file=self.out)
        return EXIT_OK

    # --- before the run ------------------------------------------------------------------

    def _settings(self, data: Path) -> Settings:
        args = self.args
        try:
            base = load_settings(env_file=args.env_file)
        except ConfigError as exc:
            raise _Usage(f"configuration error:\n{exc}") from None
        module, class_name = args.strategy or parsing.strategy_ref(_DEFAULTS["STRATEGY"])
        params = args.params if args.params is not None else parsing.json_object(_DEFAULTS["STRATEGY_PARAMS"])
        return dataclasses.replace(
            base,
            trade_mode=TradeMode.SHADOW,
            log_level=base.log_level if args.verbose else LogLevel.WARNING,
            feed=dataclasses.replace(base.feed, source=FeedSource.REPLAY, markets=tuple(args.markets or ())),
            replay=dataclasses.replace(base.replay, file=data.resolve(), speed=None, start=args.start, until=args.end),
            strategy=dataclasses.replace(base.strategy, spec=f"{module}:{class_name}", params=params),
            exchange=dataclasses.replace(base.exchange, access_key=None, secret_key=None),
            telegram=dataclasses.replace(base.telegram, bot_token=None, chat_id=None),
            dashboard_port=0,  # no status page: a backtest may run beside the sandbox, which has it
        )

    def _check_strategy(self, settings: Settings) -> None:
        from trading.strategy import StrategyError, load_factory

        try:
            load_factory(settings.strategy.spec, settings.strategy.params)
        except StrategyError as exc:
            raise _Usage(f"--strategy/--params: {exc}") from None

    def _scan(self, recording: Recording) -> _Span:
        """Read the window once: it validates every row now (a bad row is exit 2, not a crashing feed)."""
        count, first_off, last_off, lo, hi = 0, -1, -1, 0, 0
        markets: set[str] = set()
        try:
            for trade in recording.trades():
                if count == 0:
                    first_off, lo, hi = trade.offset, trade.ts_ms, trade.ts_ms
                count += 1
                markets.add(trade.market)
                last_off = trade.offset
                lo, hi = min(lo, trade.ts_ms), max(hi, trade.ts_ms)
            if count == 0:
                raise _Usage(self._empty_window(recording))
        except (CandleError, CaptureError, TradesFileError) as exc:
            raise _Usage(f"--data: {exc}") from None
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise _Usage(f"--data {recording.path}: cannot be read as {recording.kind.value}: {exc}") from None
        return _Span(trades=count, markets=tuple(sorted(markets)), first_offset=first_off, last_offset=last_off, first_ms=lo, last_ms=hi)

    def _empty_window(self, recording: Recording) -> str:
        first = last = None
        seen: set[str] = set()
        for trade in Recording.open(recording.path).trades():
            first = trade.ts_ms if first is None else min(first, trade.ts_ms)
            last = trade.ts_ms if last is None else max(last, trade.ts_ms)
            seen.add(trade.market)
        what = []
        if recording.from_ts is not None or recording.until_ts is not None:
            what.append(f"window {_iso(recording.from_ts) if recording.from_ts else 'start'} →"
                        f" {_iso(recording.until_ts) if recording.until_ts else 'end'}")
        if recording.markets is not None:
            what.append(f"markets {','.join(sorted(recording.markets))}")
        if first is None or last is None:
            return f"--data {recording.path.name}: the file holds no trades"
        return (f"no trades in the {' and '.join(what)}: {recording.path.name} covers {iso(first)} → {iso(last)}"
                f" and markets {','.join(sorted(seen))}")

    def _server(self, settings: Settings) -> database.Server:
        return database.resolve_server(settings, self.args.database_url and self.args.database_url.reveal())

    def _check_report_dir(self, report_dir: Path) -> None:
        if report_dir.exists() and not report_dir.is_dir():
            raise _Usage(f"--report {report_dir}: exists and is not a directory")
        report_dir.mkdir(parents=True, exist_ok=True)

    # --- the run ---------------------------------------------------------------------------

    def _replay(self, settings: Settings, span: _Span) -> int:
        from system.root import RunOptions, run_system

        enabled = not self.args.quiet and self.err.isatty()
        progress = FeedProgress(total=span.trades, first_offset=span.first_offset, last_offset=span.last_offset,
                                enabled=enabled, stream=self.err)
        try:
            code = run_system(settings, RunOptions(exit_at_end=True, status_line=False, progress=progress), self.err)
            if code == EXIT_OK:
                progress(span.last_offset)  # the node reports counters once a second: the last may be unseen
        finally:
            progress.close()
        return code

    # --- after the run ---------------------------------------------------------------------

    def _inputs(self, data: Path, digest: str, recording: Recording, settings: Settings, span: _Span) -> dict[str, Any]:
        summary = settings.masked_summary()
        return {
            "data": {"file": data.name, "sha256": digest, "kind": recording.kind.value,
                     "source": recording.source.value},
            "window": {"from": _iso(self.args.start) if self.args.start else None,
                       "to": _iso(self.args.end) if self.args.end else None},
            "replayed": {"trades": span.trades, "markets": list(span.markets), "first_trade": iso(span.first_ms),
                         "last_trade": iso(span.last_ms)},
            "markets": sorted(self.args.markets) if self.args.markets else None,
            "strategy": settings.strategy.spec,
            "params": output.thaw(settings.strategy.params),
            "paper": {k: v for k, v in summary.items() if k.startswith("PAPER_")},
        }


# --- importers ---------------------------------------------------------------------------------


def import_main(command: str, argv: Sequence[str], *, out: TextIO, err: TextIO) -> int:
    """``backtest import-candles|import-ticks IN [IN ...] OUT [--force]``."""
    what = "/v1/candles/minutes/1" if command == "import-candles" else "/v1/trades/ticks"
    target = "a candle CSV (name it <market>-1m-….csv[.gz], e.g. krw-eth-1m-candles.csv)" \
        if command == "import-candles" else "a trade file (.csv, .jsonl, optionally .gz)"
    parser = argparse.ArgumentParser(prog=f"python -m supervisor backtest {command}",
                                     description=f"Convert saved Upbit REST {what} responses (JSON, as the API returns"
                                     f" them; several files or pages are merged) into {target}.")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="saved API response(s)")
    parser.add_argument("output", type=Path, metavar="OUT", help="the file to write")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if command == "import-candles":
            c = importers.import_candles(args.inputs, args.output, force=args.force)
            print(f"wrote {c.candles:,} {c.market} 1-minute candles, {c.first} → {c.last} UTC, to {args.output}"
                  + (f" ({c.duplicates} duplicates dropped)" if c.duplicates else ""), file=out)
        else:
            t = importers.import_ticks(args.inputs, args.output, force=args.force)
            print(f"wrote {t.trades:,} trades of {','.join(t.markets)}, {importers.utc_text(t.first_ms)} →"
                  f" {importers.utc_text(t.last_ms)} UTC, to {args.output}"
                  + (f" ({t.duplicates} duplicates dropped)" if t.duplicates else ""), file=out)
    except importers.UpbitImportError as exc:
        print(f"backtest {command}: error: {exc}", file=err)
        return EXIT_USAGE
    return EXIT_OK


# --- helpers ---------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
