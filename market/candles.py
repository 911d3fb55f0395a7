"""Trades derived from candles: real KRW-BTC 1-minute candles expanded into synthetic trades.

No public tick-level KRW-BTC recording exists (see ``data/upbit/PROVENANCE.md``); what we have
are **real** 1-minute OHLCV candles. This module turns each candle into a small, fully
**deterministic** trade sequence (``source=TradeSource.CANDLES``) so the sandbox can replay a year
of KRW-BTC prices through the same trade → bar → strategy path as live data. The trades are
**synthetic**; only the candles they come from are real.

Expansion of one candle (minute starting at ``T``, values ``O H L C V``):

====  ========  =====================================  =======================================
 k    time      price                                  volume
====  ========  =====================================  =======================================
 0    T + 0 s   ``O``                                  ``q``
 1    T + 15 s  ``L`` if ``C >= O`` else ``H``         ``q``
 2    T + 30 s  ``H`` if ``C >= O`` else ``L``         ``q``
 3    T + 45 s  ``C``                                  ``V - 3q``
====  ========  =====================================  =======================================

- The extremes come in the order the candle implies: open → low → high → close for a candle that
  closes at or above its open, open → high → low → close otherwise. So the first trade is the
  open, the last the close, and the max/min of the four are the high/low: the OHLC of the trades
  of each minute reproduces the candle exactly.
- ``q = floor(V / 4)`` to 8 decimal places (Upbit's volume precision); the last trade takes the
  remainder, so the four volumes are 8-decimal ``Decimal`` values summing exactly to ``V``.
- Side (taker): the first trade is ``BID`` if ``C >= O`` else ``ASK``; after that an up-tick is
  ``BID``, a down-tick ``ASK``, and an unchanged price keeps the previous side.
- ``seq`` = ``ts_ms * 1000 + k`` (Upbit's own ``sequential_id`` has this shape); unique and
  increasing.
- ``offset`` = ``4 * i + k`` for the candle on data row ``i`` (0-based, header excluded), so
  offsets are contiguous and a trade's offset says exactly where to resume.

The CSV has a header ``timestamp,open,high,low,close,volume``; ``timestamp`` is the candle open as
a naive ``YYYY-MM-DD HH:MM:SS`` in **UTC**, prices are KRW, volume is BTC. The file may be
gzip-compressed (``.gz``) and may use CRLF line ends. Timestamps must strictly increase and lie
in 2009..2100; prices and volumes must be plausible (``exchange.rules``: ``1E+400000`` is not a
price). A bad header says which columns are missing or unknown; a bad row raises
:class:`CandleError` naming file, line and column. Everything is streamed: nothing
holds more than one candle's trades at a time.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Final

from model.market import Side, Trade, TradeSource, valid_trade
from exchange import rules

__all__ = [
    "CANDLE_COLUMNS",
    "TRADES_PER_CANDLE",
    "TRADE_SECONDS",
    "Candle",
    "CandleError",
    "count_trades",
    "expand_candle",
    "read_candles",
    "read_trades",
]

CANDLE_COLUMNS: Final = ("timestamp", "open", "high", "low", "close", "volume")
#: Trades synthesised per candle, and the second of the minute each one is placed at.
TRADES_PER_CANDLE: Final = 4
TRADE_SECONDS: Final = (0, 15, 30, 45)

_HEADER: Final = ",".join(CANDLE_COLUMNS)
_EPOCH: Final = datetime(1970, 1, 1)  # noqa: DTZ001 -- naive UTC, like the file's timestamps
_TIMESTAMP_LEN: Final = len("YYYY-MM-DD HH:MM:SS")
_MINUTE_MS: Final = 60_000
_EIGHT_DP: Final = Decimal("0.00000001")
# Explicit context: results never depend on a thread's (possibly altered) decimal context.
_CTX: Final = Context(prec=34, rounding=ROUND_DOWN)
_THREE: Final = Decimal(3)
_FOUR: Final = Decimal(4)
_SOURCE: Final = TradeSource.CANDLES
_MAX_NUMBER_CHARS: Final = 100  # a price or volume written longer than this is not one
_MAX_PLAIN_ROW: Final = 200  # rows longer than this take the field-by-field path (which names the field)
_Row = tuple[int, int, Decimal, Decimal, Decimal, Decimal, Decimal]  # index, ts_ms, open, high, low, close, volume


class CandleError(ValueError):
    """A candle file has a bad header or row; names file, 1-based line and column."""

    def __init__(self, path: Path, line_no: int, column: str, problem: str) -> None:
        self.path = path
        self.line_no = line_no
        self.column = column
        self.problem = problem
        super().__init__(f"{path}:{line_no}: column {column!r}: {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle:
    """One real 1-minute candle as read from the file."""

    index: int  # 0-based data row (header excluded): its trades have offsets 4*index .. 4*index+3
    ts_ms: int  # minute open, epoch milliseconds UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def read_candles(
    path: str | Path,
    *,
    skip_rows: int = 0,
    from_ms: int | None = None,
    until_ms: int | None = None,
) -> Iterator[Candle]:
    """Yield the candles of a CSV(.gz) file in file order, validated.

    Args:
        path: the candle file.
        skip_rows: data rows to skip without parsing them (cheap resume).
        from_ms: skip, without parsing, candles whose minute ends at or before this time.
        until_ms: stop before the first candle that opens at or after this time.

    Raises:
        CandleError: a bad header or row (rows skipped unparsed are not validated).
        OSError: the file cannot be read (``gzip.BadGzipFile`` included).

    """
    if skip_rows < 0:
        raise ValueError(f"skip_rows must not be negative, got {skip_rows}")
    for index, ts_ms, o, h, lo, c, v in _rows(Path(path), skip_rows, from_ms, until_ms):
        yield Candle(index=index, ts_ms=ts_ms, open=o, high=h, low=lo, close=c, volume=v)


def _rows(path: Path, skip_rows: int, from_ms: int | None, until_ms: int | None) -> Iterator[_Row]:
    """:func:`read_candles` as plain tuples ``(index, ts_ms, open, high, low, close, volume)``."""
    # Rows are sorted and minute-aligned: a row whose text sorts before the minute containing
    # ``from_ms`` ends before it, so it can be skipped without parsing.
    from_text = _minute_text(from_ms) if from_ms is not None else None
    prev_ts = -1
    with _open_text(path) as lines:
        header = lines.readline()
        if header.rstrip("\r\n") != _HEADER:
            raise CandleError(path, 1, "header", header_problem(header))
        for index, raw in enumerate(lines):
            if index < skip_rows:
                continue
            if from_text is not None and raw[:_TIMESTAMP_LEN] < from_text:
                continue
            line_no = index + 2
            row = _parse_row(path, line_no, index, raw)
            ts_ms = row[1]
            if ts_ms <= prev_ts:
                raise CandleError(
                    path, line_no, "timestamp", "timestamps must strictly increase (previous row is not earlier)"
                )
            prev_ts = ts_ms
            if until_ms is not None and ts_ms >= until_ms:
                return
            yield row


def expand_candle(candle: Candle, *, market: str) -> tuple[Trade, Trade, Trade, Trade]:
    """Return the four synthetic trades of one candle (see the module docstring for the scheme)."""
    return _expand(candle.index, candle.ts_ms, candle.open, candle.high, candle.low, candle.close, candle.volume,
                   market)


def _expand(index: int, t0: int, o: Decimal, h: Decimal, lo: Decimal, c: Decimal, v: Decimal,
            market: str) -> tuple[Trade, Trade, Trade, Trade]:
    rising = c >= o
    p1, p2 = (lo, h) if rising else (h, lo)
    q = _CTX.divide(v, _FOUR).quantize(_EIGHT_DP, rounding=ROUND_DOWN, context=_CTX)
    last_volume = _CTX.subtract(v, _CTX.multiply(q, _THREE))
    s0 = Side.BID if rising else Side.ASK
    s1 = _tick_side(o, p1, s0)
    s2 = _tick_side(p1, p2, s1)
    s3 = _tick_side(p2, c, s2)
    base = index * TRADES_PER_CANDLE
    src = _SOURCE
    # the row was validated (prices > 0, volume > 0, so q >= 0 and the last volume > 0): no checks again
    return (
        valid_trade(market, t0, o, q, s0, t0 * 1000, src, base),
        valid_trade(market, t0 + 15_000, p1, q, s1, (t0 + 15_000) * 1000 + 1, src, base + 1),
        valid_trade(market, t0 + 30_000, p2, q, s2, (t0 + 30_000) * 1000 + 2, src, base + 2),
        valid_trade(market, t0 + 45_000, c, last_volume, s3, (t0 + 45_000) * 1000 + 3, src, base + 3),
    )


def read_trades(
    path: str | Path,
    *,
    market: str = "KRW-BTC",
    start_offset: int = 0,
    from_ms: int | None = None,
    until_ms: int | None = None,
) -> Iterator[Trade]:
    """Stream the candle-derived trades of a candle file, optionally from an offset and a window.

    Args:
        path: the candle file.
        market: the market code the file holds (the file itself does not say).
        start_offset: first trade offset to yield; earlier rows are skipped unparsed.
        from_ms: yield only trades at or after this time (epoch ms UTC).
        until_ms: yield only trades before this time (epoch ms UTC).

    Raises:
        CandleError: a bad header or row.

    """
    if start_offset < 0:
        raise ValueError(f"start_offset must not be negative, got {start_offset}")
    skip_rows = start_offset // TRADES_PER_CANDLE
    last_second_ms = TRADE_SECONDS[-1] * 1000
    for index, ts_ms, o, h, lo, c, v in _rows(Path(path), skip_rows, from_ms, until_ms):
        trades = _expand(index, ts_ms, o, h, lo, c, v, market)
        if (index * TRADES_PER_CANDLE >= start_offset and (from_ms is None or ts_ms >= from_ms)
                and (until_ms is None or ts_ms + last_second_ms < until_ms)):
            yield from trades  # the whole candle is wanted (all but the edges of a window)
            continue
        for trade in trades:
            if trade.offset < start_offset or (from_ms is not None and trade.ts_ms < from_ms):
                continue
            if until_ms is not None and trade.ts_ms >= until_ms:
                return
            yield trade


def count_trades(
    path: str | Path,
    *,
    start_offset: int = 0,
    from_ms: int | None = None,
    until_ms: int | None = None,
) -> int:
    """Count what :func:`read_trades` would yield, without building trades or parsing prices.

    Only the timestamp column is read (and only when a time window is given), so this is a
    single decompression pass over the file. Rows are not validated.
    """
    path = Path(path)
    total = 0
    with _open_text(path) as lines:
        lines.readline()  # header
        for index, raw in enumerate(lines):
            first = index * TRADES_PER_CANDLE
            if first + TRADES_PER_CANDLE <= start_offset:
                continue
            if from_ms is None and until_ms is None:
                total += TRADES_PER_CANDLE - max(0, start_offset - first)
                continue
            ts_ms = _parse_ts(path, index + 2, raw[:_TIMESTAMP_LEN])
            if until_ms is not None and ts_ms >= until_ms:
                break
            for k, second in enumerate(TRADE_SECONDS):
                t = ts_ms + second * 1000
                if (
                    first + k >= start_offset
                    and (from_ms is None or t >= from_ms)
                    and (until_ms is None or t < until_ms)
                ):
                    total += 1
    return total


# --- parsing ----------------------------------------------------------------------------


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            yield handle
    else:
        with path.open("r", encoding="utf-8", newline="") as handle:
            yield handle


def _parse_row(path: Path, line_no: int, index: int, raw: str) -> _Row:
    fields = raw.rstrip("\r\n").split(",")
    if len(fields) != len(CANDLE_COLUMNS):
        raise CandleError(
            path, line_no, "row", f"expected {len(CANDLE_COLUMNS)} comma-separated columns, got {len(fields)}"
        )
    ts_ms = _parse_ts(path, line_no, fields[0])
    _ts, fo, fh, fl, fc, fv = fields
    try:  # the usual row, checked in one go; anything unusual is re-checked field by field below
        o, h, lo, c, v = Decimal(fo), Decimal(fh), Decimal(fl), Decimal(fc), Decimal(fv)
    except InvalidOperation:
        pass
    else:
        if (o.is_finite() and h.is_finite() and lo.is_finite() and c.is_finite() and v.is_finite()
                and fo == fo.strip() and fh == fh.strip() and fl == fl.strip() and fc == fc.strip() and fv == fv.strip()
                and o > 0 and h > 0 and lo > 0 and c > 0 and v > 0 and lo <= o <= h and lo <= c <= h
                and rules.MIN_PRICE <= lo and h <= rules.MAX_PRICE and rules.MIN_VOLUME <= v <= rules.MAX_VOLUME
                and len(raw) <= _MAX_PLAIN_ROW):
            return index, ts_ms, o, h, lo, c, v
    o = _parse_price(path, line_no, "open", fo)
    h = _parse_price(path, line_no, "high", fh)
    lo = _parse_price(path, line_no, "low", fl)
    c = _parse_price(path, line_no, "close", fc)
    v = _parse_decimal(path, line_no, "volume", fv)
    if v <= 0:
        raise CandleError(path, line_no, "volume", f"must be positive, got {fv!r}")
    problem = rules.volume_problem(v)
    if problem is not None:
        raise CandleError(path, line_no, "volume", problem)
    if lo > h:
        raise CandleError(path, line_no, "low", f"low {lo} is above high {h}")
    if not lo <= o <= h:
        raise CandleError(path, line_no, "open", f"open {o} is outside [low {lo}, high {h}]")
    if not lo <= c <= h:
        raise CandleError(path, line_no, "close", f"close {c} is outside [low {lo}, high {h}]")
    return index, ts_ms, o, h, lo, c, v


def _parse_ts(path: Path, line_no: int, text: str) -> int:
    problem = "expected a UTC minute 'YYYY-MM-DD HH:MM:00'"
    if len(text) != _TIMESTAMP_LEN or text[10] != " ":
        raise CandleError(path, line_no, "timestamp", f"{problem}, got {text!r}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CandleError(path, line_no, "timestamp", f"{problem}, got {text!r}") from exc
    if moment.second or moment.microsecond:
        raise CandleError(path, line_no, "timestamp", f"candle does not open on a minute: {text!r}")
    ts_ms = int((moment - _EPOCH).total_seconds()) * 1000
    if rules.epoch_ms_problem(ts_ms) is not None:
        raise CandleError(path, line_no, "timestamp", f"{text!r} is not a plausible candle time (2009 to 2100)")
    return ts_ms


def _parse_decimal(path: Path, line_no: int, column: str, text: str) -> Decimal:
    if len(text) > _MAX_NUMBER_CHARS:
        raise CandleError(path, line_no, column, f"not a number: {text[:40]!r}… ({len(text)} characters)")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise CandleError(path, line_no, column, f"not a number: {text!r}") from exc
    if not value.is_finite() or text != text.strip():
        raise CandleError(path, line_no, column, f"not a finite number: {text!r}")
    return value


def _parse_price(path: Path, line_no: int, column: str, text: str) -> Decimal:
    value = _parse_decimal(path, line_no, column, text)
    if value <= 0:
        raise CandleError(path, line_no, column, f"price must be positive, got {text!r}")
    problem = rules.price_problem(value)
    if problem is not None:
        raise CandleError(path, line_no, column, problem)
    return value


def header_problem(header: str) -> str:
    """What is wrong with a candle file's header line: which columns are missing, unknown or out of order."""
    text = header.rstrip("\r\n")
    names = [name.strip() for name in text.split(",")]
    missing = [c for c in CANDLE_COLUMNS if c not in names]
    unknown = [n for n in names if n not in CANDLE_COLUMNS]
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
    if unknown:
        parts.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
    if not parts:
        parts.append("the columns are out of order or spaced")
    return f"{'; '.join(parts)}: a candle file's header is exactly {_HEADER!r}, got {_excerpt(text)!r}"


def _excerpt(text: str) -> str:
    return text if len(text) <= 120 else f"{text[:120]}…"


def _minute_text(ts_ms: int) -> str:
    minute = _EPOCH + timedelta(minutes=ts_ms // _MINUTE_MS)
    return minute.strftime("%Y-%m-%d %H:%M:%S")


def _tick_side(prev: Decimal, price: Decimal, prev_side: Side) -> Side:
    if price > prev:
        return Side.BID
    if price < prev:
        return Side.ASK
    return prev_side
