"""A single-threaded mailbox: one thread handles posted items and marshalled calls in order.

This is what makes the supervisor a serial process in the OTP sense: exit notices, restart
retries and API calls from other threads are all handled one at a time on one thread, so the
supervisor's state needs no locks.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from otp.errors import CallTimeout, SupervisorError, SupervisorNotRunning

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[[], Any]
    future: Future[Any]


class Mailbox:
    """Runs ``handler(item)`` for posted items and ``fn()`` for calls, on one thread.

    The loop ends when ``done()`` turns true after an item. ``on_crash(exc)`` is called on the
    mailbox thread when a handler (or a call) raises anything but a ``SupervisorError``; it
    must bring the owner to a terminal state. Calls still queued when the loop ends fail with
    ``SupervisorNotRunning``; posted items are dropped from then on.
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[Any], None],
        done: Callable[[], bool],
        on_crash: Callable[[Exception], None],
    ) -> None:
        """Prepare the mailbox; ``start()`` launches its thread."""
        self.name = name
        self._handler = handler
        self._done = done
        self._on_crash = on_crash
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._finished = threading.Event()

    def start(self) -> None:
        """Launch the mailbox thread (daemon: it never holds the interpreter open)."""
        with self._lock:
            if self._thread is not None or self._closed:
                raise SupervisorError(f"mailbox {self.name!r} was already started")
            self._thread = threading.Thread(target=self._run, name=f"supervisor:{self.name}", daemon=True)
        self._thread.start()

    def close_unstarted(self) -> bool:
        """Close a mailbox whose thread never ran; False if it was started."""
        with self._lock:
            if self._thread is not None:
                return False
            self._closed = True
        self._finished.set()
        return True

    def on_own_thread(self) -> bool:
        """True when called from the mailbox thread itself."""
        return threading.current_thread() is self._thread

    def post(self, item: object) -> None:
        """Queue ``item`` for the handler; never blocks (any thread, any time)."""
        self._queue.put(item)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn`` to run on the mailbox thread; its result arrives in the future."""
        future: Future[T] = Future()
        with self._lock:
            if self._thread is None or self._closed:
                raise SupervisorNotRunning(f"supervisor {self.name!r} is not running")
            self._queue.put(_Call(fn, future))
        return future

    def call(self, fn: Callable[[], T], timeout: float | None) -> T:
        """Run ``fn`` on the mailbox thread and wait up to ``timeout`` s for its result."""
        if self.on_own_thread():
            msg = f"supervisor {self.name!r} API called from its own thread (e.g. an event callback)"
            raise RuntimeError(msg)
        future = self.submit(fn)
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            if future.done():
                raise
            raise CallTimeout(f"supervisor {self.name!r} did not answer within {timeout} s") from exc

    def depth(self) -> int:
        """Items waiting in the queue (not counting the one being handled)."""
        return self._queue.qsize()

    def wait_finished(self, timeout: float | None) -> bool:
        """True once the loop has ended (or the mailbox was closed unstarted)."""
        return self._finished.wait(timeout)

    def _run(self) -> None:
        try:
            while not self._done():
                item = self._queue.get()
                try:
                    self._dispatch(item)
                except Exception as exc:  # noqa: BLE001 - a supervision bug must end in escalation, not a dead loop
                    log.exception("supervisor %s failed handling %r", self.name, item)
                    self._on_crash(exc)
        finally:
            with self._lock:
                self._closed = True
            self._fail_pending()
            self._finished.set()

    def _dispatch(self, item: object) -> None:
        if not isinstance(item, _Call):
            self._handler(item)
            return
        if not item.future.set_running_or_notify_cancel():
            return
        try:
            result = item.fn()
        except SupervisorError as exc:  # an API error: the caller's business
            item.future.set_exception(exc)
        except Exception as exc:
            item.future.set_exception(exc)
            raise
        else:
            item.future.set_result(result)

    def _fail_pending(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(SupervisorNotRunning(f"supervisor {self.name!r} has terminated"))
