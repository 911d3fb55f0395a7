"""The progress bar of a backtest: tqdm, fed by the root's ``progress`` hook with the feed's offset."""

from __future__ import annotations

from typing import TextIO

from tqdm import tqdm


class FeedProgress:
    """A tqdm bar of trades replayed, fed with the replay feed's last delivered offset.

    Offsets are positions in the whole file; the bar counts the trades of the window, so an
    offset is mapped linearly from ``[first_offset, last_offset]`` onto ``[1, total]`` (exact for
    candle files, whose offsets in a window are contiguous; close enough for a filtered capture).
    The bar never moves backwards (a restarted feed reports -1 until its first batch). Disabled,
    it draws nothing (not a terminal, or ``--quiet``).
    """

    def __init__(self, *, total: int, first_offset: int, last_offset: int, enabled: bool, stream: TextIO) -> None:
        self.total = total
        self.first = first_offset
        self.span = max(1, last_offset - first_offset + 1)
        self.n = 0  # trades shown as replayed
        self.bar = tqdm(total=total, desc="replaying", unit=" trades", unit_scale=True, dynamic_ncols=True,
                        mininterval=0.25, smoothing=0.05, disable=not enabled, file=stream, leave=True)

    def done(self, offset: int) -> int:
        """Trades of the window replayed once the feed has delivered ``offset``."""
        if offset < self.first:
            return 0
        return min(self.total, (offset - self.first + 1) * self.total // self.span)

    def __call__(self, offset: int) -> None:
        done = self.done(offset)
        if done > self.n:
            self.bar.update(done - self.n)
            self.n = done

    def close(self) -> None:
        self.bar.close()
