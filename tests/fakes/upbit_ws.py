"""A loopback WebSocket server that speaks Upbit's public trade protocol and replays real frames.

It behaves like ``wss://api.upbit.com/websocket/v1`` as described in ``docs/upbit-api.md`` §5:

- the client's first message must be the subscription, a JSON array as a text frame with a
  ``{"ticket":…}``, a ``{"type":"trade","codes":[…]}`` (upper-case codes) and optionally a
  ``{"format":"DEFAULT"|"SIMPLE"}``; anything else is answered with an error frame
  ``{"error":{"name":…,"message":…}}`` and the connection is closed;
- it then sends **binary** frames holding UTF-8 JSON: the real recorded trade frames (SIMPLE
  format as captured, or rewritten with DEFAULT keys), only for the subscribed codes;
- a text ``PING`` is answered with ``{"status":"UP"}``; the server may also interleave
  ``{"status":"UP"}`` frames and send RFC 6455 pings of its own (recording the pongs).

Scripting, per connection (0-based, in accept order): ``drop_after[i]`` makes connection ``i``
drop its TCP connection abruptly (no closing handshake) after sending that many trade frames.
A cursor shared by all connections makes the next connection carry on where the previous one
stopped, as a live feed would. ``reject_with`` answers every subscription with an error frame.

Every connection is closed and every thread joined by :meth:`FakeUpbitServer.stop`.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Sequence
from types import TracebackType

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from tests.helpers import MS

#: SIMPLE → DEFAULT key names of a trade message (docs/upbit-api.md §5.5).
SIMPLE_TO_DEFAULT_TRADE_KEYS = {
    "ty": "type",
    "cd": "code",
    "tp": "trade_price",
    "tv": "trade_volume",
    "ab": "ask_bid",
    "pcp": "prev_closing_price",
    "c": "change",
    "cp": "change_price",
    "td": "trade_date",
    "ttm": "trade_time",
    "ttms": "trade_timestamp",
    "tms": "timestamp",
    "sid": "sequential_id",
    "bap": "best_ask_price",
    "bas": "best_ask_size",
    "bbp": "best_bid_price",
    "bbs": "best_bid_size",
    "st": "stream_type",
}

_CODE = re.compile(r"[A-Z0-9]+-[A-Z0-9]+")


def to_default_format(simple_frame: bytes) -> bytes:
    """Rewrite a SIMPLE-format trade frame with DEFAULT keys, keeping the numbers' text as-is."""
    text = simple_frame.decode("utf-8")
    for short, long in SIMPLE_TO_DEFAULT_TRADE_KEYS.items():
        text = text.replace(f'"{short}":', f'"{long}":')
    return text.encode("utf-8")


class FakeUpbitServer:
    """Serve real recorded trade frames over a loopback Upbit-like WebSocket endpoint."""

    def __init__(
        self,
        frames: Sequence[bytes],
        *,
        drop_after: Sequence[int | None] = (),
        reject_with: tuple[str, str] | None = None,
        status_every: int | None = None,
        ping_client: bool = False,
        extra_frames: Sequence[bytes] = (),
        http_status: int | None = None,
    ) -> None:
        """Args:
        frames: SIMPLE-format trade frames (bytes of the recorded JSON), in delivery order.
        drop_after: per connection, drop abruptly after this many trade frames (None: never).
        reject_with: answer every subscription with this ``(name, message)`` error frame.
        status_every: interleave ``{"status":"UP"}`` after every n trade frames.
        ping_client: send an RFC 6455 ping after the subscription and record the pong.
        extra_frames: sent verbatim (binary) before the trade frames on every connection.
        http_status: refuse every upgrade with this HTTP status (e.g. 403, 503).
        """
        self._frames = list(frames)
        self._drop_after = list(drop_after)
        self._reject_with = reject_with
        self._status_every = status_every
        self._ping_client = ping_client
        self._extra_frames = list(extra_frames)
        self._http_status = http_status
        self.http_refusals = 0
        self._lock = threading.Lock()
        self._cursor = 0  # next frame to send, shared by connections
        self._connections: list[ServerConnection] = []
        self._handler_threads: list[threading.Thread] = []
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        # observations for assertions
        self.subscriptions: list[object] = []
        self.accepted = 0
        self.pongs = 0
        self.client_pings = 0
        self.errors_sent: list[str] = []
        self.all_sent = threading.Event()

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        assert self._server is not None, "server not started"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def start(self) -> FakeUpbitServer:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None, process_request=self._process_request)
        self._serve_thread = threading.Thread(target=self._server.serve_forever, name="fake-upbit-ws", daemon=True)
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, and join every thread."""
        if self._server is not None:
            self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5000 * MS)
        with self._lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(timeout=5000 * MS)
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"fake server threads still running: {alive}"

    def __enter__(self) -> FakeUpbitServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def cursor(self) -> int:
        """How many trade frames have been sent so far, over all connections."""
        with self._lock:
            return self._cursor

    # --- protocol -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, _request: Request) -> Response | None:
        with self._lock:  # runs in the connection's thread, for every handshake: track it
            self._handler_threads.append(threading.current_thread())
            if self._http_status is None:
                return None
            self.http_refusals += 1
        return connection.respond(self._http_status, "refused by the fake server\n")

    def _handle(self, ws: ServerConnection) -> None:
        with self._lock:
            index = self.accepted
            self.accepted += 1
            self._connections.append(ws)
        try:
            request = ws.recv(timeout=5000 * MS)
        except (TimeoutError, ConnectionClosed):
            return
        codes, fmt, problem = self._parse_subscription(request)
        if self._reject_with is not None:
            problem = self._reject_with
        if problem is not None:
            self.errors_sent.append(problem[0])
            ws.send(orjson.dumps({"error": {"name": problem[0], "message": problem[1]}}))
            ws.close()
            return
        if self._ping_client and ws.ping().wait(timeout=5000 * MS):
            with self._lock:
                self.pongs += 1
        try:
            for frame in self._extra_frames:
                ws.send(frame)
            drop_after = self._drop_after[index] if index < len(self._drop_after) else None
            self._replay(ws, codes, fmt, drop_after)
            self._idle(ws)
        except ConnectionClosed:
            return

    def _parse_subscription(self, request: str | bytes) -> tuple[set[str], str, tuple[str, str] | None]:
        """Validate the subscription like Upbit does; return (codes, format, error or None)."""
        if not isinstance(request, str):
            return set(), "", ("WRONG_FORMAT", "subscription must be a text frame")
        try:
            message = orjson.loads(request)
        except orjson.JSONDecodeError:
            return set(), "", ("WRONG_FORMAT", "not JSON")
        with self._lock:
            self.subscriptions.append(message)
        if not isinstance(message, list) or not all(isinstance(part, dict) for part in message):
            return set(), "", ("WRONG_FORMAT", "expected an array of objects")
        tickets = [part["ticket"] for part in message if "ticket" in part]
        if not tickets or not isinstance(tickets[0], str) or not tickets[0]:
            return set(), "", ("NO_TICKET", "ticket is required")
        types = [part for part in message if "type" in part]
        if not types:
            return set(), "", ("NO_TYPE", "type is required")
        codes: set[str] = set()
        for part in types:
            if part["type"] != "trade":
                return set(), "", ("INVALID_PARAM", f"this fake serves trades only, not {part['type']!r}")
            part_codes = part.get("codes")
            if not isinstance(part_codes, list) or not part_codes:
                return set(), "", ("NO_CODES", "codes are required")
            if not all(isinstance(c, str) and _CODE.fullmatch(c) for c in part_codes):
                return set(), "", ("INVALID_PARAM", f"codes must be upper case: {part_codes!r}")
            codes.update(part_codes)
        formats = [part["format"] for part in message if "format" in part]
        fmt = formats[0] if formats else "DEFAULT"
        if fmt not in ("DEFAULT", "SIMPLE"):
            return set(), "", ("WRONG_FORMAT", f"unsupported format {fmt!r}")
        return codes, fmt, None

    def _replay(self, ws: ServerConnection, codes: set[str], fmt: str, drop_after: int | None) -> None:
        sent_here = 0
        while True:
            with self._lock:
                if self._cursor >= len(self._frames):
                    break
                frame = self._frames[self._cursor]
            if drop_after is not None and sent_here >= drop_after:
                ws.socket.shutdown(socket.SHUT_RDWR)  # abrupt: no closing handshake
                ws.socket.close()
                raise ConnectionClosed(None, None)
            code = orjson.loads(frame).get("cd")
            if code in codes:
                ws.send(to_default_format(frame) if fmt == "DEFAULT" else frame)
                sent_here += 1
                if self._status_every and sent_here % self._status_every == 0:
                    ws.send(b'{"status":"UP"}')
            with self._lock:
                self._cursor += 1
        self.all_sent.set()

    def _idle(self, ws: ServerConnection) -> None:
        """After the replay: answer text PINGs until the client or the server closes."""
        for message in ws:
            if message == "PING":
                with self._lock:
                    self.client_pings += 1
                ws.send(b'{"status":"UP"}')
