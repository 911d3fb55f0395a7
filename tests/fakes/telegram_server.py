"""A fake Telegram Bot API server on loopback that speaks the real wire protocol.

``POST|GET /bot<token>/<method>`` with JSON or form parameters; answers
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …,
"parameters": {"retry_after": …}}`` exactly as the Bot API does. Methods: ``getMe``,
``sendMessage`` (4096-character limit enforced), ``getUpdates`` (long polling with ``offset`` and
``timeout``; each message from a user id of the test's choosing, so a group chat with several
members can be played), ``getChat`` (``chats``: the chat ids the bot can reach; ``None``, the default, means
every chat, else an unknown one answers 400 "Bad Request: chat not found"). Faults, scripted from the test: the next N calls answer 5xx, 429 with
``retry_after``, or are delayed (to trigger client timeouts); ``down()``/``up()`` for an outage.
Everything received is recorded for assertions.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.drill.telegram_stub import answer, read_call, serve


@dataclass
class Faults:
    fail_5xx: int = 0
    rate_limit: int = 0
    retry_after: int = 1
    delay_s: float = 0.0
    delay_calls: int = 0
    down: bool = False


@dataclass
class FakeTelegram:
    token: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    chats: set[int] | None = None  # getChat: the chats the bot can reach; None = every chat
    _updates: deque = field(default_factory=deque)
    _next_update_id: int = 1000
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeTelegram:
        self._server = serve(self._handle, "fake-telegram")
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -------------------------------------------------------------------------
    def user_says(self, chat_id: int, text: str, username: str | None = "operator", user_id: int | None = None,
                  first_name: str = "Op") -> None:
        """A message from user ``user_id`` (``from.id``; default ``chat_id``, as in a private chat) in
        ``chat_id`` (a negative id is a supergroup); ``username=None``: a user without one."""
        sender: dict[str, Any] = {"id": chat_id if user_id is None else user_id, "is_bot": False,
                                  "first_name": first_name}
        if username is not None:
            sender["username"] = username
        with self._lock:
            self._updates.append({"update_id": self._next_update_id, "message": {
                "message_id": self._next_update_id, "date": int(time.time()), "text": text,
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}, "from": sender}})
            self._next_update_id += 1
            self._lock.notify_all()

    def texts(self) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.messages]

    # --- protocol --------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        segments, params = read_call(req)
        if len(segments) != 2 or segments[0] != f"bot{self.token}":
            answer(req, 401 if segments[0].startswith("bot") else 404,
                         {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        method = segments[1]
        with self._lock:
            self.calls.append(method)
            f = self.faults
            delay = 0.0
            if f.delay_calls > 0:
                f.delay_calls -= 1
                delay = f.delay_s
            if f.down or f.fail_5xx > 0:
                f.fail_5xx = max(0, f.fail_5xx - 1)
                status, refusal = 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
            elif f.rate_limit > 0 and method == "sendMessage":
                f.rate_limit -= 1
                status, refusal = 429, {"ok": False, "error_code": 429,
                                        "description": f"Too Many Requests: retry after {f.retry_after}",
                                        "parameters": {"retry_after": f.retry_after}}
            else:
                status, refusal = 0, None
        if delay:
            time.sleep(delay)  # simulating a slow server (this is the fake, not a test waiting)
        if refusal is not None:
            answer(req, status, refusal)
            return
        if method == "getMe":
            answer(req, 200, {"ok": True, "result": {"id": 1, "is_bot": True, "username": "fake_bot"}})
        elif method == "sendMessage":
            self._send_message(req, params)
        elif method == "getUpdates":
            self._get_updates(req, params)
        elif method == "getChat":
            self._get_chat(req, params)
        else:
            answer(req, 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})

    def _send_message(self, req: BaseHTTPRequestHandler, params: dict[str, Any]) -> None:
        text = str(params.get("text", ""))
        if "chat_id" not in params or not text:
            answer(req, 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})
            return
        if len(text) > 4096:
            answer(req, 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})
            return
        with self._lock:
            message = {"message_id": len(self.messages) + 1, "chat": {"id": int(params["chat_id"])}, "text": text,
                       "date": int(time.time())}
            self.messages.append(message)
            self._lock.notify_all()
        answer(req, 200, {"ok": True, "result": message})

    def _get_chat(self, req: BaseHTTPRequestHandler, params: dict[str, Any]) -> None:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, TypeError, ValueError):
            answer(req, 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat_id is empty"})
            return
        if self.chats is not None and chat_id not in self.chats:
            answer(req, 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
            return
        kind = "private" if chat_id > 0 else "supergroup"
        answer(req, 200, {"ok": True, "result": {"id": chat_id, "type": kind, "title": f"chat {chat_id}"}})

    def _get_updates(self, req: BaseHTTPRequestHandler, params: dict[str, Any]) -> None:
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        deadline = time.monotonic() + timeout
        with self._lock:
            while offset:
                if self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()  # confirmed by the client
                else:
                    break
            while not self._updates and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            result = list(self._updates)
        answer(req, 200, {"ok": True, "result": result})
