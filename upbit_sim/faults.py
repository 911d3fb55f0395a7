"""Deterministic fault injection: what goes wrong, for which requests, and how many times.

Each fault is armed by a method call (from a test), a ``--fault`` flag (command line) or a JSON
document posted to ``/_sim/faults`` (another process); all three go through :meth:`Faults.inject`.
Counted faults are consumed strictly in request order, so a test knows exactly which request
fails. Nothing here is random.

REST faults (every ``/v1/…`` request; ``path``/``method`` narrow one to matching requests):

- ``fail_next(n=1, status=500)``: the next ``n`` requests are answered ``status`` with an Upbit
  error body, **before** anything is checked or done (no nonce used, no order placed).
- ``delay(seconds, n=None)``: wait before handling each request (``n`` requests, or all until
  ``delay(0)``).
- ``drop_after_accept(n=1)``: the next ``n`` requests are fully handled (an order *is* placed),
  then the connection is closed without an answer: the "did my order go through?" case.
- ``malformed_next(n=1)``: the next ``n`` answers keep their status but carry a truncated,
  unparseable JSON body (the request *is* handled).
- ``lookup_lag(seconds)``: orders placed from now on stay invisible to lookups (GET order,
  order lists, cancel) for ``seconds`` after creation: ``order_not_found`` meanwhile.
- ``identifier_taken(n=1)``: the next ``n`` order requests that carry an identifier find it
  already used by *another* order of the same account — a small resting limit buy at half the
  last price, placed just before (what another installation sharing the key, or a restored
  database, would leave). The request is then refused as a duplicate identifier. The foreign
  orders' uuids are listed in :attr:`Faults.foreign_orders`.

WebSocket faults:

- ``ws_drop()``: every open WebSocket connection is cut at once (no closing handshake).
- ``ws_stall(seconds)``: no frame is sent on any connection for ``seconds`` (held back, then
  delivered); PINGs are not answered meanwhile either.
- ``ws_corrupt_next(n=1)``: the next ``n`` data frames are sent as invalid JSON bytes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["FAULT_PARAMS", "Faults", "RestFault", "parse_fault"]

#: fault name -> its parameters in positional order, with their types.
FAULT_PARAMS: Final[Mapping[str, tuple[tuple[str, type], ...]]] = {
    "fail_next": (("n", int), ("status", int), ("path", str), ("method", str)),
    "delay": (("seconds", float), ("n", int), ("path", str), ("method", str)),
    "drop_after_accept": (("n", int), ("path", str), ("method", str)),
    "malformed_next": (("n", int), ("path", str), ("method", str)),
    "lookup_lag": (("seconds", float),),
    "identifier_taken": (("n", int),),
    "ws_drop": (),
    "ws_stall": (("seconds", float),),
    "ws_corrupt_next": (("n", int),),
}


@dataclass(slots=True)
class _Rule:
    kind: str  # fail | delay | drop | malformed
    remaining: int | None  # None: until cleared
    path: str | None
    method: str | None
    status: int = 500
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or path.startswith(self.path)) and (
            self.method is None or self.method.upper() == method.upper()
        )


@dataclass(frozen=True, slots=True)
class RestFault:
    """What to do to one REST request (all fields at their defaults: nothing)."""

    fail_status: int | None = None
    delay_s: float = 0.0
    drop: bool = False
    malformed: bool = False


class Faults:
    """The armed faults of one simulator (thread-safe); see the module docstring."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        """``monotonic``: the clock that times ``ws_stall``."""
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._lookup_lag_s = 0.0
        self._ws_stall_until = 0.0
        self._ws_corrupt = 0
        self._ws_drop_listeners: list[Callable[[], None]] = []
        self._taken = 0
        self.injected: list[tuple[str, dict[str, object]]] = []  # a log, for tests and /_sim/state
        self.foreign_orders: list[str] = []  # uuids of the orders identifier_taken placed

    # --- arming -------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, path: str | None = None, method: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` before handling them."""
        _check_count(n)
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status}")
        self._arm(_Rule("fail", n, path, method, status=status), "fail_next", n=n, status=status)

    def delay(self, seconds: float, n: int | None = None, *, path: str | None = None, method: str | None = None) -> None:
        """Wait ``seconds`` before handling each of the next ``n`` (None: all) matching requests."""
        _check_seconds(seconds)
        if n is not None:
            _check_count(n)
        with self._lock:
            self._rules = [r for r in self._rules if r.kind != "delay" or r.path != path or r.method != method]
        if seconds > 0:
            self._arm(_Rule("delay", n, path, method, seconds=seconds), "delay", seconds=seconds, n=n)

    def drop_after_accept(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Handle the next ``n`` matching requests, then close the connection without answering."""
        _check_count(n)
        self._arm(_Rule("drop", n, path, method), "drop_after_accept", n=n)

    def malformed_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Handle the next ``n`` matching requests, then answer with a truncated JSON body."""
        _check_count(n)
        self._arm(_Rule("malformed", n, path, method), "malformed_next", n=n)

    def identifier_taken(self, n: int = 1) -> None:
        """The next ``n`` order requests find their identifier taken by a foreign order (see above)."""
        _check_count(n)
        with self._lock:
            self._taken += n
            self.injected.append(("identifier_taken", {"n": n}))

    def take_identifier_taken(self) -> bool:
        """Consume one ``identifier_taken``: whether this order request's identifier must be taken first."""
        with self._lock:
            if self._taken <= 0:
                return False
            self._taken -= 1
            return True

    def foreign_placed(self, uuid: str) -> None:
        """The venue placed a foreign order for ``identifier_taken``."""
        with self._lock:
            self.foreign_orders.append(uuid)

    def lookup_lag(self, seconds: float) -> None:
        """Orders placed from now on are invisible to lookups for ``seconds`` (0 turns it off)."""
        _check_seconds(seconds)
        with self._lock:
            self._lookup_lag_s = seconds
            self.injected.append(("lookup_lag", {"seconds": seconds}))

    def ws_drop(self) -> None:
        """Cut every open WebSocket connection now."""
        with self._lock:
            listeners = list(self._ws_drop_listeners)
            self.injected.append(("ws_drop", {}))
        for listener in listeners:
            listener()

    def ws_stall(self, seconds: float) -> None:
        """Send nothing on any WebSocket connection for ``seconds`` from now."""
        _check_seconds(seconds)
        with self._lock:
            self._ws_stall_until = self._monotonic() + seconds
            self.injected.append(("ws_stall", {"seconds": seconds}))

    def ws_corrupt_next(self, n: int = 1) -> None:
        """Send the next ``n`` WebSocket data frames as invalid JSON."""
        _check_count(n)
        with self._lock:
            self._ws_corrupt += n
            self.injected.append(("ws_corrupt_next", {"n": n}))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._rules.clear()
            self._lookup_lag_s = 0.0
            self._ws_stall_until = 0.0
            self._ws_corrupt = 0
            self._taken = 0
            self.injected.append(("clear", {}))

    def inject(self, name: str, params: Mapping[str, object] | None = None) -> None:
        """Arm fault ``name`` with keyword ``params`` (validated against :data:`FAULT_PARAMS`).

        Raises:
            ValueError: unknown fault, unknown parameter, or a value of the wrong type or range.

        """
        if name == "clear":
            self.clear()
            return
        spec = FAULT_PARAMS.get(name)
        if spec is None:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULT_PARAMS))}, clear")
        types = dict(spec)
        kwargs: dict[str, object] = {}
        for key, value in (params or {}).items():
            if key not in types:
                raise ValueError(f"fault {name!r} has no parameter {key!r}; it takes {', '.join(types) or 'none'}")
            kwargs[key] = _coerce(name, key, value, types[key])
        getattr(self, name)(**kwargs)

    # --- consuming (the servers) ----------------------------------------------------------

    def take_rest(self, method: str, path: str) -> RestFault:
        """Consume the faults that apply to this REST request and say what to do to it."""
        fail_status: int | None = None
        delay_s = 0.0
        drop = malformed = False
        with self._lock:
            for kind in ("fail", "delay", "drop", "malformed"):
                if fail_status is not None and kind in ("drop", "malformed"):
                    continue  # a failed request is not handled: keep these for the next one
                rule = next((r for r in self._rules if r.kind == kind and r.matches(method, path)), None)
                if rule is None:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                if kind == "fail":
                    fail_status = rule.status
                elif kind == "delay":
                    delay_s = rule.seconds
                elif kind == "drop":
                    drop = True
                else:
                    malformed = True
        return RestFault(fail_status=fail_status, delay_s=delay_s, drop=drop, malformed=malformed)

    @property
    def lookup_lag_s(self) -> float:
        """The lookup lag applied to orders placed now."""
        with self._lock:
            return self._lookup_lag_s

    def ws_stall_remaining(self) -> float:
        """Seconds left of the current WebSocket stall (0 when not stalled)."""
        with self._lock:
            return max(self._ws_stall_until - self._monotonic(), 0.0)

    def take_ws_corrupt(self) -> bool:
        """Consume one ``ws_corrupt_next``: whether the next data frame must be corrupted."""
        with self._lock:
            if self._ws_corrupt <= 0:
                return False
            self._ws_corrupt -= 1
            return True

    def on_ws_drop(self, listener: Callable[[], None]) -> None:
        """Register what ``ws_drop`` calls (the WebSocket server's cut-everything)."""
        with self._lock:
            self._ws_drop_listeners.append(listener)

    def _arm(self, rule: _Rule, name: str, **params: object) -> None:
        with self._lock:
            self._rules.append(rule)
            shown = {k: v for k, v in params.items() if v is not None}
            if rule.path is not None:
                shown["path"] = rule.path
            if rule.method is not None:
                shown["method"] = rule.method
            self.injected.append((name, shown))


def parse_fault(text: str) -> tuple[str, dict[str, object]]:
    """Parse a command-line fault: ``NAME[:ARG,ARG…]``, each ARG positional or ``key=value``.

    Examples: ``fail_next:3,503``, ``fail_next:n=1,status=503,path=/v1/orders``,
    ``delay:0.5``, ``lookup_lag:2``, ``ws_drop``. Types are checked when armed.

    Raises:
        ValueError: unknown fault or parameter, too many positional arguments.

    """
    name, _, rest = text.strip().partition(":")
    spec = FAULT_PARAMS.get(name)
    if spec is None:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULT_PARAMS))}")
    names = [param for param, _type in spec]
    params: dict[str, object] = {}
    for index, arg in enumerate(a for a in rest.split(",") if a.strip()) if rest else ():
        key, eq, value = arg.partition("=")
        if not eq:
            if index >= len(names):
                raise ValueError(f"fault {name!r} takes at most {len(names)} positional arguments ({', '.join(names)})")
            key, value = names[index], arg
        params[key.strip()] = value.strip()
    return name, params


def _coerce(name: str, key: str, value: object, kind: type) -> object:
    if value is None and key in ("n", "path", "method"):
        return None
    try:
        if kind is int and isinstance(value, (int, str)) and not isinstance(value, bool):
            return int(value)
        if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    except ValueError:
        pass
    raise ValueError(f"fault {name!r}: {key} must be {kind.__name__}, got {value!r}")


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"a fault count must be a positive integer, got {n!r}")


def _check_seconds(seconds: float) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
