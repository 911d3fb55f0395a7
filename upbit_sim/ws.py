"""The WebSocket side: ``/websocket/v1`` (public) and ``/websocket/v1/private`` (myOrder, myAsset).

Behaviour (``docs/upbit-api.md`` §5):

- the upgrade of ``/websocket/v1/private`` needs ``Authorization: Bearer <jwt>`` (access key and
  nonce); a bad one is refused with HTTP 401 and an ``INVALID_AUTH`` body. Connections count in
  the ``websocket-connect`` rate-limit group (5/s per IP): over it, HTTP 429;
- a text frame that is not ``PING`` is a subscription request (:mod:`upbit_sim.subscription`);
  a new request replaces the previous one (UNCONFIRMED). A bad request is answered with an
  error frame and the connection is closed (UNCONFIRMED whether Upbit closes);
- unless ``is_only_realtime``, a subscription first gets a ``SNAPSHOT`` of each code's latest
  state, then ``REALTIME`` messages as the replay prints trades (none with ``is_only_snapshot``);
- the text ``PING`` is answered with ``{"status":"UP"}``, which is then repeated every
  ``status_interval_s`` (10 s) while the connection lives; RFC 6455 pings are answered too;
- a connection with no traffic in either direction for ``idle_timeout_s`` (about 120 s at
  Upbit) is closed by the server (close code 1000 here; the code Upbit uses is UNCONFIRMED);
- every message is a binary frame (:mod:`upbit_sim.wire`); so is ``{"status":"UP"}`` (its
  frame type is UNCONFIRMED; clients here decode either).

Each connection has a handler thread (reads, idles out) and a sender thread (drains its queue,
honours the ``ws_stall`` and ``ws_corrupt_next`` faults). :meth:`WsServer.stop` closes every
connection and joins every thread.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import uuid as uuid_module
from typing import Any, Final

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from upbit_sim.auth import Authenticator
from upbit_sim.errors import ApiError
from upbit_sim.faults import Faults
from upbit_sim.orders import Order
from upbit_sim.ratelimit import RateLimiter
from upbit_sim.subscription import Subscription, SubscriptionError, parse_subscription
from upbit_sim.tape import Print, Tape
from upbit_sim.venue import Venue
from upbit_sim.wire import asset_message, encode, my_order_message, orderbook_message, ticker_message, trade_message

__all__ = ["WsServer"]

log = logging.getLogger("upbit_sim.ws")

PUBLIC_PATH: Final = "/websocket/v1"
PRIVATE_PATH: Final = "/websocket/v1/private"
_STATUS_UP: Final = b'{"status":"UP"}'
_JOIN_S: Final = 5.0


class _Connection(ServerConnection):
    """A server connection that notes the time of every incoming frame (pings included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_received = time.monotonic()

    def process_event(self, event: Any) -> None:
        self.last_received = time.monotonic()
        super().process_event(event)


class _Client:
    def __init__(self, ws: _Connection, user: str | None) -> None:
        self.ws = ws
        self.user = user
        self.subscription: Subscription | None = None
        self.outbox: queue.Queue[tuple[bytes, bool] | None] = queue.Queue()  # (frame, is_data)
        self.last_sent = time.monotonic()
        self.next_status: float | None = None  # set by the first PING

    def idle_since(self) -> float:
        return max(self.ws.last_received, self.last_sent)


class WsServer:
    """Serve Upbit's WebSocket protocol on a loopback port (see the module docstring)."""

    def __init__(
        self,
        *,
        tape: Tape,
        venue: Venue,
        auth: Authenticator,
        limiter: RateLimiter,
        faults: Faults,
        host: str = "127.0.0.1",
        port: int = 0,
        idle_timeout_s: float = 120.0,
        status_interval_s: float = 10.0,
    ) -> None:
        self._tape = tape
        self._venue = venue
        self._auth = auth
        self._limiter = limiter
        self._faults = faults
        self._idle_timeout_s = idle_timeout_s
        self._status_interval_s = status_interval_s
        self._lock = threading.Lock()
        self._clients: list[_Client] = []
        self._users: dict[int, str] = {}  # id(connection) -> user, from the private upgrade
        self._threads: list[threading.Thread] = []
        self._last_print: dict[str, Print] = {}
        self._order_states: dict[str, tuple[str, int]] = {}  # uuid -> (state, fills) already sent
        self._stopping = threading.Event()
        self._server: Server = serve(
            self._handle, host, port, process_request=self._process_request, create_connection=_Connection,
            ping_interval=None, server_header="upbit-sim",
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="upbit-sim-ws", daemon=True)
        faults.on_ws_drop(self.drop_all)
        venue.on_order_change(self._on_order)

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}{PUBLIC_PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection, join every thread."""
        self._stopping.set()
        self._server.shutdown()
        self._thread.join(_JOIN_S)
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.ws.close(1001, "server stopping")
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_S)
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning("WebSocket threads still running after stop: %s", alive)

    def connections(self) -> int:
        """How many connections are open."""
        with self._lock:
            return len(self._clients)

    def drop_all(self) -> None:
        """Cut every connection abruptly (no closing handshake): the ``ws_drop`` fault."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.ws.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    # --- market data --------------------------------------------------------------------

    def publish(self, printed: Print) -> None:
        """Send a printed trade (and the ticker/book it moved) to every subscriber of its code."""
        code = printed.trade.market
        with self._lock:
            self._last_print[code] = printed
            clients = [c for c in self._clients if c.subscription is not None]
        for client in clients:
            self._send_market(client, code, stream_type="REALTIME", printed=printed)

    def _send_market(self, client: _Client, code: str, *, stream_type: str, printed: Print | None) -> None:
        sub = client.subscription
        if sub is None:
            return
        for request in sub.types:
            if not request.wants(code) or request.type not in ("trade", "ticker", "orderbook"):
                continue
            if (stream_type == "REALTIME" and request.only_snapshot) or (
                stream_type == "SNAPSHOT" and request.only_realtime
            ):
                continue
            message: dict[str, object] | None = None
            if request.type == "trade" and printed is not None:
                message = trade_message(printed, stream_type=stream_type)
            elif request.type == "ticker" and (ticker := self._tape.ticker(code)) is not None:
                message = ticker_message(ticker, stream_type=stream_type)
            elif request.type == "orderbook" and (book := self._tape.book(code, request.book_sizes[code])) is not None:
                message = orderbook_message(book, stream_type=stream_type)
            if message is not None:
                client.outbox.put((encode(message, sub.format), True))

    # --- private data (called by the venue under its lock) ----------------------------------

    def _on_order(self, order: Order) -> None:
        with self._lock:
            clients = [c for c in self._clients if c.user == order.user and c.subscription is not None]
            sent_state, sent_fills = self._order_states.get(order.uuid, ("", 0))
            self._order_states[order.uuid] = (order.state, len(order.fills))
        now_ms = int(time.time() * 1000)
        events = [] if sent_state else [my_order_message(order, state="wait", fill=None, now_ms=now_ms)]
        events += [my_order_message(order, state="trade", fill=f, now_ms=now_ms) for f in order.fills[sent_fills:]]
        if order.state in ("done", "cancel") and order.state != sent_state:
            events.append(my_order_message(order, state=order.state, fill=None, now_ms=now_ms))
        quote, _, base = order.market.partition("-")
        assets = asset_message(
            {c: self._venue.holding(order.user, c) for c in (quote, base)},
            asset_uuid=str(uuid_module.uuid4()), now_ms=now_ms,
        )
        for client in clients:
            sub = client.subscription
            assert sub is not None
            my_orders = sub.of_type("myOrder")
            if my_orders is not None and my_orders.wants(order.market):
                for event in events:
                    client.outbox.put((encode(event, sub.format), True))
            if sub.of_type("myAsset") is not None:
                client.outbox.put((encode(assets, sub.format), True))

    # --- connections --------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(threading.current_thread())
        path = request.path.partition("?")[0].rstrip("/")
        if path not in (PUBLIC_PATH, PRIVATE_PATH):
            return connection.respond(404, "Not Found\n")
        try:
            self._limiter.admit("websocket-connect", str(connection.remote_address[0]))
        except ApiError as exc:
            return _json_response(connection, exc.status, exc.body())
        if path == PRIVATE_PATH:
            try:
                user = self._auth.authenticate(request.headers.get("Authorization"), [])
            except ApiError as exc:
                body = orjson.dumps({"error": {"name": "INVALID_AUTH", "message": f"인증 정보가 올바르지 않습니다. ({exc.name})"}})
                return _json_response(connection, 401, body)
            with self._lock:
                self._users[id(connection)] = user
        return None

    def _handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, _Connection)
        with self._lock:
            user = self._users.pop(id(ws), None)
        client = _Client(ws, user)
        sender = threading.Thread(target=self._send_loop, args=(client,), name="upbit-sim-ws-send", daemon=True)
        with self._lock:
            self._clients.append(client)
            self._threads.append(sender)
        sender.start()
        try:
            self._read_loop(client, private=user is not None)
        finally:
            with self._lock:
                self._clients.remove(client)
            client.outbox.put(None)
            sender.join(_JOIN_S)

    def _read_loop(self, client: _Client, *, private: bool) -> None:
        ws = client.ws
        while not self._stopping.is_set():
            remaining = self._idle_timeout_s - (time.monotonic() - client.idle_since())
            if remaining <= 0:
                ws.close(1000, "idle timeout")
                return
            try:
                message = ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if message == "PING":
                client.outbox.put((_STATUS_UP, False))
                if client.next_status is None:
                    client.next_status = time.monotonic() + self._status_interval_s
                continue
            try:
                subscription = parse_subscription(message, private=private)
            except SubscriptionError as exc:
                client.outbox.put((exc.frame(), False))
                client.outbox.put(None)  # the sender closes after the error frame
                return
            client.subscription = subscription
            self._send_snapshots(client, subscription)

    def _send_snapshots(self, client: _Client, sub: Subscription) -> None:
        with self._lock:
            prints = dict(self._last_print)
        codes = {code for request in sub.types for code in request.codes}
        for code in sorted(codes):
            self._send_market(client, code, stream_type="SNAPSHOT", printed=prints.get(code))

    def _send_loop(self, client: _Client) -> None:
        ws = client.ws
        try:
            while True:
                timeout = None if client.next_status is None else max(client.next_status - time.monotonic(), 0.0)
                try:
                    item = client.outbox.get(timeout=timeout)
                except queue.Empty:
                    item = (_STATUS_UP, False)
                    client.next_status = time.monotonic() + self._status_interval_s
                if item is None:
                    if ws.state.name == "OPEN":
                        ws.close(1000)
                    return
                frame, is_data = item
                while (stall := self._faults.ws_stall_remaining()) > 0 and not self._stopping.is_set():
                    self._stopping.wait(stall)
                if is_data and self._faults.take_ws_corrupt():
                    frame = frame[: max(1, len(frame) // 2)] + b"\x00garbage"
                ws.send(frame)  # bytes: a binary frame
                client.last_sent = time.monotonic()
        except (ConnectionClosed, OSError):
            return


def _json_response(connection: ServerConnection, status: int, body: bytes) -> Response:
    response = connection.respond(status, body.decode("utf-8"))
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    return response

