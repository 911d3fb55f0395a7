"""Telegram Bot API client: ``sendMessage`` and ``getUpdates`` over one ``requests`` session.

Edge rules (errors classified once, here):
- ``429`` → ``TelegramRateLimited`` carrying ``retry_after`` from ``parameters.retry_after``; the
  caller waits at least that long before sending again (Telegram's own instruction).
- ``5xx``, timeouts and connection errors → ``TelegramUnavailable``; retried here a bounded
  number of times with jittered exponential backoff (``tenacity``), and counted by a circuit
  breaker (``pybreaker``) so an outage costs one fast failure per call, not a stall.
- other ``4xx`` (bad token, chat not found, bot blocked) → ``TelegramRejected``: a configuration
  problem a person must fix; never retried, and excluded from the breaker.
The bot token is part of every URL, so nothing from ``requests`` leaves this module unmasked:
messages are rebuilt from the status and Telegram's description only.

Client-side pacing keeps under Telegram's documented limits before it has to say 429: about one
message per second per chat and 30 per second overall (``Pacer``; clock injected).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pybreaker
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

TEXT_LIMIT = 4096  # sendMessage's limit on text length, in characters
PER_CHAT_INTERVAL_S = 1.0
GLOBAL_PER_SECOND = 30


class TelegramError(Exception):
    """Base of every Telegram failure leaving this module (never contains the token)."""


class TelegramUnavailable(TelegramError):
    """Telegram could not be reached or answered 5xx (retryable later)."""


class TelegramRateLimited(TelegramError):
    """Telegram answered 429: wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float, description: str) -> None:
        super().__init__(f"rate limited by Telegram, retry after {retry_after:g} s: {description}")
        self.retry_after = retry_after


class TelegramRejected(TelegramError):
    """Telegram refused the request (bad token, unknown chat, …): fix the configuration."""


class TelegramBreakerOpen(TelegramError):
    """Recent calls failed; Telegram is not called until the breaker half-opens."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """One incoming message from ``getUpdates``.

    ``sender_id`` is the sending *user* (``from.id``; 0 when Telegram gives none, e.g. a channel
    post): in a group it tells members apart, where ``chat_id`` is the same for all of them.
    ``sender_name`` is the user's ``@username`` when it has one, else ``""`` — only Telegram's
    username alphabet passes, so a display name can never write into an audit line.
    """

    update_id: int
    chat_id: int
    sender_id: int
    sender_name: str
    text: str


_USERNAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def _user_id(raw: object) -> int:
    """``from.id`` as an int; 0 (nobody) when missing or not a whole number."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return 0
    try:
        return int(raw)
    except ValueError:
        return 0


class Pacer:
    """Spaces messages: per chat and overall (thread-safe; clock and sleep injected)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_by_chat: dict[int, float] = {}
        self._recent: list[float] = []

    def wait_turn(self, chat_id: int) -> None:
        with self._lock:
            now = self._clock()
            due = self._last_by_chat.get(chat_id, -1e18) + PER_CHAT_INTERVAL_S
            self._recent = [t for t in self._recent if t > now - 1.0]
            if len(self._recent) >= GLOBAL_PER_SECOND:
                due = max(due, self._recent[0] + 1.0)
            if due > now:
                self._sleep(due - now)
                now = self._clock()
            self._last_by_chat[chat_id] = now
            self._recent.append(now)


class TelegramClient:
    """The Bot API calls the notifier needs."""

    def __init__(self, api_url: str, token: str, *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (3.05, 10.0), pacer: Pacer | None = None,
                 attempts: int = 3, breaker: pybreaker.CircuitBreaker | None = None,
                 retry_sleep: Callable[[float], None] = time.sleep) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._session = session or requests.Session()
        self._timeout = timeout
        self._pacer = pacer or Pacer()
        self._attempts = attempts
        self._retry_sleep = retry_sleep
        self.breaker = breaker or pybreaker.CircuitBreaker(
            fail_max=5, reset_timeout=30, exclude=[TelegramRejected, TelegramRateLimited], name="telegram")

    def send_message(self, chat_id: int, text: str) -> int:
        """Send one message (≤ ``TEXT_LIMIT`` characters); its message id."""
        if len(text) > TEXT_LIMIT:
            raise ValueError(f"message of {len(text)} characters exceeds Telegram's {TEXT_LIMIT}")
        self._pacer.wait_turn(chat_id)
        result = self._call("sendMessage", {"chat_id": chat_id, "text": text, "disable_web_page_preview": True})
        return int(result["message_id"])

    def get_updates(self, offset: int | None, timeout_s: int) -> list[Update]:
        """Long-poll for new messages (``timeout_s`` seconds at most)."""
        params: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        # Not through the breaker: pybreaker serialises every call it guards, so a long poll held
        # in it would make each sendMessage wait for the poll to end.
        result = self._call("getUpdates", params, read_timeout=timeout_s + self._timeout[1], guarded=False)
        updates = []
        for item in result:
            message = item.get("message") or {}
            chat = message.get("chat") or {}
            sender = message.get("from") or {}
            username = str(sender.get("username") or "")
            updates.append(Update(update_id=int(item["update_id"]), chat_id=int(chat.get("id", 0)),
                                  sender_id=_user_id(sender.get("id")),
                                  sender_name=username if _USERNAME.fullmatch(username) else "",
                                  text=str(message.get("text", ""))))
        return updates

    def _call(self, method: str, payload: dict[str, Any], *, read_timeout: float | None = None,
              guarded: bool = True) -> Any:
        retrying = Retrying(retry=retry_if_exception_type(TelegramUnavailable),
                            wait=wait_random_exponential(multiplier=0.2, max=3),
                            stop=stop_after_attempt(self._attempts), reraise=True, sleep=self._retry_sleep)
        if not guarded:
            return retrying(self._post, method, payload, read_timeout)
        try:
            return self.breaker.call(lambda: retrying(self._post, method, payload, read_timeout))
        except pybreaker.CircuitBreakerError:
            raise TelegramBreakerOpen(f"Telegram calls suspended after repeated failures ({method})") from None

    def _post(self, method: str, payload: dict[str, Any], read_timeout: float | None) -> Any:
        timeout = (self._timeout[0], read_timeout or self._timeout[1])
        try:
            response = self._session.post(f"{self._base}/{method}", json=payload, timeout=timeout)
        except requests.RequestException as exc:  # the exception text holds the URL (and the token)
            raise TelegramUnavailable(f"{method}: {type(exc).__name__} talking to Telegram") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        description = str(body.get("description", response.reason or ""))[:300]
        if response.status_code == 200 and body.get("ok"):
            return body["result"]
        if response.status_code == 429:
            retry_after = float((body.get("parameters") or {}).get("retry_after", 1))
            raise TelegramRateLimited(retry_after, description)
        if response.status_code >= 500:
            raise TelegramUnavailable(f"{method}: HTTP {response.status_code} {description}")
        raise TelegramRejected(f"{method}: HTTP {response.status_code} {description}")
