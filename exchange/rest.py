"""``UpbitClient``: the one place that speaks HTTP to Upbit's REST API.

Every call goes, in this order, through:

1. a **circuit breaker** per endpoint group (``quotation``, ``exchange-default``, ``order``,
   ``order-test``) that wraps the whole retried call, so a trip counts a failed attempt sequence.
   Fatal client errors (4xx other than 429/418) are excluded from the count. State changes are
   reported through ``on_breaker_change(group, old, new)``. Note: pybreaker holds a lock for the
   duration of a call, so calls within one group are serialised;
2. **tenacity retries**, only for idempotent calls and only for :func:`errors.is_retryable` failures
   (connection errors, 5xx, 429), with jittered exponential backoff and an attempt bound;
3. the **rate limiter** (wait before sending; ``Remaining-Req`` fed back; 429/418 holds);
4. one ``requests`` session with a timeout on every request, JWT signing (``auth.py``), and
   translation of every failure into our own exceptions (``errors.py``), exactly once, here.

An order POST is never retried. If its outcome is unknown (transport failure, timeout, 5xx, or
an unparsable 2xx answer) it raises :class:`OrderOutcomeUnknown` carrying the identifier, and the
caller looks the order up (:meth:`UpbitClient.find_order`). A duplicate identifier raises
:class:`DuplicateIdentifier`. Cancels (DELETE) and test orders: a cancel is retried (cancelling
twice cannot add exposure); a test order is not (whether the server burns a test identifier is
UNCONFIRMED), and its unknown outcome is a plain transient error, since nothing was ordered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, TypeVar

import orjson
import pybreaker
import requests
import tenacity

from exchange.auth import Pairs, ParamValue, authorization_header, body_json, encoded_query, new_nonce, param_pairs
from exchange.errors import (
    CircuitOpen, CredentialsMissing, ExchangeError, MalformedResponse, OrderNotFound, OrderOutcomeUnknown,
    RateLimited, ErrorKind, from_response, is_retryable, network_error, redact,
)
from exchange.models import (
    Account, Candle, Instrument, Market, Order, Orderbook, OrderChance, Ticker, TradeTick,
)
from exchange.rate_limit import RateLimiter, parse_remaining_req

__all__ = ["BREAKER_GROUPS", "CANDLE_UNITS", "UpbitClient"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CANDLE_UNITS = frozenset({1, 3, 5, 10, 15, 30, 60, 240})
BREAKER_GROUPS = ("quotation", "exchange-default", "order", "order-test")


@dataclass(frozen=True, slots=True)
class _Endpoint:
    method: Literal["GET", "POST", "DELETE"]
    path: str
    rate_group: str  # Upbit's group, until a Remaining-Req answer names it
    breaker: str
    private: bool
    idempotent: bool


_Q, _X = "quotation", "exchange-default"
_EP: dict[str, _Endpoint] = {
    "accounts": _Endpoint("GET", "/v1/accounts", "default", _X, True, True),
    "order_chance": _Endpoint("GET", "/v1/orders/chance", "default", _X, True, True),
    "create_order": _Endpoint("POST", "/v1/orders", "order", "order", True, False),
    "test_order": _Endpoint("POST", "/v1/orders/test", "order-test", "order-test", True, False),
    "get_order": _Endpoint("GET", "/v1/order", "default", _X, True, True),
    "open_orders": _Endpoint("GET", "/v1/orders/open", "default", _X, True, True),
    "closed_orders": _Endpoint("GET", "/v1/orders/closed", "default", _X, True, True),
    "cancel_order": _Endpoint("DELETE", "/v1/order", "default", _X, True, True),
    "markets": _Endpoint("GET", "/v1/market/all", "market", _Q, False, True),
    "tickers": _Endpoint("GET", "/v1/ticker", "ticker", _Q, False, True),
    "trades": _Endpoint("GET", "/v1/trades/ticks", "trade", _Q, False, True),
    "minute_candles": _Endpoint("GET", "/v1/candles/minutes/{unit}", "candle", _Q, False, True),
    "orderbook": _Endpoint("GET", "/v1/orderbook", "orderbook", _Q, False, True),
    "instruments": _Endpoint("GET", "/v1/orderbook/instruments", "orderbook", _Q, False, True),
}


def _is_fatal_client_error(exc: BaseException) -> bool:
    """4xx answers other than 429/418 say nothing about the venue's health: not counted."""
    return (isinstance(exc, ExchangeError) and exc.status is not None and 400 <= exc.status < 500
            and exc.status not in {418, 429})


def _time(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.isoformat(timespec="seconds")


SIMULATOR_NAME = "upbit_sim"
"""What the simulated Upbit (``upbit_sim``) answers as ``simulator`` on ``GET /_sim/status``."""


class _BreakerListener(pybreaker.CircuitBreakerListener):
    def __init__(self, group: str, callback: Callable[[str, str, str], None] | None,
                 opened: Callable[[str], None]) -> None:
        self.group = group
        self.callback = callback
        self.opened = opened

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: pybreaker.CircuitBreakerState | None,
                     new_state: pybreaker.CircuitBreakerState) -> None:
        old = old_state.name if old_state is not None else "closed"
        log.warning("circuit breaker %s: %s -> %s", self.group, old, new_state.name)
        if new_state.name == "open":
            self.opened(self.group)
        if self.callback is not None:
            try:
                self.callback(self.group, old, new_state.name)
            except Exception:  # noqa: BLE001 - a listener must never break the exchange call path
                log.exception("on_breaker_change callback failed for %s", self.group)


def _session_for(base_url: str) -> requests.Session:
    """A session that reads the environment (proxy variables, ``REQUESTS_CA_BUNDLE`` …) once, here,
    instead of on every request: requests' per-request environment merge costs more than the rest
    of a loopback round trip (see the order latency benchmark)."""
    session = requests.Session()
    settings = session.merge_environment_settings(base_url, {}, None, None, None)
    session.trust_env = False
    session.proxies.update(settings.get("proxies") or {})
    session.verify = settings.get("verify", True)
    if settings.get("cert") is not None:
        session.cert = settings["cert"]
    return session


class UpbitClient:
    """Synchronous Upbit REST client. ``base_url`` is the host (``https://api.upbit.com``), paths add ``/v1``."""

    def __init__(self, base_url: str, *, access_key: str | None, secret_key: str | None,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
                 timeout: tuple[float, float] = (3.05, 10), on_breaker_change: Callable[[str, str, str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, nonce_factory: Callable[[], str] = new_nonce,
                 rate_limiter: RateLimiter | None = None, max_attempts: int = 4, retry_initial_s: float = 0.2,
                 retry_max_s: float = 5.0, breaker_fail_max: int = 5, breaker_reset_s: float = 30.0) -> None:
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        self._base = base_url.rstrip("/")
        self._access, self._secret = access_key, secret_key
        self._own_session = session is None
        self._session = session or _session_for(self._base)
        self._timeout = timeout
        self._sleep = sleep
        self._nonce = nonce_factory
        self._limiter = rate_limiter or RateLimiter(clock=clock)
        self._max_attempts = max_attempts
        # Jittered exponential backoff: initial·2^(n-1), capped, plus up to one `initial` of jitter.
        self._wait = (tenacity.wait_exponential(multiplier=retry_initial_s, max=retry_max_s)
                      + tenacity.wait_random(0, retry_initial_s))
        self._groups: dict[str, str] = {}
        self._clock = clock
        self._opened_at: dict[str, float] = {}  # group -> monotonic time its breaker last opened
        self._breakers = {
            g: pybreaker.CircuitBreaker(fail_max=breaker_fail_max, reset_timeout=breaker_reset_s, name=g,
                                        exclude=[_is_fatal_client_error], throw_new_error_on_trip=False,
                                        listeners=[_BreakerListener(g, on_breaker_change, self._breaker_opened)])
            for g in BREAKER_GROUPS
        }

    def __repr__(self) -> str:
        return f"UpbitClient({self._base!r}, keys={'set' if self._access else 'none'})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> UpbitClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ---- observability ----------------------------------------------------------------------

    def last_remaining(self, group: str) -> int | None:
        """The latest ``Remaining-Req`` ``sec`` for an Upbit group (``default``, ``order``, ``ticker`` …)."""
        return self._limiter.last_remaining(group)

    def breaker_state(self, group: str) -> str:
        """``closed``, ``open`` or ``half-open`` for one of :data:`BREAKER_GROUPS`.

        An open breaker whose reset timeout has passed is reported ``half-open``: the next call
        goes out as a trial. pybreaker itself only leaves "open" when a call is attempted, so a
        caller that asked first and called only when it was not "open" would never call again,
        and an order group blocked by its breaker would stay blocked for good."""
        breaker = self._breakers[group]
        state = str(breaker.current_state)
        opened = self._opened_at.get(group)
        if state == "open" and opened is not None and self._clock() - opened >= breaker.reset_timeout:
            return "half-open"
        return state

    def _breaker_opened(self, group: str) -> None:
        self._opened_at[group] = self._clock()

    def is_simulator(self) -> bool:
        """Whether the base URL is the simulated Upbit (it answers ``GET /_sim/status`` as such).

        The real exchange answers that path 404, and so does a proxy or tunnel in front of it:
        only the simulator, which spends no money, says yes. Any failure (network, timeout, a
        garbled answer) is "no". Not rate-limited or retried: it is asked once, at start."""
        try:
            answer = self._session.get(f"{self._base}/_sim/status", timeout=(1.0, 2.0))
            body = answer.json() if answer.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            log.info("%s is not the simulated Upbit (%s)", self._base, exc)
            return False
        return isinstance(body, dict) and body.get("simulator") == SIMULATOR_NAME

    # ---- exchange (private) endpoints -------------------------------------------------------

    def accounts(self) -> tuple[Account, ...]:
        return self._call("accounts", {}, lambda js: tuple(Account.from_json(a) for a in js))

    def order_chance(self, market: str) -> OrderChance:
        return self._call("order_chance", {"market": market}, OrderChance.from_json)

    def create_order(self, *, market: str, side: str, ord_type: str, identifier: str, price: Decimal | None = None,
                     volume: Decimal | None = None, time_in_force: str | None = None,
                     smp_type: str | None = None) -> Order:
        """POST /v1/orders. Never retried; see :class:`OrderOutcomeUnknown` and :class:`DuplicateIdentifier`."""
        return self._order("create_order", market, side, ord_type, identifier, price, volume, time_in_force, smp_type)

    def test_order(self, *, market: str, side: str, ord_type: str, identifier: str | None = None,
                   price: Decimal | None = None, volume: Decimal | None = None, time_in_force: str | None = None,
                   smp_type: str | None = None) -> Order:
        """POST /v1/orders/test: validated like a real order, nothing is created (its uuid cannot be looked up)."""
        return self._order("test_order", market, side, ord_type, identifier, price, volume, time_in_force, smp_type)

    def _order(self, key: str, market: str, side: str, ord_type: str, identifier: str | None, price: Decimal | None,
               volume: Decimal | None, time_in_force: str | None, smp_type: str | None) -> Order:
        if key == "create_order" and not identifier:
            raise ValueError("create_order needs an identifier: it is how an unknown outcome is resolved")
        params: dict[str, ParamValue] = {"market": market, "side": side, "volume": volume, "price": price,
                                         "ord_type": ord_type, "identifier": identifier,
                                         "time_in_force": time_in_force, "smp_type": smp_type}
        return self._call(key, params, Order.from_json, identifier=identifier)

    def get_order(self, *, uuid: str | None = None, identifier: str | None = None) -> Order:
        """GET /v1/order by uuid or identifier (uuid wins if both); the order with its trades."""
        return self._call("get_order", self._which(uuid, identifier), Order.from_json)

    def find_order(self, identifier: str) -> Order | None:
        """The order with this identifier, or ``None`` if the exchange has none (yet)."""
        try:
            return self.get_order(identifier=identifier)
        except OrderNotFound:
            return None

    def open_orders(self, *, market: str | None = None, states: Sequence[str] | None = None, page: int | None = None,
                    limit: int | None = None, order_by: str | None = None) -> tuple[Order, ...]:
        """GET /v1/orders/open (``states``: wait and/or watch; default wait)."""
        params: dict[str, ParamValue] = {"market": market, "states": list(states) if states else None,
                                         "page": page, "limit": limit, "order_by": order_by}
        return self._call("open_orders", params, lambda js: tuple(Order.from_json(o) for o in js))

    def closed_orders(self, *, market: str | None = None, states: Sequence[str] | None = None,
                      start_time: datetime | str | None = None, end_time: datetime | str | None = None,
                      limit: int | None = None, order_by: str | None = None) -> tuple[Order, ...]:
        """GET /v1/orders/closed (``states``: done and/or cancel)."""
        params: dict[str, ParamValue] = {"market": market, "states": list(states) if states else None,
                                         "start_time": _time(start_time), "end_time": _time(end_time),
                                         "limit": limit, "order_by": order_by}
        return self._call("closed_orders", params, lambda js: tuple(Order.from_json(o) for o in js))

    def cancel_order(self, *, uuid: str | None = None, identifier: str | None = None) -> Order:
        """DELETE /v1/order: the order as it was when the cancel was accepted (usually still ``wait``)."""
        return self._call("cancel_order", self._which(uuid, identifier), Order.from_json)

    @staticmethod
    def _which(uuid: str | None, identifier: str | None) -> dict[str, ParamValue]:
        if not uuid and not identifier:
            raise ValueError("give uuid or identifier")
        return {"uuid": uuid} if uuid else {"identifier": identifier}

    # ---- quotation (public) endpoints -------------------------------------------------------

    def markets(self, *, details: bool = True) -> tuple[Market, ...]:
        return self._call("markets", {"isDetails": details}, lambda js: tuple(Market.from_json(m) for m in js))

    def tickers(self, markets: Sequence[str]) -> tuple[Ticker, ...]:
        return self._call("tickers", {"markets": ",".join(markets)}, lambda js: tuple(Ticker.from_json(t) for t in js))

    def trades(self, market: str, *, count: int | None = None, to: str | None = None, cursor: str | None = None,
               days_ago: int | None = None) -> tuple[TradeTick, ...]:
        params: dict[str, ParamValue] = {"market": market, "to": to, "count": count, "cursor": cursor,
                                         "days_ago": days_ago}
        return self._call("trades", params, lambda js: tuple(TradeTick.from_json(t) for t in js))

    def minute_candles(self, market: str, *, unit: int = 1, count: int | None = None,
                       to: datetime | str | None = None) -> tuple[Candle, ...]:
        if unit not in CANDLE_UNITS:
            raise ValueError(f"minute candle unit must be one of {sorted(CANDLE_UNITS)}, got {unit}")
        if count is not None and not 1 <= count <= 200:
            raise ValueError(f"count must be 1..200, got {count}")
        params: dict[str, ParamValue] = {"market": market, "to": _time(to), "count": count}
        return self._call("minute_candles", params, lambda js: tuple(Candle.from_json(c) for c in js),
                          path_args={"unit": unit})

    def orderbook(self, markets: Sequence[str], *, level: Decimal | None = None,
                  count: int | None = None) -> tuple[Orderbook, ...]:
        params: dict[str, ParamValue] = {"markets": ",".join(markets), "level": level, "count": count}
        return self._call("orderbook", params, lambda js: tuple(Orderbook.from_json(o) for o in js))

    def instruments(self, markets: Sequence[str]) -> tuple[Instrument, ...]:
        """GET /v1/orderbook/instruments: the authoritative tick size per market (since 2025-07-31)."""
        return self._call("instruments", {"markets": ",".join(markets)},
                          lambda js: tuple(Instrument.from_json(i) for i in js))

    # ---- the call path ----------------------------------------------------------------------

    def _call(self, key: str, params: Mapping[str, ParamValue], parse: Callable[[Any], T], *,
              identifier: str | None = None, path_args: Mapping[str, object] | None = None) -> T:
        ep = _EP[key]
        if ep.private and not (self._access and self._secret):
            raise CredentialsMissing(f"{ep.method} {ep.path} is private and this client has no API keys",
                                     endpoint=f"{ep.method} {ep.path}")
        path = ep.path.format(**(path_args or {}))
        pairs = param_pairs(params)
        try:
            if ep.idempotent:
                retrying = tenacity.Retrying(
                    retry=tenacity.retry_if_exception(is_retryable), stop=tenacity.stop_after_attempt(self._max_attempts),
                    wait=self._wait, sleep=self._sleep, reraise=True, before_sleep=self._log_retry)
                answer: T = self._breakers[ep.breaker].call(retrying, self._attempt, key, path, pairs, parse,
                                                            identifier)
            else:
                answer = self._breakers[ep.breaker].call(self._attempt, key, path, pairs, parse, identifier)
            return answer
        except pybreaker.CircuitBreakerError:
            raise CircuitOpen(f"circuit breaker {ep.breaker!r} is open: {ep.method} {path} was not sent",
                              group=ep.breaker, endpoint=f"{ep.method} {path}") from None

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("retrying after attempt %d: %s", state.attempt_number, exc)

    def _attempt(self, key: str, path: str, pairs: Pairs, parse: Callable[[Any], T], identifier: str | None) -> T:
        """One request: wait for the rate limiter, sign, send; transport failures translated here."""
        ep = _EP[key]
        label = f"{ep.method} {path}"
        secrets = (self._access, self._secret)
        blocked = self._limiter.blocked_for()
        if blocked > 0:
            raise RateLimited(f"blocked by Upbit (418) for {blocked:.1f} s more: not sent", retry_after=blocked,
                              kind=ErrorKind.BLOCKED, endpoint=label)
        group = self._groups.get(key, ep.rate_group)
        wait = self._limiter.reserve(group)
        if wait > 0:
            self._sleep(wait)
        url = self._base + path
        headers = {"Accept": "application/json"}
        data: bytes | None = None
        if ep.method == "POST":
            data = orjson.dumps(body_json(pairs))
            headers["Content-Type"] = "application/json; charset=utf-8"
        elif pairs:
            url += "?" + encoded_query(pairs)
        if ep.private:
            assert self._access is not None and self._secret is not None
            headers.update(authorization_header(self._access, self._secret, pairs, nonce_factory=self._nonce))
        try:
            resp = self._session.request(ep.method, url, data=data, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            cause = redact(f"{type(exc).__name__}: {exc}", secrets)
            if key == "create_order":
                assert identifier is not None
                raise OrderOutcomeUnknown(identifier, cause=cause, endpoint=label) from exc
            raise network_error(cause, endpoint=label) from exc
        return self._answer(key, label, group, resp, parse, identifier)

    def _answer(self, key: str, label: str, group: str, resp: requests.Response, parse: Callable[[Any], T],
                identifier: str | None) -> T:
        """Interpret one HTTP answer: feed the rate limiter, parse a 2xx, translate anything else."""
        secrets = (self._access, self._secret)
        remaining = parse_remaining_req(resp.headers.get("Remaining-Req"))
        if remaining is not None:
            self._groups[key] = group = remaining.group
        self._limiter.observe(remaining, status=resp.status_code)
        if 200 <= resp.status_code < 300:
            try:
                return parse(json.loads(resp.content, parse_float=Decimal))
            except (ValueError, KeyError, TypeError, ArithmeticError, AttributeError) as exc:
                if key == "create_order":
                    assert identifier is not None
                    raise OrderOutcomeUnknown(identifier, cause=f"unparsable {resp.status_code} answer",
                                              status=resp.status_code, endpoint=label) from None
                raise MalformedResponse(f"unparsable answer ({type(exc).__name__})", status=resp.status_code,
                                        endpoint=label) from None
        try:
            body: object = json.loads(resp.content)
        except ValueError:
            body = resp.text
        err = from_response(resp.status_code, body, endpoint=label, identifier=identifier, headers=dict(resp.headers),
                            group=group, secrets=secrets)
        if isinstance(err, RateLimited):
            if err.kind is ErrorKind.BLOCKED:
                self._limiter.on_418(err.retry_after)
            else:
                self._limiter.on_429(group, err.retry_after)
        if key == "create_order" and resp.status_code >= 500:
            assert identifier is not None
            raise OrderOutcomeUnknown(identifier, cause=f"HTTP {resp.status_code} {err.message}",
                                      status=resp.status_code, name=err.name, endpoint=label)
        raise err
