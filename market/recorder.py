"""Recording the live trade stream to a file that the sandbox and backtests replay.

The file is in the cryptofeed raw-capture format that ``market.capture`` reads (the same format
as the real captures shipped in ``data/upbit``): a header line ``<url> <-> <connect time>``, then
one line per received frame, ``<receive time>: b'<the frame's bytes>'``. Frames are written as
received — byte for byte, including ones our decoder would reject — so a recording keeps the
exchange's real quirks. Lines are flushed as they are written: a recorder that is killed loses at
most the frame it was writing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


class RecordingExists(FileExistsError):
    """The output file exists and appending was not asked for."""


class CaptureWriter:
    """Appends received frames to a capture file."""

    def __init__(self, path: Path, *, url: str, append: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        if path.exists() and not append:
            raise RecordingExists(f"{path} exists; choose another --out or pass --append")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._fh: TextIO = path.open("a", encoding="ascii", newline="\n")
        self._fh.write(f"{url} <-> {clock():.6f}\n")
        self._fh.flush()
        self.frames = 0

    def write(self, frame: bytes) -> None:
        """Append one frame with its receive time."""
        self._fh.write(f"{self._clock():.6f}: {frame!r}\n")
        self._fh.flush()
        self.frames += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
