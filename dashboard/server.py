"""``DashboardServer``: the HTTP edge — routes, static files, headers, redaction; no logic of its own.

Routes (GET and HEAD only; anything else is 405):

- ``/`` the page; ``/static/<file>`` its script, styles and the vendored chart library;
- ``/api/status`` the status document (``dashboard.status``), 503 with ``database.ok = false``
  when the database cannot be read; ``/api/series?market=KRW-BTC&limit=1800`` the chart series;
- ``/healthz`` 200 or 503 with a JSON reason (``dashboard.health``);
- ``/metrics`` Prometheus text format (``dashboard.metrics``).

Every dynamic body passes through ``redact`` (the configured secrets' masks) before it leaves,
as a second line of defence: the tables it reads hold no secrets by design. When bound to a
loopback address, requests whose ``Host`` is not a loopback name are refused (421), so a web
page the operator visits cannot read the dashboard through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dashboard.db import ReadOnlyPool
from dashboard.health import database_down
from dashboard.metrics import DashboardCollector
from dashboard.rates import RateTracker
from dashboard.status import Limits, build_health, build_series, build_status
from persistence.errors import DatabaseError
from supervisor.clock import Clock, SystemClock

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".LICENSE": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
                               " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none';"
                               " base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class DashboardServer:
    """The read-only status page, health check and metrics of a system, served from its database."""

    def __init__(self, db_url: str, *, host: str, port: int, clock: Clock | None = None,
                 heartbeat_stale_s: float = 5.0, feed_stale_s: float = 30.0, poll_interval_s: float = 2.0,
                 redact: Callable[[str], str] | None = None, pool_size: int = 4) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        if poll_interval_s <= 0:
            raise ValueError(f"poll interval must be > 0 s, got {poll_interval_s}")
        self.host = host
        self._requested_port = port
        self.clock: Clock = clock or SystemClock()
        self.limits = Limits(heartbeat_stale_s=heartbeat_stale_s, feed_stale_s=feed_stale_s)
        self.poll_ms = int(poll_interval_s * 1000)
        self.redact: Callable[[str], str] = redact or (lambda text: text)
        self.pool = ReadOnlyPool(db_url, size=pool_size)
        self.rates = RateTracker()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DashboardCollector(self.pool, self.clock.now, self.limits))
        self.loopback_only = _is_loopback(host)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind and serve in a background thread; the bound port (``port=0`` picks a free one)."""
        if self._httpd is not None:
            raise RuntimeError("the dashboard is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd = _HTTPServer((self.host, self._requested_port), _Handler, app=self, family=family)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="dashboard-http", daemon=True)
        self._thread.start()
        log.info("dashboard serving on %s", self.url)
        return self.port

    @property
    def port(self) -> int:
        """The bound port (after ``start``)."""
        if self._httpd is None:
            raise RuntimeError("the dashboard is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port/`` of the page."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        """Stop serving, wait for the serving thread, close the database connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.pool.close()

    def __enter__(self) -> DashboardServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- what the handler calls --------------------------------------------------------------

    def status(self) -> tuple[int, dict[str, Any]]:
        try:
            with self.pool.snapshot() as conn:
                return 200, build_status(conn, self.clock, self.limits, self.rates)
        except DatabaseError as exc:
            return 503, {"generated_at": self.clock.now(), "database": {"ok": False, "error": str(exc)},
                         "health": database_down(str(exc))}

    def series(self, market: str | None, limit: int) -> tuple[int, dict[str, Any]]:
        try:
            with self.pool.snapshot() as conn:
                return 200, build_series(conn, self.clock, market, limit)
        except DatabaseError as exc:
            return 503, {"generated_at": self.clock.now(), "database": {"ok": False, "error": str(exc)}}

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with self.pool.snapshot() as conn:
                verdict = build_health(conn, self.clock, self.limits)
        except DatabaseError as exc:
            verdict = database_down(str(exc))
        return int(verdict["status"]), verdict

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, app: DashboardServer,
                 family: socket.AddressFamily) -> None:
        self.address_family = family
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "upbit-trader-dashboard"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=False)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: GET and HEAD only\n", "text/plain; charset=utf-8",
                   extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815 - http.server's naming

    def _serve(self, *, body: bool) -> None:
        app = self.server.app
        self._with_body = body
        if app.loopback_only and not _loopback_host_header(self.headers.get("Host", "")):
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"this dashboard answers only to localhost\n",
                       "text/plain; charset=utf-8")
            return
        url = urlsplit(self.path)
        path = url.path
        try:
            if path in {"/", "/index.html"}:
                page = (STATIC / "index.html").read_text().replace("{{POLL_MS}}", str(app.poll_ms))
                self._send(200, app.redact(page).encode(), _TYPES[".html"])
            elif path.startswith("/static/"):
                self._static(path.removeprefix("/static/"))
            elif path == "/api/status":
                self._json(*app.status())
            elif path == "/api/series":
                query = parse_qs(url.query)
                market = query.get("market", [None])[0] or None
                limit = _int(query.get("limit", [""])[0], 1_800)
                self._json(*app.series(market, limit))
            elif path == "/healthz":
                self._json(*app.health())
            elif path == "/metrics":
                self._send(200, app.redact(app.metrics().decode()).encode(), CONTENT_TYPE_LATEST)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        except Exception:  # noqa: BLE001 - one failed request must not take the page down; it is logged
            log.exception("dashboard request %s failed", path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error (see the system log)\n",
                       "text/plain; charset=utf-8")

    def _static(self, name: str) -> None:
        files = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}
        path = files.get(name)
        if path is None or name == "index.html":
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return
        kind = _TYPES.get(path.suffix, "application/octet-stream")
        self._send(200, path.read_bytes(), kind, extra={"Cache-Control": "no-cache"})

    def _json(self, status: int, document: dict[str, Any]) -> None:
        text = orjson.dumps(document, default=_json_default, option=orjson.OPT_UTC_Z).decode()
        self._send(status, self.server.app.redact(text).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", (extra or {}).get("Cache-Control", "no-store"))
        for key, value in {**_SECURITY_HEADERS, **(extra or {})}.items():
            if key != "Cache-Control":
                self.send_header(key, value)
        self.end_headers()
        if getattr(self, "_with_body", True):
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_host_header(value: str) -> bool:
    """True for a loopback ``Host`` (browsers always send one; HTTP/1.0 tools may send none)."""
    host = value.strip().lower()
    if not host:
        return True
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in _LOOPBACK_NAMES or host.startswith("127.")
