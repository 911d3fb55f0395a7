"""The replay: recorded trades, paced against the wall clock, handed to the simulator one by one.

:class:`Replayer` streams a :class:`~market.recording.Recording` and paces it with
:class:`~market.recording.ReplayPacer` (``speed`` times real time, holes compressed to
``max_gap_s``; ``speed=None`` as fast as possible). In **autoplay** it runs in its own thread
from :meth:`start`; otherwise nothing is replayed until :meth:`advance` is called, which replays
the next trades in the caller's thread (deterministic tests). The trades keep their recorded
timestamps and order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from model.market import Trade
from market.recording import Recording, ReplayPacer

__all__ = ["Replayer"]

log = logging.getLogger("upbit_sim.replay")


class Replayer:
    """Feed a recording's trades to ``publish``, paced (autoplay) or on demand (:meth:`advance`)."""

    def __init__(
        self,
        recording: Recording | None,
        publish: Callable[[Trade], None],
        *,
        speed: float | None,
        max_gap_s: float,
        autoplay: bool,
    ) -> None:
        self._recording = recording
        self._publish = publish
        self._pacer = ReplayPacer(speed=speed, max_gap_s=max_gap_s)
        self._autoplay = autoplay and recording is not None
        self._trades: Iterator[Trade] | None = None
        self._lock = threading.Lock()  # one reader of the recording at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._replayed = 0
        self.finished = threading.Event()  # the recording is exhausted
        self.error: BaseException | None = None  # what stopped the replay thread, if anything
        if recording is None:
            self.finished.set()

    @property
    def replayed(self) -> int:
        """How many recorded trades have been published."""
        with self._lock:
            return self._replayed

    def start(self) -> None:
        if self._autoplay:
            self._thread = threading.Thread(target=self._run, name="upbit-sim-replay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def advance(self, n: int = 1) -> int:
        """Publish the next ``n`` recorded trades now; return how many there were (fewer at the end).

        Raises:
            RuntimeError: the replay is in autoplay (the thread owns the recording).

        """
        if self._autoplay:
            raise RuntimeError("advance() is for a simulator built with autoplay=False")
        done = 0
        with self._lock:
            trades = self._iterator()
            for _ in range(n):
                trade = next(trades, None)
                if trade is None:
                    self.finished.set()
                    break
                self._publish(trade)
                self._replayed += 1
                done += 1
        return done

    def _iterator(self) -> Iterator[Trade]:
        if self._trades is None:
            self._trades = self._recording.trades() if self._recording is not None else iter(())
        return self._trades

    def _run(self) -> None:
        try:
            started = False
            for trade in self._iterator():
                if not started:
                    self._pacer.start(wall_s=time.monotonic(), ts_ms=trade.ts_ms)
                    started = True
                delay = self._pacer.due(trade.ts_ms) - time.monotonic()
                if delay > 0 and self._stop.wait(delay):  # the pacing itself, interruptible
                    return
                if self._stop.is_set():
                    return
                with self._lock:
                    self._publish(trade)
                    self._replayed += 1
            self.finished.set()
        except Exception as exc:  # noqa: BLE001 - a bad recording stops the replay, not the server
            self.error = exc
            log.exception("the replay stopped")
