"""Recordings of real Upbit market data, and the pacer that replays them against a wall clock.

:class:`Recording` is one view over the kinds of recorded data the replay understands:

- ``CAPTURE``: real WebSocket frames (cryptofeed captures, :mod:`market.capture`), replayed as
  recorded, out-of-order deliveries included — the shipped captures and ``record``'s output;
- ``CANDLES``: real 1-minute candles expanded into synthetic trades (:mod:`market.candles`). A
  candle file does not say its market: it is taken from the file name (``krw-eth-1m-….csv`` is
  KRW-ETH, see :func:`candle_market_from_name`), KRW-BTC when the name does not say;
- ``TRADES``: a trade file of the user's own, CSV or JSON Lines (:mod:`market.trades_file`).

A recording **streams**: :meth:`Recording.trades` is a generator that holds at most one candle's
(or one frame's) trades at a time, so the 420,800 trades of the candle year never sit in memory
together. Every trade carries its ``offset`` (its 0-based position in the *unfiltered* file), so
a replay can restart cheaply at any offset after a crash (:meth:`Recording.trades` with
``start_offset``: candle rows before it are skipped unparsed). A recording can be restricted to a
half-open UTC window ``[from_ts, until_ts)`` of trade time and to a set of markets; offsets are
unchanged by filtering.

:class:`ReplayPacer` is pure arithmetic: it maps recording time to wall-clock due times for a
given speed, compressing long holes in the recording. It never reads a clock itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Final

from model.market import Trade, TradeSource
from market import candles as candle_source
from market import capture as capture_source
from market import trades_file as trades_source

__all__ = [
    "BUNDLED_DATA_DIR",
    "CANDLES_KRW_BTC_1M",
    "CAPTURE_2021_04_05",
    "CAPTURE_2021_04_17",
    "Recording",
    "RecordingKind",
    "ReplayPacer",
    "candle_market_from_name",
]

#: The recorded data shipped with the product (see ``data/upbit/PROVENANCE.md``).
BUNDLED_DATA_DIR: Final = Path(__file__).resolve().parent.parent / "data" / "upbit"
CANDLES_KRW_BTC_1M: Final = BUNDLED_DATA_DIR / "krw-btc-1m-candles-2024-08-to-2025-08.csv.gz"
CAPTURE_2021_04_17: Final = BUNDLED_DATA_DIR / "upbit-ws-2021-04-17-30s.capture"
CAPTURE_2021_04_05: Final = BUNDLED_DATA_DIR / "upbit-ws-2021-04-05-2min.capture"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_DEFAULT_CANDLE_MARKET: Final = "KRW-BTC"
_CANDLE_NAME: Final = re.compile(r"(krw|btc|usdt)-([a-z0-9]+)-1m")


class RecordingKind(str, Enum):
    """What a recording file holds."""

    CAPTURE = "capture"  # cryptofeed raw WebSocket capture
    CANDLES = "candles"  # 1-minute candle CSV(.gz), expanded into synthetic trades
    TRADES = "trades"  # a trade file: CSV or JSON Lines (market.trades_file)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """A streamed, resumable, sliceable sequence of recorded trades (see the module docstring).

    Build one with :meth:`capture`, :meth:`candles`, :meth:`trades_file` or :meth:`open`; restrict it with
    :meth:`between` and :meth:`only`. Instances are immutable and cheap; nothing is read until
    :meth:`trades` or :meth:`total` is called.
    """

    path: Path
    kind: RecordingKind
    markets: frozenset[str] | None = None  # None: every market in the file
    from_ts: datetime | None = None  # inclusive, timezone-aware
    until_ts: datetime | None = None  # exclusive, timezone-aware
    candle_market: str = "KRW-BTC"  # the market a candle file holds (the file does not say)
    _total_cache: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("from_ts", "until_ts"):
            moment = getattr(self, name)
            if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
                raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment!r}")
        if self.from_ts is not None and self.until_ts is not None and self.from_ts >= self.until_ts:
            raise ValueError(f"empty window: from_ts {self.from_ts} is not before until_ts {self.until_ts}")

    # --- construction -------------------------------------------------------------------

    @classmethod
    def capture(cls, path: str | Path) -> Recording:
        """Open a cryptofeed raw WebSocket capture (real frames, ``source=CAPTURE``)."""
        return cls(path=Path(path), kind=RecordingKind.CAPTURE)

    @classmethod
    def candles(cls, path: str | Path, *, market: str = "KRW-BTC") -> Recording:
        """Open a 1-minute candle CSV(.gz) of ``market``, expanded into trades (``source=CANDLES``)."""
        return cls(path=Path(path), kind=RecordingKind.CANDLES, candle_market=market)

    @classmethod
    def trades_file(cls, path: str | Path) -> Recording:
        """Open a trade file (CSV or JSON Lines, :mod:`market.trades_file`)."""
        return cls(path=Path(path), kind=RecordingKind.TRADES)

    @classmethod
    def open(cls, path: str | Path, *, candle_market: str | None = None) -> Recording:
        """Open ``path`` by its name and header.

        ``.jsonl``/``.ndjson`` (optionally ``.gz``) are trade files; ``.csv``/``.csv.gz`` are
        trade files when their header names ``market``, ``price`` and ``side``, candles
        otherwise (of ``candle_market``, or the market the file name says); anything else is a
        capture.
        """
        path = Path(path)
        if trades_source.is_trades_file(path):
            return cls.trades_file(path)
        if path.name.endswith((".csv", ".csv.gz")):
            return cls.candles(path, market=candle_market or candle_market_from_name(path))
        return cls.capture(path)

    def between(self, from_ts: datetime | None = None, until_ts: datetime | None = None) -> Recording:
        """Return this recording restricted to trades with ``from_ts <= trade time < until_ts``."""
        return replace(self, from_ts=from_ts, until_ts=until_ts)

    def only(self, markets: Iterable[str] | None) -> Recording:
        """Return this recording restricted to ``markets`` (``None``: all markets)."""
        return replace(self, markets=None if markets is None else frozenset(markets))

    # --- reading ------------------------------------------------------------------------

    @property
    def source(self) -> TradeSource:
        """The source every trade of this recording carries."""
        if self.kind is RecordingKind.CANDLES:
            return TradeSource.CANDLES
        return TradeSource.CAPTURE if self.kind is RecordingKind.CAPTURE else trades_source.SOURCE

    def trades(self, start_offset: int = 0) -> Iterator[Trade]:
        """Stream the trades in recording order, starting at the first offset >= ``start_offset``.

        Raises:
            CaptureError, CandleError, TradesFileError: the file has a bad line (file and line named).
            OSError: the file cannot be read.

        """
        if start_offset < 0:
            raise ValueError(f"start_offset must not be negative, got {start_offset}")
        from_ms, until_ms = self._window_ms()
        if self.kind is RecordingKind.CANDLES:
            if self.markets is not None and self.candle_market not in self.markets:
                return
            yield from candle_source.read_trades(
                self.path, market=self.candle_market, start_offset=start_offset, from_ms=from_ms, until_ms=until_ms
            )
            return
        markets = self.markets
        read = capture_source.read_trades if self.kind is RecordingKind.CAPTURE else trades_source.read_trades
        for trade in read(self.path, start_offset=start_offset):
            if markets is not None and trade.market not in markets:
                continue
            if (from_ms is not None and trade.ts_ms < from_ms) or (until_ms is not None and trade.ts_ms >= until_ms):
                continue  # captures are in arrival order, not time order: filter, never stop early
            yield trade

    def batches(self, max_size: int, start_offset: int = 0) -> Iterator[list[Trade]]:
        """Stream the trades as lists of at most ``max_size`` trades (for ``add_many``-style APIs)."""
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        batch: list[Trade] = []
        for trade in self.trades(start_offset):
            batch.append(trade)
            if len(batch) >= max_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def total(self) -> int:
        """How many trades :meth:`trades` yields from offset 0; computed once, then cached.

        Cheap: for candles, one decompression pass reading only timestamps (~0.1 s for the year);
        for captures and trade files, one pass over the file.
        """
        cached = self._total_cache.get("total")
        if cached is not None:
            return cached
        if self.kind is RecordingKind.CANDLES:
            if self.markets is not None and self.candle_market not in self.markets:
                total = 0
            else:
                from_ms, until_ms = self._window_ms()
                total = candle_source.count_trades(self.path, from_ms=from_ms, until_ms=until_ms)
        else:
            total = sum(1 for _ in self.trades())
        self._total_cache["total"] = total
        return total

    def _window_ms(self) -> tuple[int | None, int | None]:
        return _to_ms(self.from_ts), _to_ms(self.until_ts)


def candle_market_from_name(path: str | Path) -> str:
    """The market a candle file's name says (``krw-eth-1m-candles.csv`` → ``KRW-ETH``), else KRW-BTC.

    The name must start with ``<quote>-<base>-1m`` where the quote currency is one of Upbit's
    (KRW, BTC, USDT), as the shipped ``krw-btc-1m-candles-….csv.gz`` does.
    """
    match = _CANDLE_NAME.match(Path(path).name.lower())
    return f"{match[1]}-{match[2]}".upper() if match else _DEFAULT_CANDLE_MARKET


def _to_ms(moment: datetime | None) -> int | None:
    """Exact epoch milliseconds (floor) of an aware datetime, without float rounding."""
    if moment is None:
        return None
    return (moment - _EPOCH) // _ONE_MS


class ReplayPacer:
    """Map recording time to wall-clock due times: ``speed`` times real time, long holes compressed.

    Feed the trades' times **in recording order** to :meth:`due`; it returns the wall-clock time
    (same unit and origin as the ``wall_s`` given to :meth:`start`, e.g. ``time.monotonic()``)
    at which that trade should be delivered:

    - the trade at the anchor (see :meth:`start`) is due at ``wall_s``;
    - each later step of ``d`` seconds of recording time adds ``min(d, max_gap_s) / speed``
      seconds of wall time, so a hole longer than ``max_gap_s`` (e.g. the 801-minute gaps
      between the candle file's 200-minute windows) costs only ``max_gap_s / speed``;
    - a trade whose time is not after the latest one seen (out-of-order delivery) is due with
      the previous trade: due times never go backwards;
    - ``speed=None`` replays as fast as possible: everything is due at ``wall_s``.

    The pacer reads no clock. To resume from an arbitrary trade (after a crash or a pause) call
    :meth:`start` again with that trade's time and the current wall time.
    """

    __slots__ = ("_anchor_wall_s", "_compressed_ms", "_last_ts_ms", "_max_gap_ms", "_speed")

    def __init__(self, *, speed: float | None, max_gap_s: float) -> None:
        """Set the speed and the gap cap; call :meth:`start` before scheduling.

        Args:
            speed: replay speed (1.0 = real time, 60.0 = a minute per second), or ``None`` for max.
            max_gap_s: the longest stretch of recording time replayed at full length; must be >= 0.

        """
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive finite number or None (max), got {speed!r}")
        if not (math.isfinite(max_gap_s) and max_gap_s >= 0):
            raise ValueError(f"max_gap_s must be a finite number >= 0, got {max_gap_s!r}")
        self._speed = speed
        self._max_gap_ms = round(max_gap_s * 1000)
        self._anchor_wall_s: float | None = None
        self._last_ts_ms = 0
        self._compressed_ms = 0  # compressed recording time elapsed since the anchor (exact)

    @property
    def speed(self) -> float | None:
        """The replay speed, ``None`` meaning as fast as possible."""
        return self._speed

    @property
    def replay_time_ms(self) -> int:
        """The latest recording time scheduled so far (the replay clock)."""
        self._require_started()
        return self._last_ts_ms

    def start(self, *, wall_s: float, ts_ms: int) -> None:
        """(Re)anchor: a trade at recording time ``ts_ms`` is due at wall-clock time ``wall_s``."""
        self._anchor_wall_s = wall_s
        self._last_ts_ms = ts_ms
        self._compressed_ms = 0

    def due(self, ts_ms: int) -> float:
        """Return the wall-clock due time of the next trade (recording time ``ts_ms``), in order."""
        anchor = self._require_started()
        step = ts_ms - self._last_ts_ms
        if step > 0:
            self._compressed_ms += min(step, self._max_gap_ms)
            self._last_ts_ms = ts_ms
        if self._speed is None:
            return anchor
        return anchor + self._compressed_ms / 1000.0 / self._speed

    def _require_started(self) -> float:
        if self._anchor_wall_s is None:
            raise RuntimeError("ReplayPacer.start() must be called before scheduling trades")
        return self._anchor_wall_s
