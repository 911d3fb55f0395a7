"""Importers: Upbit REST responses, saved as the API returns them, into files the replay reads.

- :func:`import_candles`: ``GET /v1/candles/minutes/1`` responses (JSON arrays of candle
  objects, newest first) → our candle CSV (``timestamp,open,high,low,close,volume``, oldest
  first, see :mod:`market.candles`). A candle CSV has no market column, so the replay takes the
  market from the file name: the output must be named ``<market>-1m-….csv[.gz]`` in lower case
  (``krw-eth-1m-candles.csv``) unless the candles are KRW-BTC.
- :func:`import_ticks`: ``GET /v1/trades/ticks`` responses (arrays of trade objects, newest
  first) → a trade file (:mod:`market.trades_file`; CSV, or JSON Lines for ``.jsonl``), oldest
  first, ``seq`` = Upbit's ``sequential_id``.

Each input file holds one response (a JSON array), or several: an array of arrays, or one array
per line (pages appended as they were fetched). Pages may overlap: duplicates are dropped (a
candle fetched twice keeps the copy with the later ``timestamp``, i.e. the more complete one;
a trade is identified by market and ``sequential_id``). Numbers are read exactly as written
(``0.1`` stays ``0.1``). Anything else is an :class:`UpbitImportError` naming the file, the
element and the field. Outputs are written whole or not at all, and the same inputs always give
the same bytes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from model.market import Side, Trade
from exchange import rules
from market.candles import CANDLE_COLUMNS
from market.recording import candle_market_from_name
from market.trades_file import SOURCE, open_for_writing, write_trades

__all__ = ["CandleImport", "TickImport", "UpbitImportError", "import_candles", "import_ticks"]

_CANDLE_FIELDS = ("market", "candle_date_time_utc", "opening_price", "high_price", "low_price", "trade_price",
                  "candle_acc_trade_volume", "timestamp")
_TICK_FIELDS = ("market", "timestamp", "trade_price", "trade_volume", "ask_bid", "sequential_id")
_SIDES = {"BID": Side.BID, "ASK": Side.ASK}


class UpbitImportError(ValueError):
    """An input is not what the Upbit API returns, or the output cannot be written; says where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleImport:
    """What :func:`import_candles` wrote."""

    market: str
    candles: int
    first: str  # UTC minute of the oldest candle
    last: str
    duplicates: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TickImport:
    """What :func:`import_ticks` wrote."""

    markets: tuple[str, ...]
    trades: int
    first_ms: int
    last_ms: int
    duplicates: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Candle:
    minute: str  # "YYYY-MM-DD HH:MM:SS"
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    last_tick_ms: int


def import_candles(inputs: Sequence[Path], out: Path, *, force: bool = False) -> CandleImport:
    """Convert saved ``/v1/candles/minutes/1`` responses into one candle CSV at ``out``."""
    _check_out(inputs, out, force=force)
    markets: set[str] = set()
    by_minute: dict[str, _Candle] = {}
    duplicates = 0
    for where, obj in _elements(inputs):
        market = _text(obj, "market", where)
        markets.add(market)
        if len(markets) > 1:
            raise UpbitImportError(f"{where}: candles of several markets ({', '.join(sorted(markets))}); a candle"
                                   " file holds one market: import each market into its own file")
        candle = _candle(obj, where)
        seen = by_minute.get(candle.minute)
        if seen is not None:
            duplicates += 1
            if candle.last_tick_ms < seen.last_tick_ms:
                continue
        by_minute[candle.minute] = candle
    if not by_minute:
        raise UpbitImportError(f"no candles in {', '.join(map(str, inputs))}")
    market = markets.pop()
    named = candle_market_from_name(out)
    if named != market:
        raise UpbitImportError(
            f"{out.name}: these are {market} candles but a candle file's name says its market ({out.name!r} reads"
            f" as {named}); name it like {market.lower()}-1m-candles.csv")
    rows = [by_minute[m] for m in sorted(by_minute)]
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open_for_writing(tmp, gz=out.name.lower().endswith(".gz")) as fh:
            fh.write(",".join(CANDLE_COLUMNS) + "\n")
            for c in rows:
                fh.write(",".join((c.minute, *(_plain(v) for v in (c.open, c.high, c.low, c.close, c.volume))))
                         + "\n")
        tmp.replace(out)
    except OSError as exc:
        raise UpbitImportError(f"cannot write {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return CandleImport(market=market, candles=len(rows), first=rows[0].minute, last=rows[-1].minute,
                        duplicates=duplicates)


def import_ticks(inputs: Sequence[Path], out: Path, *, force: bool = False) -> TickImport:
    """Convert saved ``/v1/trades/ticks`` responses into one trade file at ``out``."""
    _check_out(inputs, out, force=force)
    trades: dict[tuple[str, int], Trade] = {}
    duplicates = 0
    for where, obj in _elements(inputs):
        trade = _tick(obj, where)
        key = (trade.market, trade.seq)
        seen = trades.get(key)
        if seen is not None:
            if seen != trade:
                raise UpbitImportError(f"{where}: sequential_id {trade.seq} of {trade.market} appears twice with"
                                       " different contents")
            duplicates += 1
            continue
        trades[key] = trade
    if not trades:
        raise UpbitImportError(f"no trades in {', '.join(map(str, inputs))}")
    ordered = sorted(trades.values(), key=lambda t: (t.ts_ms, t.market, t.seq))
    try:
        count = write_trades(out, ordered)
    except OSError as exc:
        raise UpbitImportError(f"cannot write {out}: {exc}") from exc
    return TickImport(markets=tuple(sorted({t.market for t in ordered})), trades=count, first_ms=ordered[0].ts_ms,
                      last_ms=ordered[-1].ts_ms, duplicates=duplicates)


# --- reading the responses ------------------------------------------------------------------


def _check_out(inputs: Sequence[Path], out: Path, *, force: bool) -> None:
    if not inputs:
        raise UpbitImportError("no input files given")
    for path in inputs:
        if not path.is_file():
            raise UpbitImportError(f"{path}: no such file")
        if path.resolve() == out.resolve():
            raise UpbitImportError(f"{out}: the output would overwrite an input")
    if out.exists() and not force:
        raise UpbitImportError(f"{out} exists; choose another output or pass --force to replace it")
    if not out.parent.is_dir():
        raise UpbitImportError(f"{out.parent}: no such directory")


def _elements(inputs: Sequence[Path]) -> Iterator[tuple[str, Mapping[str, object]]]:
    """Every object of every response, with where it is (file, line, element index)."""
    for path in inputs:
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise UpbitImportError(f"{path}: cannot read: {exc}") from exc
        try:
            documents = [(str(path), _loads(text))]
        except ValueError as whole_error:
            documents = []
            for line_no, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    documents.append((f"{path}:{line_no}", _loads(line)))
                except ValueError:
                    raise UpbitImportError(f"{path}: not JSON as the API returns it: {whole_error}") from whole_error
        for where, document in documents:
            yield from _objects(document, where)


def _objects(document: object, where: str) -> Iterator[tuple[str, Mapping[str, object]]]:
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict):
            raise UpbitImportError(f"{where}: an Upbit error response, not data: {error.get('name')}:"
                                   f" {error.get('message')}")
        yield where, document
        return
    if not isinstance(document, list):
        raise UpbitImportError(f"{where}: expected a JSON array of objects, got {type(document).__name__}")
    for index, item in enumerate(document):
        if isinstance(item, list):
            yield from _objects(item, f"{where}[{index}]")
        elif isinstance(item, dict):
            yield f"{where}[{index}]", item
        else:
            raise UpbitImportError(f"{where}[{index}]: expected an object, got {type(item).__name__}")


def _loads(text: str) -> object:
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _candle(obj: Mapping[str, object], where: str) -> _Candle:
    for name in _CANDLE_FIELDS:
        if name not in obj:
            raise UpbitImportError(f"{where}: missing {name!r}; is this a /v1/candles/minutes/1 response?")
    unit = obj.get("unit")
    if unit is not None and unit != 1:
        raise UpbitImportError(f"{where}: a {unit}-minute candle; only 1-minute candles (unit 1) can be replayed")
    stamp = _text(obj, "candle_date_time_utc", where)
    try:
        minute = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise UpbitImportError(f"{where}: 'candle_date_time_utc' is not a time: {stamp!r}") from exc
    if minute.tzinfo is not None or minute.second or minute.microsecond:
        raise UpbitImportError(f"{where}: 'candle_date_time_utc' is not a UTC minute: {stamp!r}")
    if rules.epoch_ms_problem(int(minute.replace(tzinfo=UTC).timestamp()) * 1000) is not None:
        raise UpbitImportError(f"{where}: 'candle_date_time_utc' {stamp!r} is not a plausible candle time (2009 to 2100)")
    o, h, lo, c = (_number(obj, n, where) for n in ("opening_price", "high_price", "low_price", "trade_price"))
    volume = _number(obj, "candle_acc_trade_volume", where)
    if min(o, h, lo, c) <= 0 or volume <= 0:
        raise UpbitImportError(f"{where}: prices and 'candle_acc_trade_volume' must be > 0")
    for name, value in (("opening_price", o), ("high_price", h), ("low_price", lo), ("trade_price", c)):
        _plausible(where, name, rules.price_problem(value))
    _plausible(where, "candle_acc_trade_volume", rules.volume_problem(volume))
    if not (lo <= o <= h and lo <= c <= h):
        raise UpbitImportError(f"{where}: open {o} and close {c} must lie within low {lo} and high {h}")
    return _Candle(minute=minute.strftime("%Y-%m-%d %H:%M:%S"), open=o, high=h, low=lo, close=c, volume=volume,
                   last_tick_ms=_integer(obj, "timestamp", where))


def _tick(obj: Mapping[str, object], where: str) -> Trade:
    for name in _TICK_FIELDS:
        if name not in obj:
            raise UpbitImportError(f"{where}: missing {name!r}; is this a /v1/trades/ticks response?")
    side = _SIDES.get(str(obj["ask_bid"]))
    if side is None:
        raise UpbitImportError(f"{where}: 'ask_bid' must be ASK or BID, got {obj['ask_bid']!r}")
    price, volume = _number(obj, "trade_price", where), _number(obj, "trade_volume", where)
    if price <= 0 or volume <= 0:
        raise UpbitImportError(f"{where}: 'trade_price' and 'trade_volume' must be > 0")
    _plausible(where, "trade_price", rules.price_problem(price))
    _plausible(where, "trade_volume", rules.volume_problem(volume))
    market, ts_ms = _text(obj, "market", where), _integer(obj, "timestamp", where)
    _plausible(where, "market", rules.market_id_problem(market))
    _plausible(where, "timestamp", rules.epoch_ms_problem(ts_ms))
    return Trade(market=market, ts_ms=ts_ms, price=price, volume=volume, side=side,
                 seq=_integer(obj, "sequential_id", where), source=SOURCE)


def _plausible(where: str, name: str, problem: str | None) -> None:
    if problem is not None:
        raise UpbitImportError(f"{where}: {name!r}: {problem}")


def _text(obj: Mapping[str, object], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise UpbitImportError(f"{where}: {name!r} must be a non-empty string, got {value!r}")
    return value


def _number(obj: Mapping[str, object], name: str, where: str) -> Decimal:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise UpbitImportError(f"{where}: {name!r} must be a number, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise UpbitImportError(f"{where}: {name!r} must be a number, got {value!r}") from exc
    if not number.is_finite():
        raise UpbitImportError(f"{where}: {name!r} must be a finite number, got {value!r}")
    return number


def _integer(obj: Mapping[str, object], name: str, where: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UpbitImportError(f"{where}: {name!r} must be a whole number >= 0, got {value!r}")
    return value


def _plain(value: Decimal) -> str:
    return format(value, "f")


def utc_text(ts_ms: int) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS.mmm`` UTC (for messages)."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
