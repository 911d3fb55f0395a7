"""A minimal Telegram Bot API on loopback for a drill: records every message, can be "down".

``POST /bot<token>/<method>`` (JSON or form parameters), answered as the Bot API does:
``sendMessage`` records the text and answers ``{"ok": true, "result": {...}}``; ``getUpdates``
waits up to its ``timeout`` and answers no update (the drill sends no commands); ``getMe`` and
``getChat`` answer plausibly. While :meth:`TelegramStub.down` is in force every call answers
``502 Bad Gateway`` — the outage the notifier must ride out without losing or doubling an alert.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "123456:drill-token"
CHAT_ID = 4242
MAX_POLL_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One accepted ``sendMessage``."""

    at: float  # time.time() when it was accepted
    text: str


class TelegramStub:
    """The stub server (start, use, stop; thread-safe)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._down = False
        self._refused = 0
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> TelegramStub:
        self._server = serve(self._handle, "drill-telegram")
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def down(self) -> None:
        """From now on every call answers 502."""
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def refused(self) -> int:
        """Calls answered 502 while down."""
        with self._lock:
            return self._refused

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        segments, params = read_call(req)
        if len(segments) != 2 or segments[0] != f"bot{self.token}":
            answer(req, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        method = segments[1]
        with self._lock:
            down = self._down
            if down:
                self._refused += 1
        if down:
            answer(req, 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
        elif method == "sendMessage":
            self._send_message(req, params)
        elif method == "getUpdates":
            timeout = min(float(params.get("timeout", 0) or 0), MAX_POLL_S)
            self._closing.wait(timeout)  # a long poll that never has an update
            answer(req, 200, {"ok": True, "result": []})
        elif method == "getMe":
            answer(req, 200, {"ok": True, "result": {"id": 1, "is_bot": True, "username": "drill_bot"}})
        elif method == "getChat":
            answer(req, 200, {"ok": True, "result": {"id": int(params.get("chat_id", CHAT_ID)), "type": "private"}})
        else:
            answer(req, 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})

    def _send_message(self, req: BaseHTTPRequestHandler, params: dict[str, Any]) -> None:
        text = str(params.get("text", ""))
        if "chat_id" not in params or not text:
            answer(req, 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})
            return
        with self._lock:
            self._messages.append(Received(at=time.time(), text=text))
            message_id = len(self._messages)
        answer(req, 200, {"ok": True, "result": {"message_id": message_id, "chat": {"id": int(params["chat_id"])},
                                                  "date": int(time.time()), "text": text}})


# --- the Bot API's HTTP plumbing (the tests' fake Telegram server is built on it too) -----------


def serve(handle: Callable[[BaseHTTPRequestHandler], None], name: str) -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port, serving in a daemon thread named ``name``, that hands
    every GET and POST to ``handle``; stop it with ``shutdown()`` and ``server_close()``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            handle(self)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True).start()
    return server


def read_call(req: BaseHTTPRequestHandler) -> tuple[list[str], dict[str, Any]]:
    """The path's segments (``["bot<token>", "<method>"]``) and the call's parameters: the query
    string's, then the body's (JSON or form-encoded), as the Bot API accepts either."""
    parts = urlsplit(req.path)
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    length = int(req.headers.get("Content-Length") or 0)
    if length:
        body = req.rfile.read(length)
        if (req.headers.get("Content-Type") or "").startswith("application/json"):
            params.update(json.loads(body))
        else:
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
    return parts.path.strip("/").split("/"), params


def answer(req: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    """Answer with ``body`` as JSON (a client that already gave up gets nothing)."""
    data = json.dumps(body).encode()
    try:
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (a timeout): nothing to answer
