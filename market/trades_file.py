"""Trade files: a user's own recorded trades, as CSV or JSON Lines, read into :class:`Trade`.

The format (also written by :func:`write_trades`, e.g. by the Upbit ticks importer):

CSV (``.csv``, ``.csv.gz``) — a header naming the columns, in any order, then one trade a row::

    market,ts_ms,price,volume,side,seq
    KRW-BTC,1724538480000,85533000,0.01234567,BID,17245384800000000

JSON Lines (``.jsonl``/``.ndjson``, optionally ``.gz``) — one object a line with the same keys::

    {"market": "KRW-BTC", "ts_ms": 1724538480000, "price": "85533000", "volume": "0.01234567", "side": "BID"}

=========  ========  ==========================================================================
column     required  meaning
=========  ========  ==========================================================================
market     yes       Upbit market code, e.g. ``KRW-BTC`` (QUOTE-BASE, upper case)
ts_ms      one of    trade time, integer epoch milliseconds (UTC), 2009 to 2100
timestamp  the two   trade time, ISO 8601 (``2024-08-24T22:28:00.123Z``); without an offset: UTC
price      yes       decimal, 1e-12 to 1e12 (JSON: a string, or a number, read exactly as written)
volume     yes       decimal, 1e-12 to 1e15
side       yes       taker side: ``BID`` (buyer-initiated) or ``ASK``; ``buy``/``sell`` also
                     accepted; case-insensitive
seq        no        integer >= 0, unique per market (Upbit's ``sequential_id``); default: the
                     trade's offset
=========  ========  ==========================================================================

Unknown columns are an error (a misspelt ``volumne`` must not be silently ignored); blank lines
are skipped. A time in seconds rather than milliseconds is an error that says so (it would land in
1970), and prices and volumes are checked against ``exchange.rules``' plausibility bounds. Trades are replayed **in file order**: a trade earlier than one before it is
replayed as a late trade, exactly as Upbit itself sometimes delivers them (keep files in time
order; the importer does). A trade's ``offset`` is its 0-based index among the file's trades,
so a replay resumes cheaply: rows before ``start_offset`` are skipped unparsed. Everything is
streamed. A bad row raises :class:`TradesFileError` naming file, line and column.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Final

from model.market import Side, Trade, TradeSource
from exchange import rules

__all__ = [
    "COLUMNS",
    "TradesFileError",
    "is_trades_file",
    "read_trades",
    "write_trades",
]

#: The columns a trade file may have, in the order :func:`write_trades` writes them.
COLUMNS: Final = ("market", "ts_ms", "timestamp", "price", "volume", "side", "seq")
_REQUIRED: Final = ("market", "price", "volume", "side")
_TRADE_ONLY: Final = frozenset({"market", "ts_ms", "price", "side", "seq"})  # columns no candle file has
_CANDLE_ONLY: Final = frozenset({"open", "high", "low", "close"})  # columns no trade file has
_WRITTEN: Final = ("market", "ts_ms", "price", "volume", "side", "seq")
_JSONL_SUFFIXES: Final = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_CSV_SUFFIXES: Final = (".csv", ".csv.gz")
_SIDES: Final = {"BID": Side.BID, "ASK": Side.ASK, "BUY": Side.BID, "SELL": Side.ASK}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_MAX_INT_DIGITS: Final = 20  # ts_ms and seq: an int64 has 19 digits
_MAX_NUMBER_CHARS: Final = 100  # a price or volume written longer than this is not one
#: The source trades from a file carry. TODO: a ``TradeSource`` value of their own (messages.py is
#: shared); until then they are labelled like the other real recorded trades.
SOURCE: Final = TradeSource.FILE


class TradesFileError(ValueError):
    """A trade file has a bad header or row; names file, 1-based line and column."""

    def __init__(self, path: Path, line_no: int, column: str, problem: str) -> None:
        self.path = path
        self.line_no = line_no
        self.column = column
        self.problem = problem
        super().__init__(f"{path}:{line_no}: column {column!r}: {problem}")


def is_jsonl(path: Path) -> bool:
    """True when ``path`` is named like a JSON Lines trade file."""
    return path.name.lower().endswith(_JSONL_SUFFIXES)


def is_trades_file(path: str | Path) -> bool:
    """True when ``path`` is a trade file: a JSON Lines name, or a CSV whose header looks more like ours.

    A CSV header is a trade file's when it names more of the columns only trade files have
    (``market``, ``ts_ms``, ``price``, ``side``, ``seq``) than of those only candle files have
    (``open``, ``high``, ``low``, ``close``): so a trade CSV that lacks ``side`` is read as a trade
    file and reported as missing ``side``, not as a candle file with the wrong header. A CSV with
    the candle header (or an unreadable one) is not a trade file; this never raises.
    """
    path = Path(path)
    if is_jsonl(path):
        return True
    if not path.name.lower().endswith(_CSV_SUFFIXES):
        return False
    try:
        with _open_text(path) as lines:
            header = lines.readline(64 * 1024)
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    names = {name.strip() for name in header.rstrip("\r\n").split(",")}
    return len(names & _TRADE_ONLY) > len(names & _CANDLE_ONLY)


def read_trades(path: str | Path, *, start_offset: int = 0) -> Iterator[Trade]:
    """Stream the trades of a trade file in file order, each with its ``offset``.

    Raises:
        TradesFileError: a bad header or row (rows skipped by ``start_offset`` are not checked).
        OSError: the file cannot be read (``gzip.BadGzipFile`` included).

    """
    if start_offset < 0:
        raise ValueError(f"start_offset must not be negative, got {start_offset}")
    path = Path(path)
    rows = _jsonl_rows(path, start_offset) if is_jsonl(path) else _csv_rows(path, start_offset)
    for offset, line_no, row in rows:
        yield _trade(path, line_no, offset, row)


def write_trades(path: str | Path, trades: Iterable[Trade]) -> int:
    """Write ``trades`` as a trade file (CSV, or JSON Lines by the name; gzip for ``.gz``).

    The file appears whole or not at all (written beside it, then renamed). Returns the count.
    """
    path = Path(path)
    jsonl = is_jsonl(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open_for_writing(tmp, gz=path.name.lower().endswith(".gz")) as out:
            if not jsonl:
                out.write(",".join(_WRITTEN) + "\n")
            for t in trades:
                values = {"market": t.market, "ts_ms": t.ts_ms, "price": _plain(t.price),
                          "volume": _plain(t.volume), "side": t.side.value, "seq": t.seq}
                if jsonl:
                    out.write(json.dumps(values, separators=(",", ":")) + "\n")
                else:
                    out.write(",".join(str(values[c]) for c in _WRITTEN) + "\n")
                count += 1
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


# --- reading ----------------------------------------------------------------------------


def _csv_rows(path: Path, start_offset: int) -> Iterator[tuple[int, int, Mapping[str, object]]]:
    with _open_text(path) as lines:
        header = lines.readline().rstrip("\r\n")
        names = [name.strip() for name in header.split(",")]
        _check_columns(path, names)
        offset = -1
        for line_no, raw in enumerate(lines, start=2):
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            offset += 1
            if offset < start_offset:
                continue
            fields = text.split(",")
            if len(fields) != len(names):
                raise TradesFileError(path, line_no, "row",
                                      f"expected {len(names)} comma-separated columns, got {len(fields)}")
            yield offset, line_no, dict(zip(names, fields, strict=True))


def _jsonl_rows(path: Path, start_offset: int) -> Iterator[tuple[int, int, Mapping[str, object]]]:
    with _open_text(path) as lines:
        offset = -1
        for line_no, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            offset += 1
            if offset < start_offset:
                continue
            try:
                row = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
            except ValueError as exc:
                raise TradesFileError(path, line_no, "line", f"not a JSON object: {exc}") from exc
            if not isinstance(row, dict):
                raise TradesFileError(path, line_no, "line", f"expected a JSON object, got {type(row).__name__}")
            _check_columns(path, list(row), line_no=line_no)
            yield offset, line_no, row


def _check_columns(path: Path, names: list[str], *, line_no: int = 1) -> None:
    where = "header" if line_no == 1 and not is_jsonl(path) else "keys"
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise TradesFileError(path, line_no, where,
                              f"unknown column(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(COLUMNS)}")
    missing = [n for n in _REQUIRED if n not in names]
    if missing:
        raise TradesFileError(path, line_no, where, f"missing column(s) {', '.join(map(repr, missing))} of a trade"
                              " file (market, ts_ms or timestamp, price, volume, side, optional seq)")
    has_ms, has_iso = "ts_ms" in names, "timestamp" in names
    if has_ms == has_iso:
        problem = "has both 'ts_ms' and 'timestamp'" if has_ms else "needs 'ts_ms' or 'timestamp'"
        raise TradesFileError(path, line_no, where, f"{problem}; give exactly one trade time column")
    if len(set(names)) != len(names):
        raise TradesFileError(path, line_no, where, "a column is named twice")


def _trade(path: Path, line_no: int, offset: int, row: Mapping[str, object]) -> Trade:
    market = row["market"]
    market = market.strip() if isinstance(market, str) else market
    problem = rules.market_id_problem(market)
    if problem is not None:
        raise TradesFileError(path, line_no, "market", problem)
    assert isinstance(market, str)  # market_id_problem said so
    ts_ms = _ts_ms(path, line_no, row)
    price = _positive(path, line_no, "price", row["price"])
    volume = _positive(path, line_no, "volume", row["volume"])
    side = _SIDES.get(str(row["side"]).strip().upper())
    if side is None or isinstance(row["side"], bool):
        raise TradesFileError(path, line_no, "side", f"expected BID or ASK (or buy/sell), got {row['side']!r}")
    seq = offset if row.get("seq") in (None, "") else _integer(path, line_no, "seq", row["seq"])
    return Trade(market=market, ts_ms=ts_ms, price=price, volume=volume, side=side, seq=seq,
                 source=SOURCE, offset=offset)


def _ts_ms(path: Path, line_no: int, row: Mapping[str, object]) -> int:
    column = "ts_ms" if "ts_ms" in row else "timestamp"
    ts_ms = _integer(path, line_no, "ts_ms", row["ts_ms"]) if column == "ts_ms" else _iso_ms(path, line_no, row)
    problem = rules.epoch_ms_problem(ts_ms)
    if problem is not None:
        if column == "timestamp":
            problem = f"{row['timestamp']!r} is not a plausible trade time (2009-01-01 to 2100-01-01)"
        raise TradesFileError(path, line_no, column, problem)
    return ts_ms


def _iso_ms(path: Path, line_no: int, row: Mapping[str, object]) -> int:
    raw = row["timestamp"]
    problem = "expected an ISO 8601 time, e.g. 2024-08-24T22:28:00.123Z (no offset: UTC)"
    if not isinstance(raw, str):
        raise TradesFileError(path, line_no, "timestamp", f"{problem}, got {_shown(raw)}")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise TradesFileError(path, line_no, "timestamp", f"{problem}, got {_shown(raw)}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def _shown(raw: object, limit: int = 40) -> str:
    """``raw`` as an error message shows it: its repr, cut in the middle when long (a 5,000-digit value
    makes a useless message)."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]} ({len(text)} characters)"


def _integer(path: Path, line_no: int, column: str, raw: object) -> int:
    text = raw.strip() if isinstance(raw, str) else ""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif text.isascii() and text.isdigit() and len(text) <= _MAX_INT_DIGITS:  # '²'.isdigit() is True; int('²') fails
        value = int(text)
    else:
        raise TradesFileError(path, line_no, column, f"expected a whole number >= 0, got {_shown(raw)}")
    if value < 0:
        raise TradesFileError(path, line_no, column, f"expected a whole number >= 0, got {_shown(raw)}")
    return value


def _positive(path: Path, line_no: int, column: str, raw: object) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise TradesFileError(path, line_no, column, f"expected a decimal number, got {_shown(raw)}")
    if isinstance(raw, str) and (len(raw) > _MAX_NUMBER_CHARS or not raw.isascii()):
        raise TradesFileError(path, line_no, column, f"not a number: {_excerpt(raw)!r}")
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except (InvalidOperation, ValueError) as exc:  # ValueError: an int of more than 4,300 digits (JSON)
        raise TradesFileError(path, line_no, column, f"not a number: {_excerpt(str(raw))!r}") from exc
    if not value.is_finite() or value <= 0:
        raise TradesFileError(path, line_no, column, f"must be a finite number > 0, got {_shown(raw)}")
    problem = rules.price_problem(value) if column == "price" else rules.volume_problem(value)
    if problem is not None:
        raise TradesFileError(path, line_no, column, problem)
    return value


def _excerpt(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:40]}…"


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _plain(value: Decimal) -> str:
    """A decimal in plain notation (never ``1E-8``)."""
    return format(value, "f")


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            yield handle
    else:
        with path.open("r", encoding="utf-8", newline="") as handle:
            yield handle


@contextmanager
def open_for_writing(path: Path, *, gz: bool) -> Iterator[IO[str]]:
    """A text file for writing, gzip-compressed when ``gz`` (with no time stamp: same input, same bytes)."""
    if gz:
        with path.open("wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as packed, \
                io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as handle:
            yield handle
    else:
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            yield handle
