"""A scripted Upbit-shaped HTTP server on loopback, for the client's wire-level tests.

Not a simulator (that is ``upbit_sim``): each test queues the exact answers it wants per
``METHOD /path`` (status, JSON or raw body, headers, a delay, or a dropped connection) and reads
back every request received. Like Upbit, it checks the JWT of requests that carry one (HS256 or
HS512, and ``query_hash`` against the percent-decoded query or the JSON body's parameters), and
sends ``Remaining-Req`` on every answer unless told not to.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt


@dataclass
class Answer:
    status: int = 200
    body: Any = None                  # JSON-encoded unless ``raw`` is set
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    remaining: str | None = "group=default; min=1800; sec=29"
    delay_s: float = 0.0
    drop: bool = False                # close the connection without answering


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any] | None
    auth_error: str | None

    def params(self) -> list[tuple[str, str]]:
        if self.method == "POST" and self.body:
            out: list[tuple[str, str]] = []
            for k, v in json.loads(self.body).items():
                out.extend((k, x) for x in v) if isinstance(v, list) else out.append((k, str(v)))
            return out
        return parse_qsl(self.query, keep_blank_values=True)


class ScriptedUpbit:
    """``with ScriptedUpbit(secret=...) as srv: srv.script("GET /v1/accounts", Answer(...))``."""

    def __init__(self, *, secret: str = "SECRET") -> None:
        self.secret = secret
        self._answers: dict[str, deque[Answer]] = defaultdict(deque)
        self._defaults: dict[str, Answer] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                outer._serve(self)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="scripted-upbit", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ScriptedUpbit:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def script(self, route: str, *answers: Answer) -> None:
        with self._lock:
            self._answers[route].extend(answers)

    def default(self, route: str, answer: Answer) -> None:
        with self._lock:
            self._defaults[route] = answer

    def requests_to(self, route: str) -> list[Received]:
        method, path = route.split(" ", 1)
        with self._lock:
            return [r for r in self.received if r.method == method and r.path == path]

    # ---- serving ------------------------------------------------------------------------------

    def _verify(self, rec: Received) -> tuple[dict[str, Any] | None, str | None]:
        auth = rec.headers.get("Authorization")
        if not auth:
            return None, None
        token = auth.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256", "HS512"])
        except jwt.PyJWTError as exc:
            return None, f"jwt_verification: {exc}"
        params = rec.params()
        if params:
            raw = "&".join(f"{k}={v}" for k, v in params)
            if claims.get("query_hash") != hashlib.sha512(raw.encode()).hexdigest():
                return claims, "invalid_query_payload"
        elif "query_hash" in claims:
            return claims, "invalid_query_payload"
        return claims, None

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Received(h.command, split.path, split.query, dict(h.headers.items()), body, None, None)
        rec.claims, rec.auth_error = self._verify(rec)
        route = f"{h.command} {split.path}"
        with self._lock:
            self.received.append(rec)
            queue = self._answers.get(route)
            answer = queue.popleft() if queue else self._defaults.get(route)
        if rec.auth_error:
            name = rec.auth_error.split(":")[0]
            answer = Answer(401, {"error": {"name": name, "message": rec.auth_error}})
        if answer is None:
            answer = Answer(404, {"error": {"name": 404, "message": f"No route for {route}"}})
        if answer.delay_s:
            self._stop.wait(answer.delay_s)
        if answer.drop:
            h.close_connection = True
            h.connection.shutdown(2)  # RST/FIN without an HTTP answer
            return
        payload = answer.raw if answer.raw is not None else json.dumps(answer.body).encode()
        try:
            h.send_response(answer.status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            h.send_header("Content-Length", str(len(payload)))
            if answer.remaining is not None:
                h.send_header("Remaining-Req", answer.remaining)
            for k, v in answer.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout)


@contextmanager
def scripted_upbit(secret: str = "SECRET") -> Iterator[ScriptedUpbit]:
    with ScriptedUpbit(secret=secret) as srv:
        yield srv

