"""SignalRelay: a signal's work runs on the relay thread, so it can never deadlock the thread it interrupts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from otp.signals import STACKS_SIGNAL, SignalRelay
from tests.helpers import eventually

REPO = Path(__file__).resolve().parents[2]


def test_the_work_runs_on_the_relay_thread_once_per_signal() -> None:
    seen: list[tuple[int, str]] = []
    twice = threading.Event()

    def on_signal(signum: int) -> None:
        seen.append((signum, threading.current_thread().name))
        if len(seen) == 2:
            twice.set()

    with SignalRelay([signal.SIGUSR1, signal.SIGUSR2], on_signal):
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        assert twice.wait(5)
    assert sorted(seen) == [(signal.SIGUSR1, "signal-relay"), (signal.SIGUSR2, "signal-relay")]


def test_a_signal_arriving_while_the_main_thread_holds_the_lock_its_work_needs_does_not_deadlock() -> None:
    """The failure this replaces: ``signal.signal(SIGINT, lambda *_: stop.set())`` ran ``set()``
    in the main thread while that thread held the event's lock, and waited for itself forever."""
    lock = threading.Lock()
    got: list[bool] = []
    done = threading.Event()

    def on_signal(_signum: int) -> None:
        got.append(lock.acquire(timeout=2))  # in the main thread this would wait on itself
        if got[-1]:
            lock.release()
        done.set()

    with SignalRelay([signal.SIGUSR1], on_signal):
        with lock:
            os.kill(os.getpid(), signal.SIGUSR1)
            end = time.monotonic() + 0.05
            while time.monotonic() < end:  # executing bytecode: Python-level handlers run here
                pass
        assert done.wait(5)
    assert got == [True]


def test_a_failing_callback_is_logged_and_later_signals_still_arrive(caplog) -> None:  # noqa: ANN001
    calls: list[int] = []
    second = threading.Event()

    def on_signal(signum: int) -> None:
        calls.append(signum)
        if len(calls) == 1:
            raise RuntimeError("boom")
        second.set()

    with SignalRelay([signal.SIGUSR1], on_signal):
        os.kill(os.getpid(), signal.SIGUSR1)
        eventually(lambda: calls, timeout=5, interval=0.01, what="the first, failing, call")
        os.kill(os.getpid(), signal.SIGUSR1)
        assert second.wait(5)
    assert "handling signal SIGUSR1 failed" in caplog.text


def test_leaving_puts_back_the_previous_handlers_and_wakeup_fd() -> None:
    def before(signum: int, frame: object) -> None:
        del signum, frame

    previous = signal.signal(signal.SIGUSR1, before)
    try:
        with SignalRelay([signal.SIGUSR1], lambda _s: None):
            assert signal.getsignal(signal.SIGUSR1) is not before
        assert signal.getsignal(signal.SIGUSR1) is before
        assert signal.set_wakeup_fd(-1) == -1  # nothing left pointing at the relay's closed socket
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_the_stacks_signal_writes_every_threads_stack_and_the_process_goes_on(tmp_path) -> None:  # noqa: ANN001
    script = ("import sys, threading\n"
              "from otp.signals import dump_stacks_on\n"
              "dump_stacks_on()\n"
              "threading.Thread(target=threading.Event().wait, name='parked', daemon=True).start()\n"
              "print('ready', flush=True)\n"
              "sys.stdin.readline()\n")
    err = tmp_path / "stderr"
    with err.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=sink)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        dumps = 0

        def caught_parked() -> bool:
            nonlocal dumps
            proc.send_signal(STACKS_SIGNAL)
            dumps += 1
            eventually(lambda: err.read_text().count("Current thread") >= dumps, timeout=10, interval=0.05,
                       what="the dump this signal asked for")
            return " in wait" in err.read_text()

        # signal again until a dump has caught the parked thread inside its wait (it may still be starting)
        eventually(caught_parked, timeout=10, interval=0.05, what="a dump showing the parked thread")
        dump = err.read_text()
        assert dump.count("Current thread") == dumps, dump  # one dump per signal
        assert dump.count("most recent call first") >= 2 * dumps, dump  # the main thread and the parked one
        assert "in <module>" in dump and " in wait" in dump  # where each of them is
        assert proc.poll() is None  # a dump, not a death
        proc.communicate(b"\n", timeout=10)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
