"""Stop signals (Ctrl-C, SIGTERM) acted on by a thread of their own, never inside the code they interrupt.

Why not ``signal.signal(sig, lambda *_: stop.set())``: CPython runs a Python-level handler in
the main thread, between two bytecodes of whatever that thread was doing. When that thread was
itself inside ``stop.wait()`` at a moment it held the event's internal lock (entering or leaving
a timed wait), ``stop.set()`` waits for that lock forever, on the thread that holds it: the
process ignores Ctrl-C from then on and has to be killed. The same holds for any lock a handler
takes (CPython issue 126434 describes the class). A frozen-then-continued root (SIGSTOP, then
SIGCONT and SIGINT at once) hit exactly this.

``SignalRelay`` takes no lock in signal context. CPython's C-level handler writes the signal's
number to a socket (``signal.set_wakeup_fd``); the Python-level handler does nothing; a relay
thread reads the socket and calls ``on_signal`` like any other thread would. As a bonus the
outcome does not depend on which OS thread the kernel picked for the signal, nor on whether the
main thread is blocked in a wait that signals do not interrupt.

Only the main thread may install it (a ``signal`` module rule), and one process has one wakeup
fd: install one relay per process, for all the signals it handles. Leaving the ``with`` block
puts back the previous handlers and wakeup fd.

``dump_stacks_on(STACKS_SIGNAL)``: ``kill -USR1 <pid>`` writes every thread's stack to the
process's stderr (the log). faulthandler's handler is C code, so it answers even when every
Python thread is stuck: what a process that stopped answering is doing.
"""

from __future__ import annotations

import faulthandler
import io
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from types import FrameType, TracebackType

log = logging.getLogger(__name__)

STACKS_SIGNAL = signal.SIGUSR1
_QUIT = b"\0"  # no signal has number 0: tells the relay thread to end


def dump_stacks_on(signum: signal.Signals = STACKS_SIGNAL) -> None:
    """From now on, ``signum`` writes every thread's stack to stderr (the process goes on)."""
    try:
        faulthandler.register(signum, all_threads=True)
    except (AttributeError, ValueError, io.UnsupportedOperation) as err:  # stderr is no file here
        log.warning("no stack dumps on %s: stderr has no file descriptor (%s)", signum.name, err)


def _nothing_here(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the work happens on the relay thread (see the module text)."""


class SignalRelay:
    """Calls ``on_signal(signum)`` on a relay thread for each of ``signals`` received."""

    def __init__(self, signals: Iterable[signal.Signals], on_signal: Callable[[int], None]) -> None:
        self._signals = tuple(signals)
        self._on_signal = on_signal
        self._previous: dict[signal.Signals, object] = {}
        self._previous_fd = -1
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)  # set_wakeup_fd requires it: the C handler must never block
        self._thread = threading.Thread(target=self._relay, name="signal-relay", daemon=True)

    def __enter__(self) -> SignalRelay:
        self._thread.start()
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for sig in self._signals:
            self._previous[sig] = signal.signal(sig, _nothing_here)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # None (set outside Python) is restored as is
        signal.set_wakeup_fd(self._previous_fd)
        try:
            self._write.send(_QUIT)
        except OSError as err:  # the relay thread may already be gone (its socket closed)
            log.debug("signal relay: could not send the quit byte: %s", err)
        self._thread.join(timeout=5)
        self._write.close()
        self._read.close()

    def _relay(self) -> None:
        while True:
            try:
                data = self._read.recv(64)
            except OSError as err:
                log.error("signal relay stopped reading: %s", err)
                return
            if not data:
                return
            for signum in data:
                if signum == 0:
                    return
                if signum not in self._signals:
                    continue  # another Python-level handler's signal writes to the same fd
                try:
                    self._on_signal(signum)
                except Exception:  # noqa: BLE001 - logged; the next signal must still be relayed
                    log.exception("handling signal %s failed", signal.Signals(signum).name)
