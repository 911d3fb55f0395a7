"""Read cryptofeed raw WebSocket captures: real recorded Upbit frames, replayed as-is.

A capture (cryptofeed's raw-data format, see ``data/upbit/PROVENANCE.md``) is a text file:

- optional header lines: ``configuration: {…}``, ``<url> <-> <connect_ts>`` (connection opened),
  ``<url> <- <ts>: <what we sent>`` (the subscription) and ``<url> -> <ts>: <REST body>``;
  these may recur mid-file (a reconnect), and are skipped;
- one line per received frame: ``<local_recv_unix_seconds>: b'<raw frame>'``, the frame written
  as a Python bytes literal.

:func:`read_frames` yields ``(recv_ts_seconds, frame)`` for every frame line; :func:`read_trades`
decodes them with :mod:`market.frames` and yields the trades (``source=CAPTURE``) with ``offset``
= the 0-based index of the trade among the *trades* of the file, in file (arrival) order. Trades
are never reordered: Upbit delivers some trades after later ones (see the PROVENANCE note on
``sequential_id``), and that quirk is part of what a replay must reproduce.

A line that is none of the above, or a frame that should be a trade but is malformed, raises
:class:`CaptureError` naming the file and line number.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from model.market import Trade, TradeSource
from market.frames import FrameError, UpbitStreamError, decode_trade

__all__ = ["CaptureError", "read_frames", "read_trades"]

_FRAME_LINE: Final = re.compile(r"(\d+(?:\.\d+)?): (b'.*'|b\".*\")")
_HEADER_LINE: Final = re.compile(
    r"configuration: .*"  # cryptofeed's feed configuration
    r"|\S+ <-> \d+(?:\.\d+)?"  # connection opened at <ts>
    r"|\S+ (?:<-|->) \d+(?:\.\d+)?: .*",  # sent by us / REST response received
    re.DOTALL,
)


class CaptureError(ValueError):
    """A capture file has a line that cannot be read; names the file and 1-based line number."""

    def __init__(self, path: Path, line_no: int, problem: str) -> None:
        self.path = path
        self.line_no = line_no
        self.problem = problem
        super().__init__(f"{path}:{line_no}: {problem}")


def read_frames(path: str | Path) -> Iterator[tuple[float, bytes]]:
    """Yield ``(recv_ts_seconds, frame_bytes)`` for every recorded frame of a capture, in order.

    Header lines are skipped; blank lines are ignored. The file is streamed line by line.

    Raises:
        CaptureError: a line is neither a header nor ``<ts>: b'<frame>'``.
        OSError: the file cannot be opened or read.

    """
    for _line_no, recv_ts, frame in _frame_lines(Path(path)):
        yield recv_ts, frame


def read_trades(path: str | Path, *, start_offset: int = 0) -> Iterator[Trade]:
    """Yield the trades of a capture in file order, with ``source=CAPTURE`` and their offset.

    Args:
        path: the capture file.
        start_offset: skip trades whose offset is below this (the frames before are still
            decoded, to count trades; captures are small).

    Raises:
        CaptureError: a bad line, a malformed trade frame or an error frame, with file and line.
        OSError: the file cannot be opened or read.

    """
    if start_offset < 0:
        raise ValueError(f"start_offset must not be negative, got {start_offset}")
    path = Path(path)
    offset = 0
    for line_no, _recv_ts, frame in _frame_lines(path):
        try:
            trade = decode_trade(frame, source=TradeSource.CAPTURE, offset=offset)
        except FrameError as exc:
            raise CaptureError(path, line_no, str(exc)) from exc
        except UpbitStreamError as exc:
            raise CaptureError(path, line_no, f"recorded error frame: {exc}") from exc
        if trade is None:
            continue
        if offset >= start_offset:
            yield trade
        offset += 1


def _frame_lines(path: Path) -> Iterator[tuple[int, float, bytes]]:
    """Yield ``(line_no, recv_ts, frame)`` for the frame lines of ``path``."""
    with path.open("r", encoding="utf-8", newline="") as lines:
        for line_no, raw_line in enumerate(lines, start=1):
            line = raw_line.rstrip("\r\n")
            if not line.strip():
                continue
            match = _FRAME_LINE.fullmatch(line)
            if match is None:
                if _HEADER_LINE.fullmatch(line) is not None:
                    continue
                raise CaptureError(path, line_no, f"not a capture line: {_excerpt(line)}")
            yield line_no, float(match.group(1)), _bytes_literal(path, line_no, match.group(2))


def _bytes_literal(path: Path, line_no: int, literal: str) -> bytes:
    """Turn ``b'…'`` (as written by ``repr(bytes)``) back into the bytes, safely."""
    body = literal[2:-1]
    if "\\" not in body and literal[1] not in body:
        try:
            return body.encode("ascii")  # the common case: printable ASCII, no escapes
        except UnicodeEncodeError as exc:
            raise CaptureError(path, line_no, f"non-ASCII character in bytes literal at {exc.start}") from exc
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError) as exc:
        raise CaptureError(path, line_no, f"malformed bytes literal: {_excerpt(literal)}") from exc
    if not isinstance(value, bytes):
        raise CaptureError(path, line_no, f"frame is not a bytes literal: {_excerpt(literal)}")
    return value


def _excerpt(text: str, limit: int = 120) -> str:
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
