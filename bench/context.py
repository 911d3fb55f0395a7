"""What every benchmark receives: the database server, the process launcher, how many runs."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.database import Server
from bench.system import Launcher
from market.recording import CANDLES_KRW_BTC_1M, Recording

CANDLES = CANDLES_KRW_BTC_1M
MAX_GAP_S = 5.0  # REPLAY_MAX_GAP_S's default: every benchmarked run uses it


@dataclass(slots=True, kw_only=True)
class Context:
    server: Server
    launcher: Launcher
    runs: int
    quick: bool
    workdir: Path
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        """Progress on stderr (the table goes to stdout at the end)."""
        print(f"[bench {time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """A half-open UTC window of the candle recording (``None``: its start / its end)."""

    start: str | None = None
    until: str | None = None

    def args(self) -> list[str]:
        out = []
        if self.start is not None:
            out += ["--from", self.start]
        if self.until is not None:
            out += ["--until", self.until]
        return out

    def recording(self) -> Recording:
        return Recording.open(CANDLES).between(_utc(self.start), _utc(self.until))

    def describe(self) -> str:
        if self.start is None and self.until is None:
            return "the whole file"
        return f"{self.start or 'start'} → {self.until or 'end'} (UTC)"


def _utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)
