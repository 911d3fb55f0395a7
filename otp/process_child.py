"""Node processes as supervised children: the ``ChildHandle`` for an OS process.

A node is started with the ``spawn`` context (never fork: pykka actors are threads). The start
returns only once the node has reported ``ready`` over its pipe, so the root's ordered start
really is ordered; a node that exits or stays silent before then is a start failure.

Death is detected by a monitor thread waiting on the process sentinel, without the child's
co-operation; the exit code becomes the exit reason: 0 → normal (shutdown when we asked it to
stop), −SIGKILL → killed, ``EXIT_HUNG`` → hung (the node's watchdog found an actor stuck in a
handler; the node said which in a ``("hung", detail)`` message just before), anything else →
error. ``stop`` sends SIGTERM (the node stops its actors in reverse order and exits 0); ``kill``
sends SIGKILL and, unlike a thread, really kills.

Liveness (S41): with a ``heartbeat_timeout``, the same monitor expects *some* message from the
node — it sends ``("heartbeat",)`` every second — at least that often once it is ready. A node
that falls silent (SIGSTOP, the whole process deadlocked, the GIL held forever) is killed with
SIGKILL and its exit reason is ``hung``; the supervisor then restarts it like any abnormal exit,
and only after the old process has been reaped.

Each node also holds the read end of a "parent alive" pipe: when the root dies, however it dies,
the pipe reaches EOF and the node exits at once, so no orphan keeps trading (S43). On Linux
``PR_SET_PDEATHSIG`` backs this up.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from otp.child import ChildContext
from otp.exits import ExitReason

log = logging.getLogger(__name__)

EXIT_HUNG = 5
"""A node's exit code after its watchdog found an actor stuck in a handler (a thread cannot be killed)."""

NodeMessageHandler = Callable[[str, int, tuple[Any, ...]], None]


class NodeStartError(RuntimeError):
    """A node process exited or stayed silent before reporting ready."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBoot:
    """Everything a node process receives (picklable: it crosses the spawn boundary)."""

    node: str
    incarnation: int
    channel: Connection  # duplex: node → root messages ("ready", "drained", …)
    parent_alive: Connection  # EOF when the root is gone
    payload: Any  # node-specific start arguments


class ProcessHandle:
    """A running node process."""

    def __init__(self, proc: multiprocessing.process.BaseProcess, channel: Connection, alive: Connection,  # noqa: PLR0913
                 ctx: ChildContext, on_message: NodeMessageHandler | None, *,
                 heartbeat_timeout: float | None = None) -> None:
        self._proc = proc
        self._heartbeat_timeout = heartbeat_timeout
        self._hung: str | None = None  # why the node is hung: its own report, or our missed-heartbeat kill
        self._channel = channel
        # Never written to: held open so the node's end reaches EOF exactly when this process is gone.
        self._alive = alive
        self._ctx = ctx
        self._on_message = on_message
        self._stop_requested = False
        self._send_lock = threading.Lock()
        self._exited = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name=f"watch-{ctx.child_id}-{ctx.incarnation}",
                                         daemon=True)
        self._monitor.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def send(self, message: tuple[Any, ...]) -> bool:
        """Send a request to the node (answers come back through ``on_message``); False if gone."""
        with self._send_lock:
            try:
                self._channel.send(message)
            except (BrokenPipeError, EOFError, OSError):
                return False
        return True

    def stop(self) -> None:
        self._stop_requested = True
        if self._proc.pid is not None and self._proc.exitcode is None:
            try:
                os.kill(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> bool:
        self._stop_requested = True
        if self._proc.pid is not None and self._proc.exitcode is None:
            try:
                os.kill(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return True

    def wait(self, timeout: float | None) -> bool:
        return self._exited.wait(timeout)

    def describe(self) -> dict[str, Any]:
        return {"pid": self._proc.pid, "exitcode": self._proc.exitcode}

    def _watch(self) -> None:
        sentinel = self._proc.sentinel
        channel_open = True
        heard = time.monotonic()  # the node reported ready just before this handle was made
        killed_for_silence = False
        while True:
            timeout = None
            if self._heartbeat_timeout is not None and not killed_for_silence:
                timeout = max(0.0, heard + self._heartbeat_timeout - time.monotonic())
            ready = wait([sentinel, self._channel] if channel_open else [sentinel], timeout)
            if self._channel in ready:
                try:
                    message = self._channel.recv()
                except (EOFError, OSError):
                    channel_open = False
                else:
                    heard = time.monotonic()
                    self._deliver(message)
                continue
            if sentinel in ready:
                break
            if channel_open and self._channel.poll(0):
                continue  # a message arrived at the deadline (or we were the ones suspended)
            killed_for_silence = True
            self._kill_silent(time.monotonic() - heard)
        self._proc.join()
        self._channel.close()
        self._alive.close()
        reason = exit_reason(self._proc.exitcode, stop_requested=self._stop_requested, hung=self._hung)
        self._exited.set()
        self._ctx.notify_exit(reason)

    def _kill_silent(self, silent_s: float) -> None:
        self._hung = f"no heartbeat from node {self._ctx.child_id} for {silent_s:.1f} s"
        log.error("%s (limit %.1f s): killing pid %s", self._hung, self._heartbeat_timeout, self._proc.pid)
        if self._proc.pid is not None and self._proc.exitcode is None:
            try:
                os.kill(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _deliver(self, message: Any) -> None:
        if not isinstance(message, tuple) or not message or message[0] == "heartbeat":
            return
        if message[0] == "hung" and len(message) > 1:
            self._hung = str(message[1])
        if self._on_message is None:
            return
        try:
            self._on_message(self._ctx.child_id, self._ctx.incarnation, message)
        except Exception:  # noqa: BLE001 - a faulty handler must not blind the death monitor
            log.exception("handling message %r from node %s failed", message[0], self._ctx.child_id)


def exit_reason(exitcode: int | None, *, stop_requested: bool, hung: str | None = None) -> ExitReason:
    """Map a process exit code to an OTP exit reason (``hung``: why the node was found hung)."""
    if exitcode == EXIT_HUNG:
        return ExitReason.hung(hung or "an actor stopped processing its mailbox")
    if hung is not None and exitcode == -signal.SIGKILL:
        return ExitReason.hung(f"{hung}; killed with SIGKILL")
    if exitcode == 0:
        return ExitReason.shutdown() if stop_requested else ExitReason.normal()
    if exitcode == -signal.SIGKILL:
        return ExitReason.killed("SIGKILL")
    if exitcode is not None and exitcode < 0:
        return ExitReason.error(f"killed by signal {signal.Signals(-exitcode).name}")
    return ExitReason.error(f"exit code {exitcode}")


def process_child(*, target: Callable[[NodeBoot], None], payload: Any, start_timeout: float,
                  on_message: NodeMessageHandler | None = None,
                  heartbeat_timeout: float | None = None) -> Callable[[ChildContext], ProcessHandle]:
    """A ``ChildSpec.start`` that spawns ``target(NodeBoot)`` and returns once it reports ready.

    ``on_message(node, incarnation, message)`` receives every later message the node sends
    (except heartbeats). With ``heartbeat_timeout``, a node silent for that long after it was
    ready is killed and exits ``hung``; the target must then send heartbeats (``node_main`` does).
    """
    mp = multiprocessing.get_context("spawn")

    def start(ctx: ChildContext) -> ProcessHandle:
        root_end, node_end = mp.Pipe(duplex=True)
        alive_read, alive_write = mp.Pipe(duplex=False)
        boot = NodeBoot(node=ctx.child_id, incarnation=ctx.incarnation, channel=node_end,
                        parent_alive=alive_read, payload=payload)
        proc = mp.Process(target=target, args=(boot,), name=f"node-{ctx.child_id}", daemon=False)
        proc.start()
        node_end.close()
        alive_read.close()
        try:
            _await_ready(proc, root_end, start_timeout, ctx.child_id)
        except NodeStartError:
            if proc.exitcode is None:
                proc.kill()
            proc.join(5)
            root_end.close()
            alive_write.close()
            raise
        return ProcessHandle(proc, root_end, alive_write, ctx, on_message, heartbeat_timeout=heartbeat_timeout)

    return start


def _await_ready(proc: multiprocessing.process.BaseProcess, conn: Connection, timeout: float, node: str) -> None:
    ready = wait([conn, proc.sentinel], timeout)
    if conn in ready:
        try:
            message = conn.recv()
        except (EOFError, OSError) as exc:
            proc.join(5)  # the channel closes when the process ends: say how it ended
            if proc.exitcode is not None:
                raise NodeStartError(f"node {node} exited with code {proc.exitcode} before it was ready") from exc
            raise NodeStartError(f"node {node} closed its channel before it was ready") from exc
        if isinstance(message, tuple) and message and message[0] == "ready":
            return
        raise NodeStartError(f"node {node} sent {message!r} instead of ready")
    if proc.sentinel in ready:
        proc.join()
        raise NodeStartError(f"node {node} exited with code {proc.exitcode} before it was ready")
    raise NodeStartError(f"node {node} was not ready within {timeout:.0f} s")


EXIT_ORPHANED = 70
_PR_SET_PDEATHSIG = 1


def exit_with_parent(boot: NodeBoot) -> None:
    """In a node: exit at once when the root is gone, however it died (no orphan keeps trading).

    A daemon thread blocks on the parent-alive pipe; EOF means the root is gone and the node
    ends with ``os._exit`` (no cleanup may outlive the root). On Linux the kernel's
    ``PR_SET_PDEATHSIG`` backs this up with a SIGKILL.
    """
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            log.debug("PR_SET_PDEATHSIG unavailable")

    def watch() -> None:
        try:
            boot.parent_alive.recv()
        except (EOFError, OSError):
            pass
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="parent-alive", daemon=True).start()
