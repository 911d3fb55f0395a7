"""The live Upbit trade feed: a blocking WebSocket client with bounded, jittered reconnects.

:class:`UpbitTradeStream` is the only place in ``market/`` that touches the network. It runs a
``websockets.sync.client`` connection in the caller's thread (an actor's own thread):

1. connect to the public endpoint (``wss://api.upbit.com/websocket/v1``);
2. send the subscription (:func:`market.frames.subscription_message`) as a text frame;
3. receive binary frames, decode them with :func:`market.frames.decode_trade`, and hand the
   trades to ``on_trades`` in small batches (whatever has already arrived, up to
   ``batch_max``), in arrival order;
4. on a lost connection, wait a jittered, exponentially growing, capped delay and reconnect,
   until ``stop`` is set (then :meth:`~UpbitTradeStream.run` returns).

Keepalive, per Upbit's docs: RFC 6455 ping/pong is supported by the server. Pings from the
server are answered by the websockets library automatically; the client also pings every
``ping_interval_s`` (Upbit closes a connection idle for ~120 s). ``{"status":"UP"}`` messages
(the answer to a text ``PING``) are accepted and ignored.

Errors are classified here, once, into this module's exception types; no websockets exception
leaves :meth:`~UpbitTradeStream.run`:

============================  ==========  ==================================================
exception                     retried?    cause
============================  ==========  ==================================================
(connection lost / refused)   yes         network errors, closes, handshake timeouts, HTTP
                                          429/5xx on the upgrade, no message for
                                          ``stale_after_s``
:class:`FeedUnavailable`      no          ``max_retries`` reconnects in a row failed with no
                                          message received
:class:`FeedRejected`         no          an ``{"error":…}`` frame (our request is wrong) or
                                          another HTTP status on the upgrade (401, 403, 418…)
:class:`FeedProtocolError`    no          a malformed trade frame
:class:`FeedConfigError`      no          a bad URL or market code
============================  ==========  ==================================================

Exceptions raised by ``on_trades`` propagate unchanged (after the connection is closed).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from model.market import Trade
from market.frames import MARKET_CODE, FrameError, UpbitStreamError, decode_trade, subscription_message

__all__ = [
    "UPBIT_PUBLIC_WS_URL",
    "Backoff",
    "FeedConfigError",
    "FeedError",
    "FeedProtocolError",
    "FeedRejected",
    "FeedUnavailable",
    "StreamSettings",
    "StreamState",
    "UpbitTradeStream",
]

UPBIT_PUBLIC_WS_URL: Final = "wss://api.upbit.com/websocket/v1"

_log = logging.getLogger(__name__)
_HTTP_TOO_MANY_REQUESTS: Final = 429  # rate limited: retry later (418, a temporary ban, is not retried)
_HTTP_SERVER_ERRORS: Final = 500  # and above: the server's problem, retry


# --- errors -----------------------------------------------------------------------------


class FeedError(Exception):
    """Base class of the live feed's errors; none of them is retried by the stream itself."""


class FeedConfigError(FeedError):
    """The stream is misconfigured (URL, market codes, settings): fix the configuration."""


class FeedRejected(FeedError):
    """The server refused us: an error frame, or an HTTP status other than 429/5xx on connect."""


class FeedProtocolError(FeedError):
    """The server sent a frame we cannot trust (a malformed trade)."""


class FeedUnavailable(FeedError):
    """Too many connection attempts in a row failed; the supervisor should decide what next."""


class _ConnectionLost(Exception):  # noqa: N818 -- internal signal, never escapes run()
    """Internal: the session ended for a reason worth retrying (never escapes ``run``)."""

    def __init__(self, reason: str, *, productive: bool) -> None:
        self.reason = reason
        self.productive = productive  # messages arrived: the link worked, reset the backoff
        super().__init__(reason)


class StreamState(str, Enum):
    """Connection state changes reported to ``on_state``."""

    CONNECTED = "connected"  # subscribed; trades may flow
    DISCONNECTED = "disconnected"  # the session ended; a reconnect follows unless stopping


# --- settings and backoff ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """Tunables of :class:`UpbitTradeStream`; each default is written next to its key."""

    fmt: Literal["DEFAULT", "SIMPLE"] = "SIMPLE"  # SIMPLE: short keys, smaller frames
    batch_max: int = 64  # most trades handed to on_trades at once
    poll_s: float = 0.25  # longest wait in recv before checking stop (stop latency)
    open_timeout_s: float = 10.0  # TCP + TLS + upgrade
    ping_interval_s: float | None = 20.0  # client keepalive pings (server idles out at ~120 s)
    ping_timeout_s: float | None = 20.0  # no pong within this: connection considered lost
    close_timeout_s: float = 5.0  # wait for the closing handshake
    max_frame_bytes: int = 1 << 20  # larger frames close the connection (1009)
    recv_queue: int = 1024  # messages buffered before reading pauses; roomy, because a paused
    # reader cannot see the server's close frame, so closing would wait close_timeout_s
    stale_after_s: float | None = None  # reconnect if no message for this long (None: never;
    # Upbit is silent while a market has no trades, so only set it for liquid markets)
    backoff_initial_s: float = 0.5  # first reconnect delay (before jitter)
    backoff_max_s: float = 30.0  # cap of the reconnect delay
    backoff_factor: float = 2.0  # growth per consecutive failure
    max_retries: int | None = 10  # reconnects in a row with no message, then FeedUnavailable;
    # None: retry forever

    def __post_init__(self) -> None:
        positive = {
            "poll_s": self.poll_s,
            "open_timeout_s": self.open_timeout_s,
            "close_timeout_s": self.close_timeout_s,
            "backoff_initial_s": self.backoff_initial_s,
            "backoff_max_s": self.backoff_max_s,
        }
        optional = {
            "ping_interval_s": self.ping_interval_s,
            "ping_timeout_s": self.ping_timeout_s,
            "stale_after_s": self.stale_after_s,
        }
        for name, value in {**positive, **{k: v for k, v in optional.items() if v is not None}}.items():
            if not (math.isfinite(value) and value > 0):
                raise FeedConfigError(f"{name} must be a positive number, got {value!r}")
        if self.fmt not in ("DEFAULT", "SIMPLE"):
            raise FeedConfigError(f"fmt must be 'DEFAULT' or 'SIMPLE', got {self.fmt!r}")
        if self.batch_max < 1 or self.max_frame_bytes < 1 or self.recv_queue < 1:
            raise FeedConfigError("batch_max, max_frame_bytes and recv_queue must be at least 1")
        if not (math.isfinite(self.backoff_factor) and self.backoff_factor >= 1):
            raise FeedConfigError(f"backoff_factor must be >= 1, got {self.backoff_factor!r}")
        if self.max_retries is not None and self.max_retries < 0:
            raise FeedConfigError(f"max_retries must be >= 0 or None, got {self.max_retries!r}")


class Backoff:
    """Capped exponential backoff with jitter; pure (the random source is injected).

    The n-th delay since the last :meth:`reset` (n = 0, 1, …) is drawn uniformly from
    ``[d/2, d]`` with ``d = min(max_s, initial_s * factor**n)``: never more than ``max_s``,
    and spread out so that many clients do not reconnect in lockstep.
    """

    __slots__ = ("_factor", "_initial_s", "_max_s", "_rng", "failures")

    def __init__(self, *, initial_s: float, max_s: float, factor: float, rng: random.Random) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._factor = factor
        self._rng = rng
        self.failures = 0  # delays handed out since the last reset

    def next_delay(self) -> float:
        """Return the delay before the next attempt; each call counts one more failure."""
        ceiling = min(self._max_s, self._initial_s * self._factor ** min(self.failures, 64))
        self.failures += 1
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        """Start again from ``initial_s`` (after a session that worked)."""
        self.failures = 0


# --- the stream -------------------------------------------------------------------------


class UpbitTradeStream:
    """Subscribe to Upbit trades and deliver them to ``on_trades`` until ``stop`` is set.

    Not thread-safe: :meth:`run` is meant to be called once, in the owning actor's thread;
    other threads only set ``stop``. The counters ``attempts`` (connection attempts) and
    ``sessions`` (subscriptions sent) are for monitoring and tests.
    """

    def __init__(  # noqa: PLR0913 -- collaborators are injected, as the style asks
        self,
        url: str,
        markets: Sequence[str],
        on_trades: Callable[[list[Trade]], None],
        stop: threading.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
        settings: StreamSettings | None = None,
        rng: random.Random | None = None,
        ticket_factory: Callable[[], str] = lambda: str(uuid.uuid4()),
        on_state: Callable[[StreamState, str], None] | None = None,
        on_frame: Callable[[bytes], None] | None = None,
        on_bad_frame: Callable[[str], None] | None = None,
    ) -> None:
        """Set up the stream; nothing connects before :meth:`run`.

        Args:
            url: the WebSocket endpoint, normally :data:`UPBIT_PUBLIC_WS_URL`.
            markets: market codes to subscribe to (``KRW-BTC`` …).
            on_trades: called in this thread with each batch of trades (``source=LIVE``).
            stop: set it (from any thread) to make :meth:`run` return within ``poll_s``.
            clock: monotonic seconds, used for ``stale_after_s``.
            settings: tunables; defaults suit Upbit.
            rng: jitter source (seed it in tests).
            ticket_factory: makes the subscription ticket of each connection.
            on_state: told about connects and disconnects (with a reason), e.g. to raise
                ``FeedConnected``/``FeedDisconnected`` events.

        Raises:
            FeedConfigError: no markets, or a code that is not an upper-case market code.

        """
        markets = list(dict.fromkeys(markets))
        if not markets:
            raise FeedConfigError("at least one market is required")
        bad = [m for m in markets if not isinstance(m, str) or MARKET_CODE.fullmatch(m) is None]
        if bad:
            raise FeedConfigError(f"not upper-case Upbit market codes: {bad!r}")
        self._url = url
        self._markets = markets
        self._on_trades = on_trades
        self._stop = stop
        self._clock = clock
        self._settings = settings or StreamSettings()
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._ticket_factory = ticket_factory
        self._on_state = on_state
        self._on_frame = on_frame
        self._on_bad_frame = on_bad_frame
        self.attempts = 0
        self.sessions = 0

    def run(self) -> None:
        """Stream until ``stop`` is set; reconnect after transient failures.

        Raises:
            FeedUnavailable: ``max_retries`` reconnects in a row failed with no message received.
            FeedRejected, FeedProtocolError, FeedConfigError: see the module docstring.

        """
        s = self._settings
        backoff = Backoff(initial_s=s.backoff_initial_s, max_s=s.backoff_max_s, factor=s.backoff_factor, rng=self._rng)
        while not self._stop.is_set():
            self.attempts += 1
            try:
                received = self._session()
            except _ConnectionLost as lost:
                if lost.productive:  # the session delivered messages: the link works, start afresh
                    backoff.reset()
                reason = lost.reason
                self._report(StreamState.DISCONNECTED, reason)
                limit = s.max_retries
                if limit is not None and backoff.failures >= limit:
                    raise FeedUnavailable(
                        f"{self._url}: {backoff.failures + 1} connection attempts in a row failed; last: {reason}"
                    ) from lost.__cause__
                delay = backoff.next_delay()
                _log.warning("Upbit feed %s lost (%s); reconnecting in %.2f s", self._url, reason, delay)
                if self._stop.wait(delay):
                    return
            else:
                _log.info("Upbit feed %s stopped after %d messages", self._url, received)
                return

    # --- one connection ---------------------------------------------------------------

    def _session(self) -> int:
        """Run one connection until stop (returns the message count) or a retryable failure."""
        s = self._settings
        try:
            ws = connect(
                self._url,
                open_timeout=s.open_timeout_s,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                close_timeout=s.close_timeout_s,
                max_size=s.max_frame_bytes,
                max_queue=s.recv_queue,
                proxy=None,  # no implicit proxy from the environment
            )
        except InvalidURI as exc:
            raise FeedConfigError(f"invalid WebSocket URL {self._url!r}: {exc}") from exc
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == _HTTP_TOO_MANY_REQUESTS or status >= _HTTP_SERVER_ERRORS:
                raise _ConnectionLost(f"upgrade answered HTTP {status}", productive=False) from exc
            raise FeedRejected(f"{self._url}: upgrade answered HTTP {status}") from exc
        except (OSError, WebSocketException) as exc:  # refused, DNS, TLS, timeout, bad handshake
            raise _ConnectionLost(f"connect failed: {exc!r}", productive=False) from exc
        try:
            try:
                ws.send(subscription_message(self._markets, self._ticket_factory(), s.fmt).decode("utf-8"))
            except (OSError, WebSocketException) as exc:
                raise _ConnectionLost(f"subscribe failed: {exc!r}", productive=False) from exc
            self.sessions += 1
            self._report(StreamState.CONNECTED, f"subscribed to {len(self._markets)} markets")
            return self._receive(ws)
        finally:
            _close_quietly(ws)

    def _receive(self, ws: ClientConnection) -> int:
        """Receive, decode and deliver until stop; raise ``_ConnectionLost`` on failure."""
        s = self._settings
        received = 0
        last_message_at = self._clock()
        while not self._stop.is_set():
            try:
                frame = ws.recv(timeout=s.poll_s)
            except TimeoutError:
                if s.stale_after_s is not None and self._clock() - last_message_at >= s.stale_after_s:
                    raise _ConnectionLost(f"no message for {s.stale_after_s} s", productive=received > 0) from None
                continue
            except (ConnectionClosed, OSError, WebSocketException) as exc:
                raise _ConnectionLost(f"connection closed: {exc!r}", productive=received > 0) from exc
            last_message_at = self._clock()
            batch: list[Trade] = []
            count, lost = self._drain(ws, frame, batch)
            received += count
            if batch:
                self._on_trades(batch)
            if lost is not None:
                raise _ConnectionLost(f"connection closed: {lost!r}", productive=True) from lost
        return received

    def _drain(self, ws: ClientConnection, frame: str | bytes, batch: list[Trade]) -> tuple[int, Exception | None]:
        """Decode ``frame`` and whatever else has already arrived, up to ``batch_max`` trades.

        Returns the number of messages taken and the error that ended the connection, if any
        (the trades before it still get delivered).
        """
        count = 0
        while True:
            count += 1
            self._decode_into(frame, batch)
            if len(batch) >= self._settings.batch_max:
                return count, None
            try:
                frame = ws.recv(timeout=0)  # only what has already arrived
            except TimeoutError:
                return count, None
            except (ConnectionClosed, OSError, WebSocketException) as exc:
                return count, exc

    def _decode_into(self, frame: str | bytes, batch: list[Trade]) -> None:
        if self._on_frame is not None:
            self._on_frame(frame.encode("utf-8") if isinstance(frame, str) else bytes(frame))
        try:
            trade = decode_trade(frame)
        except UpbitStreamError as exc:
            if batch:
                self._on_trades(batch)
            raise FeedRejected(f"{self._url}: {exc}") from exc
        except FrameError as exc:
            if self._on_bad_frame is not None:
                self._on_bad_frame(str(exc))
                return
            if batch:  # deliver what was good before giving up
                self._on_trades(batch)
            raise FeedProtocolError(f"{self._url}: {exc}") from exc
        if trade is not None:
            batch.append(trade)

    def _report(self, state: StreamState, detail: str) -> None:
        if self._on_state is not None:
            self._on_state(state, detail)


def _close_quietly(ws: ClientConnection) -> None:
    """Close the connection (closing handshake, bounded by ``close_timeout``); never raise.

    Whatever made us close is already being handled; a failure to close cleanly only matters
    for the log.
    """
    try:
        ws.close()
    except (OSError, WebSocketException) as exc:
        _log.debug("closing the Upbit connection failed: %r", exc)
