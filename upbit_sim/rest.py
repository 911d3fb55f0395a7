"""The REST side: Upbit's ``/v1/…`` routes over a threaded loopback HTTP server.

:class:`RestApp` is the request pipeline, independent of the socket (request in, response out):

1. ``/_sim/…`` goes to the admin API (:mod:`upbit_sim.admin`): no faults, limits or auth;
2. an unknown route is 404; the armed REST faults are taken (``fail_next`` answers now);
3. parameters are read from the URL query, else from the body (JSON, or a form body as pyupbit
   sends for GET); a form-encoded POST is refused (unsupported since 2022-03-01);
4. private routes verify the JWT (:mod:`upbit_sim.auth`); then the rate limiter counts the
   request in its group, per access key (private) or client IP (public): 429, then 418;
5. the handler runs; ``malformed_next`` truncates the body, ``drop_after_accept`` closes the
   connection without answering.

An optional observer (``on_request``) is told about every request before step 1, with the wall
time (``time.time()``) at which the pipeline received it: a probe for benchmarks and tests that
need to know *when* a request reached the exchange. It must be cheap and must not block (it runs
in the connection's thread, ahead of the answer); whatever it raises is logged and ignored, so an
observer can never change what the exchange answers.

Every answer, error or not, carries ``Remaining-Req`` (pyupbit raises without it). Errors carry
Upbit's ``{"error":{"name","message"}}`` body.

:class:`RestServer` is the ``http.server`` shell: HTTP/1.1 keep-alive, one thread per connection,
and a :meth:`RestServer.stop` that closes open connections and joins every thread.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import orjson

from upbit_sim.admin import AdminApi
from upbit_sim.auth import Authenticator
from upbit_sim.errors import ApiError
from upbit_sim.exchange_api import ExchangeApi
from upbit_sim.faults import Faults
from upbit_sim.params import Params
from upbit_sim.quotation import Quotation
from upbit_sim.ratelimit import RateLimiter, remaining_header

__all__ = ["RequestObserver", "RestApp", "RestRequest", "RestResponse", "RestServer"]

log = logging.getLogger("upbit_sim.rest")

_JSON: Final = "application/json; charset=utf-8"
_POLL_S: Final = 0.02  # how often serve_forever checks for shutdown: stop() waits at most this


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One HTTP request as the pipeline sees it."""

    method: str
    path: str
    query: str  # raw, still percent-encoded
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str  # client IP


RequestObserver = Callable[[float, RestRequest], None]
"""Told ``(arrived_at, request)`` for every request; ``arrived_at`` is ``time.time()`` on arrival."""


@dataclass(frozen=True, slots=True)
class RestResponse:
    """What to answer (or ``drop``: close the connection without answering)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass(frozen=True, slots=True)
class _Route:
    group: str
    private: bool
    call: Callable[[str, Params, tuple[str, ...]], object]
    status: int = 200


class RestApp:
    """Route, fault, authenticate, rate-limit and answer one request (thread-safe)."""

    def __init__(
        self,
        *,
        quotation: Quotation,
        exchange: ExchangeApi,
        auth: Authenticator,
        limiter: RateLimiter,
        faults: Faults,
        admin: AdminApi,
        on_request: RequestObserver | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``on_request``: the observer (see the module docstring); ``wall_clock`` stamps its calls."""
        self._on_request = on_request
        self._wall_clock = wall_clock
        self._auth = auth
        self._limiter = limiter
        self._faults = faults
        self._admin = admin
        self.stopping = threading.Event()  # set on stop: cuts injected delays short
        q, x = quotation, exchange
        self._routes: dict[tuple[str, str], _Route] = {
            ("GET", "/v1/market/all"): _Route("market", False, lambda _u, p, _a: q.market_all(p)),
            ("GET", "/v1/ticker"): _Route("ticker", False, lambda _u, p, _a: q.ticker(p)),
            ("GET", "/v1/ticker/all"): _Route("ticker", False, lambda _u, p, _a: q.ticker_all(p)),
            ("GET", "/v1/trades/ticks"): _Route("trade", False, lambda _u, p, _a: q.trades_ticks(p)),
            ("GET", "/v1/candles/minutes/*"): _Route("candle", False, lambda _u, p, a: q.candles_minutes(a[0], p)),
            ("GET", "/v1/orderbook"): _Route("orderbook", False, lambda _u, p, _a: q.orderbook(p)),
            ("GET", "/v1/orderbook/instruments"): _Route(
                "orderbook", False, lambda _u, p, _a: q.orderbook_instruments(p)
            ),
            ("GET", "/v1/accounts"): _Route("default", True, lambda u, p, _a: x.accounts(u, p)),
            ("GET", "/v1/orders/chance"): _Route("default", True, lambda u, p, _a: x.chance(u, p)),
            ("POST", "/v1/orders"): _Route("order", True, lambda u, p, _a: x.place(u, p), status=201),
            ("POST", "/v1/orders/test"): _Route("order-test", True, lambda u, p, _a: x.place_test(u, p), status=201),
            ("GET", "/v1/order"): _Route("default", True, lambda u, p, _a: x.order(u, p)),
            ("DELETE", "/v1/order"): _Route("default", True, lambda u, p, _a: x.cancel(u, p)),
            ("GET", "/v1/orders/open"): _Route("default", True, lambda u, p, _a: x.open_orders(u, p)),
            ("GET", "/v1/orders/closed"): _Route("default", True, lambda u, p, _a: x.closed_orders(u, p)),
            ("GET", "/v1/orders/uuids"): _Route("default", True, lambda u, p, _a: x.orders_by_ids(u, p)),
            ("GET", "/v1/orders"): _Route("default", True, lambda u, p, _a: x.legacy_orders(u, p)),
            ("DELETE", "/v1/orders/open"): _Route("order-cancel-all", True, lambda u, p, _a: x.cancel_open(u, p)),
            ("DELETE", "/v1/orders/uuids"): _Route("default", True, lambda u, p, _a: x.cancel_by_ids(u, p)),
        }

    def handle(self, request: RestRequest) -> RestResponse:
        """Answer ``request`` (see the module docstring for the order of the steps)."""
        if self._on_request is not None:
            self._observe(self._on_request, request)
        path = request.path.rstrip("/") or "/"
        if path.startswith("/_sim/"):
            status, payload = self._admin.handle(request.method, path, request.body)
            return RestResponse(status, orjson.dumps(payload), {"Content-Type": _JSON})
        route, args = self._route(request.method, path)
        group = route.group if route is not None else "default"
        header = {"Remaining-Req": remaining_header(group), "Content-Type": _JSON}
        if route is None:
            return _error(ApiError.not_found(path), header)
        fault = self._faults.take_rest(request.method, path)
        if fault.delay_s > 0 and self.stopping.wait(fault.delay_s):  # the injected latency itself
            return RestResponse(503, b"", header, drop=True)
        if fault.fail_status is not None:
            return _error(ApiError(fault.fail_status, "server_error", "simulated failure (fail_next)"), header)
        try:
            params, raw_query = _params(request)
            user = request.client
            if route.private:
                header["Remaining-Req"] = self._limiter.peek(group, user).header()
                user = self._auth.authenticate(request.headers.get("authorization"), params.pairs, raw_query)
            admission = self._limiter.admit(group, user)
            header["Remaining-Req"] = admission.header()
            body = orjson.dumps(route.call(user, params, args))
            status = route.status
        except ApiError as exc:
            return _error(exc, header, malformed=fault.malformed, drop=fault.drop)
        except Exception:  # noqa: BLE001 - a simulator bug must answer 500, not kill the connection thread
            log.exception("simulator error on %s %s", request.method, path)
            return _error(ApiError(500, "server_error", "simulator internal error"), header)
        if fault.malformed:
            body = body[: max(1, len(body) // 2)]
        return RestResponse(status, body, header, drop=fault.drop)

    def _observe(self, observer: RequestObserver, request: RestRequest) -> None:
        """Stamp the arrival first, then tell the observer; its failure never reaches the client."""
        arrived_at = self._wall_clock()
        try:
            observer(arrived_at, request)
        except Exception:  # noqa: BLE001 - an observer's bug must not change what the exchange answers
            log.exception("request observer failed on %s %s", request.method, request.path)

    def _route(self, method: str, path: str) -> tuple[_Route | None, tuple[str, ...]]:
        route = self._routes.get((method, path))
        if route is not None:
            return route, ()
        match = re.fullmatch(r"/v1/candles/minutes/([^/]+)", path)
        if match is not None and method == "GET":
            return self._routes[("GET", "/v1/candles/minutes/*")], (match.group(1),)
        return None, ()


def _params(request: RestRequest) -> tuple[Params, str | None]:
    """The parameters and, when they came in the URL, the raw query string."""
    if request.query:
        return Params.from_query(request.query), request.query
    if not request.body.strip():
        return Params([]), None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not request.body.lstrip().startswith(b"{"):
        if request.method == "POST":
            # UNCONFIRMED: the error name; the docs only say form-encoded POST is unsupported.
            raise ApiError.validation("request body must be JSON (Content-Type: application/json)")
        return Params.from_query(request.body.decode("utf-8", "replace")), None
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise ApiError.validation("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError.validation("request body must be a JSON object")
    return Params.from_json(body), None


def _error(exc: ApiError, header: dict[str, str], *, malformed: bool = False, drop: bool = False) -> RestResponse:
    body = exc.body()
    if malformed:
        body = body[: max(1, len(body) // 2)]
    return RestResponse(exc.status, body, dict(header), drop=drop)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upbit-sim"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection is closed after this

    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms each
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        request = RestRequest(
            method=method, path=path, query=query, body=body, client=self.client_address[0],
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        response = self.server.app.handle(request)
        if response.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. timed out on a delay fault)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s " + format, self.client_address[0], *args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self, address: tuple[str, int], app: RestApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]  # a TCP server: sockets only
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]  # a TCP server: sockets only
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer


class RestServer:
    """The threaded HTTP server on ``host:port`` (0: a free port) serving a :class:`RestApp`."""

    def __init__(self, app: RestApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._server = _HttpServer((host, port), app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="upbit-sim-rest", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close open connections, and join every thread."""
        self._app.stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.close_open_connections()
        self._server.server_close()
