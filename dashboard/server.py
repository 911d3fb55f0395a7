"""``DashboardServer``: the HTTP edge — routes, static files, headers, redaction; no logic of its own.

Routes (GET and HEAD only; anything else is 405):

- ``/`` the page; ``/static/<file>`` its script, styles and the vendored chart library;
- ``/api/status`` the status document (``dashboard.status``), 503 with ``database.ok = false``
  when the database cannot be read; ``/api/series?market=KRW-BTC&limit=1800`` the chart series;
- ``/healthz`` 200 or 503 with a JSON reason (``dashboard.health``);
- ``/metrics`` Prometheus text format (``dashboard.metrics``).

Every dynamic body passes through ``redact`` (the configured secrets' masks) before it leaves,
as a second line of defence: the tables it reads hold no secrets by design.

Who may read it (the page shows balances, positions and orders):

- **No token** (the default; only allowed on a loopback bind address): a request whose ``Host``
  is not exactly a loopback name is refused with 421, so a web page the operator visits cannot
  read the dashboard through DNS rebinding. Loopback means ``localhost`` or an IP literal that
  parses as loopback (``127.0.0.0/8``, ``::1`` / ``[::1]``), with an optional ``:port`` that must be
  a valid port (any port: an SSH tunnel forwards from a port of its own). ``127.attacker.example``
  is a host name, not a loopback address. A request with no ``Host`` at all (HTTP/1.0 tools) is
  served; browsers always send one.
- **A token** (``DASHBOARD_TOKEN``; required on any other bind address): every request except
  ``/healthz`` must present it — ``Authorization: Bearer <token>``, ``?token=<token>``, or the
  cookie the page sets: ``GET /?token=<token>`` answers 303 to ``/`` with an ``HttpOnly``,
  ``SameSite=Strict`` cookie holding an HMAC of the token (not the token), so the address bar
  and history lose the token and the page's own fetches carry the cookie. Anything else is 401.
  Compared with ``hmac.compare_digest``. The ``Host`` check is then replaced by the token: a
  rebinding page has neither the token nor the cookie (cookies belong to the dashboard's own
  host name). ``/healthz`` stays open because health checkers rarely send headers, and it tells
  only healthy-or-not and why. Plain HTTP: on an untrusted network put TLS (a reverse proxy) or
  an SSH tunnel in front, or the token can be sniffed. Request lines are logged without their
  query string, so a ``?token=`` never reaches a log.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dashboard.db import ReadOnlyPool
from dashboard.health import database_down
from dashboard.metrics import DashboardCollector
from dashboard.rates import RateTracker
from config.parsing import is_loopback_host
from config.secret import Secret
from dashboard.status import Limits, build_health, build_series, build_status
from persistence.errors import DatabaseError
from model.clock import Clock, SystemClock

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
COOKIE = "upbit_dashboard"
"""The cookie the page carries once opened with ``?token=``: an HMAC of the token, never the token."""
_OPEN_PATHS = frozenset({"/healthz"})  # answered without the token (see the module docstring)
_TEXT = "text/plain; charset=utf-8"
_QUERY = re.compile(r"\?[^\s\"]*")


class DashboardServer:
    """The read-only status page, health check and metrics of a system, served from its database."""

    def __init__(self, db_url: str, *, host: str, port: int, clock: Clock | None = None,
                 heartbeat_stale_s: float = 5.0, feed_stale_s: float = 30.0, poll_interval_s: float = 2.0,
                 redact: Callable[[str], str] | None = None, pool_size: int = 4, token: Secret | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        if token is None and not is_loopback_host(host):
            raise ValueError(f"a dashboard bound to {host}, which is not a loopback address, needs a token"
                             " (DASHBOARD_TOKEN): the page shows balances and orders")
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
        self.loopback_only = token is None
        self._token = token.reveal().encode() if token is not None else None
        self.cookie_value = _cookie_value(self._token) if self._token is not None else None
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

    def token_matches(self, candidates: list[str]) -> bool:
        """True when one of ``candidates`` is the token (constant-time; False when no token is set)."""
        if self._token is None:
            return False
        return any(hmac.compare_digest(c.encode("utf-8", "surrogatepass"), self._token) for c in candidates if c)

    def cookie_matches(self, headers: list[str]) -> bool:
        """True when a ``Cookie`` header carries the cookie the page was given (constant-time)."""
        if self.cookie_value is None:
            return False
        expected = self.cookie_value.encode()
        for header in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue  # a malformed Cookie header proves nothing; the request is refused unless it has more
            morsel = jar.get(COOKIE)
            if morsel is not None and hmac.compare_digest(morsel.value.encode("utf-8", "surrogatepass"), expected):
                return True
        return False


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
        url = urlsplit(self.path)
        path = url.path
        if not self._admitted(app, path, parse_qs(url.query, keep_blank_values=True)):
            return
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

    def _admitted(self, app: DashboardServer, path: str, query: dict[str, list[str]]) -> bool:
        """Apply the Host rule (no token) or the token rule; answer and return False when refused."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            self._send(HTTPStatus.BAD_REQUEST, b"more than one Host header\n", _TEXT)
            return False
        if app.loopback_only:
            if loopback_host_header(hosts[0] if hosts else ""):
                return True
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"this dashboard answers only to localhost\n", _TEXT)
            return False
        if path in _OPEN_PATHS:
            return True
        by_query = app.token_matches(query.get("token", []))
        if not by_query and not app.token_matches([_bearer(self.headers.get("Authorization", ""))]) \
                and not app.cookie_matches(self.headers.get_all("Cookie") or []):
            self._send(HTTPStatus.UNAUTHORIZED, b"this dashboard needs its token (DASHBOARD_TOKEN): open"
                       b" /?token=<token> once in the browser, or send 'Authorization: Bearer <token>'\n", _TEXT,
                       extra={"WWW-Authenticate": 'Bearer realm="upbit-trader dashboard"'})
            return False
        if by_query and path in {"/", "/index.html"}:  # into a cookie, and out of the address bar
            rest = urlencode([(k, v) for k, values in query.items() if k != "token" for v in values])
            cookie = f"{COOKIE}={app.cookie_value}; Path=/; HttpOnly; SameSite=Strict"
            self._send(HTTPStatus.SEE_OTHER, b"", _TEXT, extra={"Location": "/" + (f"?{rest}" if rest else ""),
                                                                 "Set-Cookie": cookie})
            return False
        return True

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
        # without query strings: a ``?token=`` must not reach the log
        log.debug("%s %s", self.address_string(), _QUERY.sub("?…", format % args))


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def loopback_host_header(value: str) -> bool:
    """True for a ``Host`` header naming this machine's loopback exactly (see the module docstring).

    ``localhost``, ``127.0.0.1``, ``127.1.2.3:8765``, ``[::1]:8765``, ``::1`` are loopback;
    ``127.attacker.example``, ``localhost.attacker.example``, ``127.0.0.1:0``, ``127.0.0.1:99999``,
    ``127.0.0.1:+80`` and ``[::1`` are not. Empty (no ``Host`` sent) is accepted.
    """
    host = value.strip()
    if not host:
        return True
    if host.startswith("["):  # [IPv6]:port
        name, bracket, port = host[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return False
        return _valid_port(port[1:], present=bool(port)) and ":" in name and _loopback_ip(name)  # IPv6 only
    if host.count(":") > 1:  # a bare IPv6 literal cannot carry a port
        return _loopback_ip(host)
    name, colon, port = host.partition(":")
    if not _valid_port(port, present=bool(colon)):
        return False
    return name.lower() == "localhost" or _loopback_ip(name)


def _loopback_ip(text: str) -> bool:
    """A literal that parses as a loopback IP address (never a name: no DNS, no prefixes)."""
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _valid_port(text: str, *, present: bool) -> bool:
    if not present:
        return True
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


def _bearer(value: str) -> str:
    scheme, _, credential = value.strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def _cookie_value(token: bytes) -> str:
    return hmac.new(token, b"upbit-trader dashboard cookie v1", hashlib.sha256).hexdigest()
