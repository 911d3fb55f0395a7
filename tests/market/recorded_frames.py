"""Test helpers: the recorded frames of a capture, read independently of ``market.capture``."""

from __future__ import annotations

import re
from pathlib import Path

_FRAME_LINE = re.compile(rb"^[0-9.]+: b'(.*)'$")


def raw_frames(path: Path) -> list[bytes]:
    """Every recorded frame of a capture (no escapes occur in the shipped files)."""
    frames = []
    for line in path.read_bytes().splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            frames.append(match.group(1))
    return frames


def raw_trade_frames(path: Path) -> list[bytes]:
    """The trade frames of a capture (SIMPLE format), in file order."""
    return [f for f in raw_frames(path) if f.startswith(b'{"ty":"trade"')]
