"""The preflight's read-only guarantee, enforced in code: only ``GET`` ever leaves this process.

:class:`ReadOnlySession` is a ``requests.Session`` whose :meth:`~ReadOnlySession.send` — the one
funnel every request (and every redirect) of a session goes through — raises
:class:`ReadOnlyViolation` for any other method *before* a connection is opened. The Upbit client
and the Telegram probe of the preflight are built on it (:func:`read_only_upbit`), so an order,
a test order or a cancel cannot be sent by a preflight, whatever code path asks for one.

It also keeps a log of the answers it received (status, ``Date``, ``Remaining-Req`` and the local
wall-clock time around each exchange): the clock-skew and rate-limit checks read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from exchange.rest import UpbitClient

__all__ = ["Answer", "ReadOnlySession", "ReadOnlyViolation", "read_only_upbit"]

UPBIT_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)


class ReadOnlyViolation(RuntimeError):
    """Something asked the preflight to send a non-GET request; nothing was sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One HTTP exchange as the preflight saw it (the path only: no query, no host)."""

    method: str
    path: str
    status: int
    date: str | None  # the Date header, as sent
    remaining_req: str | None  # the Remaining-Req header, as sent
    sent_at: float  # local wall clock (epoch seconds) just before sending
    received_at: float  # … and once the answer was in

    def to_json(self) -> dict[str, object]:
        return {"method": self.method, "path": self.path, "status": self.status, "date": self.date,
                "remaining_req": self.remaining_req, "ms": round((self.received_at - self.sent_at) * 1000, 1)}


class ReadOnlySession(requests.Session):
    """A session that refuses to send anything but GET, and records every answer."""

    def __init__(self, *, wall: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._wall = wall
        self.answers: list[Answer] = []
        self.refused: list[str] = []  # "METHOD /path" of every refused attempt

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # noqa: ANN401
        """Send ``request`` if it is a GET; otherwise raise :class:`ReadOnlyViolation` (nothing sent)."""
        method = (request.method or "").upper()
        path = urlsplit(request.url or "").path
        if method != "GET":
            self.refused.append(f"{method} {path}")
            raise ReadOnlyViolation(f"the preflight is read-only: refused to send {method} {path}")
        sent_at = self._wall()
        response = super().send(request, **kwargs)
        self.answers.append(Answer(method=method, path=path, status=response.status_code,
                                   date=response.headers.get("Date"),
                                   remaining_req=response.headers.get("Remaining-Req"),
                                   sent_at=sent_at, received_at=self._wall()))
        return response


def read_only_upbit(base_url: str, *, access_key: str, secret_key: str, wall: Callable[[], float] = time.time,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[UpbitClient, ReadOnlySession]:
    """An :class:`UpbitClient` on a :class:`ReadOnlySession`, and that session.

    One attempt per call (a preflight reports; it does not retry into a rate limit). The caller
    closes the session.
    """
    session = ReadOnlySession(wall=wall)
    client = UpbitClient(base_url, access_key=access_key, secret_key=secret_key, session=session, sleep=sleep,
                         timeout=UPBIT_TIMEOUT, max_attempts=1)
    return client, session
