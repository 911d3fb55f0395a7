"""The exactly-once protocol, sans-I/O: what happens to one order attempt next, as pure transitions.

The engine (:mod:`execution.engine`) is the shell: it reads and writes the database, talks to the
venue and keeps the clock. This module decides. Each function takes what is known about an
attempt (a :class:`Target`) and one *event* — what the venue answered, what a lookup found — and
returns the *actions* that follow, in the order the shell must carry them out. No I/O, no clock
(times come in with the events), no venue specifics: an order is anything shaped like
:class:`VenueOrder`, and the identifier scheme, the rules and the wire format stay in the adapter.

**The lifecycle of an attempt** (its row is committed, status ``unknown``, before its request
leaves; :func:`after_send` takes it from there):

=====================  ===================================================================
event                  actions
=====================  ===================================================================
live ``Accepted``      adopt it (:func:`adopt`: ``Record`` + follow, or final + settle),
                       and ``WakeExits``: the venue takes orders again
test ``Accepted``      ``Finish(test_ok)``; an exit of a test order is not a position
``Refused``            ``Finish(error)``: the venue refused, nothing was placed (an
                       authentication failure also alerts)
``BreakerOpen``        ``Finish(blocked, BREAKER_OPEN)``: nothing was sent
``RateLimited``        ``Wait`` (at most 5 s), then ``Retry(throttled)``
``Unknown``            live: ``Note`` and ``LookUp``; test: ``Retry(error)`` (a test order
                       creates nothing, so it is simply sent again)
``IdentifierTaken``    ``Note`` and ``LookUp``: the venue holds *an* order under the name
=====================  ===================================================================

**Resolving an unknown outcome** (:func:`after_lookup`): ``Found`` → :func:`adopt`. ``NotFound``
→ ``RecordNotFound``; once ``lookup_answers`` answers span at least ``lookup_window_s``
(:func:`absent`) the order was never placed: ``Retry(error)``; else ``Wait`` and ``LookUp``
again. ``LookupFailed`` → ``Wait`` and ``LookUp`` until the deadline, then ``Park`` (the next
wake tries again) and, once the attempt is older than ``review_after_s``, ``StartReview`` (the
needs-review queue: one critical alert; nothing else of its intent goes out meanwhile).

**Adoption** (:func:`adopt`): an order is adopted only when it is the order requested
(:func:`execution.adoption.mismatches`); otherwise ``RefuseForeign``: the attempt was not placed
(``error``), entries halt (the kill switch), an alert names both orders. An adopted open order is
``submitted`` and followed (``Follow``; its KRW is ``Placed``); a final one is ``done`` (something
executed) or ``cancelled``, and is no longer followed (``Unfollow``, ``Release``).

**Retrying** (:func:`retry`): an attempt number past ``max_attempts`` finishes the attempt with
the error (no next attempt); otherwise ``OpenNext``: the shell finishes this attempt and commits
the next one (a new identifier) in one transaction, after the gate agreed — its facts are the
shell's to gather.

**Exits** (live sells: :attr:`Target.exit`) are settled in the same unit of work as the status
that ends them: ``SettleExit(executed)`` when something executed, ``SettleExit(not_executed)``
for every other final status (the shell keeps such an exit pending; see ``persistence.exits``).

**The KRW budget** (buys only): ``Release(spent=False)`` when nothing was placed or nothing
filled, ``Release(spent=True)`` when an order ended with fills, ``Placed`` when the venue holds
one (from then on it has locked the KRW).

The order of the actions of one transition is the order of a unit of work: database actions
first, committed together, then the venue and the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from execution.adoption import mismatches
from model.reasons import Reason, Status

__all__ = [
    "Accepted", "Action", "Alert", "BreakerOpen", "Finish", "Follow", "Found", "IdentifierTaken", "LookUp",
    "LookupFailed", "LookupRules", "Note", "NotFound", "OpenNext", "Outcome", "Park", "Placed", "RateLimited",
    "Record", "RecordNotFound", "RefuseForeign", "Refused", "Release", "SettleExit", "StartReview", "Target",
    "Unfollow", "Unknown", "VenueOrder", "Wait", "WakeExits", "absent", "adopt", "after_lookup", "after_send",
    "retry", "status_of",
]

_FROZEN = {"frozen": True, "slots": True}  # small records, built positionally: Wait(1.0), Release(spent=True)
RATE_LIMIT_WAIT_MAX_S = 5.0


class VenueOrder(Protocol):
    """What the protocol reads of an order a venue showed (``exchange.models.Order`` is one)."""

    @property
    def uuid(self) -> str: ...
    @property
    def identifier(self) -> str | None: ...
    @property
    def market(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def ord_type(self) -> str: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def volume(self) -> Decimal | None: ...
    @property
    def state(self) -> str: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def executed_volume(self) -> Decimal: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One attempt, as the protocol sees it: its row and what settling it needs."""

    attempt_id: int
    paper_trade_id: int
    attempt: int  # 1, 2, … of its intent
    market: str
    side: str  # "bid" | "ask"
    mode: str  # the effective mode it was made in: "test" | "live" (shadow ones are never sent)
    identifier: str
    request: Mapping[str, str]
    created_at: datetime | None = None  # when its row was committed (for the needs-review queue)
    review_since: datetime | None = None  # in the needs-review queue since

    @property
    def live(self) -> bool:
        return self.mode == "live"

    @property
    def exit(self) -> bool:
        """A live sell: it closes a real position, so it must execute or stay pending."""
        return self.side == "ask" and self.live

    @property
    def buy(self) -> bool:
        return self.side == "bid"


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupRules:
    """How an unknown outcome is resolved (EXEC_LOOKUP_ANSWERS, EXEC_LOOKUP_WINDOW_S, EXEC_REVIEW_AFTER_S)."""

    answers: int = 3
    window_s: float = 3.0
    review_after_s: float = 300.0
    max_attempts: int = 3

    @property
    def interval_s(self) -> float:
        """The wait between two lookups: the answers spread evenly over the window."""
        return self.window_s / max(self.answers - 1, 1)

    @property
    def patience_s(self) -> float:
        """How long one resolution keeps asking while every lookup fails, before it parks."""
        return self.window_s * 3 + 10


# ---- events -----------------------------------------------------------------------------------


@dataclass(**_FROZEN)
class Accepted:
    """Event raised when the venue answered the request with its order (a test order: validated it)."""

    order: VenueOrder


@dataclass(**_FROZEN)
class Refused:
    """Event raised when the venue refused the request: nothing was placed."""

    error: str
    auth: bool = False  # the keys were refused (the operator must act)


@dataclass(**_FROZEN)
class BreakerOpen:
    """Event raised when the request was not sent: the endpoint's circuit breaker is open."""

    error: str


@dataclass(**_FROZEN)
class RateLimited:
    """Event raised when the venue's rate limit refused the request: nothing was placed."""

    error: str
    retry_after_s: float | None = None


@dataclass(**_FROZEN)
class Unknown:
    """Event raised when the outcome is unknown: timeout, reset, 5xx, garbled answer, a crash."""

    error: str


@dataclass(**_FROZEN)
class IdentifierTaken:
    """Event raised when the venue answered that the identifier is already in use."""

    error: str


@dataclass(**_FROZEN)
class Found:
    """Event raised when a lookup by identifier found an order."""

    order: VenueOrder


@dataclass(**_FROZEN)
class NotFound:
    """Event raised when a lookup by identifier answered "no such order" at ``at``."""

    at: datetime


@dataclass(**_FROZEN)
class LookupFailed:
    """Event raised when a lookup itself failed (the answer says nothing about the order)."""

    error: str
    at: datetime
    elapsed_s: float  # since this resolution began asking


SendResult = Accepted | Refused | BreakerOpen | RateLimited | Unknown | IdentifierTaken
LookupResult = Found | NotFound | LookupFailed


# ---- actions ----------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What became of an exit."""

    EXECUTED = "executed"
    NOT_EXECUTED = "not executed"


@dataclass(**_FROZEN)
class Record:
    """Command to adopt ``order`` as the attempt's: its uuid, state, figures, fills and a snapshot."""

    order: VenueOrder
    status: Status
    source: str  # reply | lookup | poll


@dataclass(**_FROZEN)
class Finish:
    """Command to give the attempt its final ``status``."""

    status: Status
    error: str | None = None
    reasons: tuple[str, ...] | None = None
    response: VenueOrder | None = None  # the venue's answer to keep (a test order's)


@dataclass(**_FROZEN)
class Note:
    """Command to remember why the outcome is (still) unknown, without changing the status."""

    error: str


@dataclass(**_FROZEN)
class RecordNotFound:
    """Command to persist one "not found" answer (a restart continues the count)."""

    at: datetime


@dataclass(**_FROZEN)
class RefuseForeign:
    """Command to refuse an order under our identifier that is not ours: the attempt was not placed,
    entries halt (the kill switch) and an alert names both orders."""

    order: VenueOrder
    mismatches: tuple[str, ...]
    source: str


@dataclass(**_FROZEN)
class SettleExit:
    """Command to record what became of a live exit (in the unit of work that ended its attempt)."""

    outcome: Outcome
    why: str


@dataclass(**_FROZEN)
class StartReview:
    """Command to put the attempt in the needs-review queue (once), with one critical alert."""

    why: str
    age_s: float


@dataclass(**_FROZEN)
class Alert:
    """Command to alert the operator."""

    level: str
    text: str


@dataclass(**_FROZEN)
class WakeExits:
    """Command to re-check pending exits now: the venue takes orders again."""


@dataclass(**_FROZEN)
class Wait:
    """Command to wait ``seconds`` before the next action."""

    seconds: float


@dataclass(**_FROZEN)
class LookUp:
    """Command to look the attempt's identifier up at the venue (its answer is a lookup event)."""


@dataclass(**_FROZEN)
class Park:
    """Command to stop working on the attempt until the next wake: it stays unknown."""

    why: str


@dataclass(**_FROZEN)
class OpenNext:
    """Command to finish the attempt with ``status`` and, in the same transaction, commit the intent's
    next attempt if the gate lets it through (the shell gathers the gate's facts), then send it."""

    status: Status
    error: str


@dataclass(**_FROZEN)
class Follow:
    """Command to poll the venue's order until it is final."""


@dataclass(**_FROZEN)
class Unfollow:
    """Command to stop polling the attempt's order."""


@dataclass(**_FROZEN)
class Placed:
    """Command to the KRW budget: the venue holds the buy now (reads after this reflect its lock)."""


@dataclass(**_FROZEN)
class Release:
    """Command to the KRW budget: the buy is over; ``spent`` when it filled (or may have)."""

    spent: bool


Action = (Record | Finish | Note | RecordNotFound | RefuseForeign | SettleExit | StartReview | Alert | WakeExits
          | Wait | LookUp | Park | OpenNext | Follow | Unfollow | Placed | Release)
DATABASE_ACTIONS = (Record, Finish, Note, RecordNotFound, RefuseForeign, SettleExit, StartReview, Alert, WakeExits)
"""The actions a unit of work commits together, before the venue and budget actions that follow them."""


# ---- transitions ------------------------------------------------------------------------------


def status_of(order: VenueOrder) -> Status:
    """``submitted`` while the venue holds it open; ``done`` once anything executed; else ``cancelled``."""
    if order.is_open:
        return Status.SUBMITTED
    if order.state == "done" or order.executed_volume > 0:
        return Status.DONE
    return Status.CANCELLED


def after_send(target: Target, result: SendResult, rules: LookupRules) -> list[Action]:
    """What follows the venue's answer to the attempt's request (see the module docstring)."""
    if isinstance(result, Accepted):
        if target.live:
            return [*adopt(target, result.order, "reply"), WakeExits()]
        return [Finish(Status.TEST_OK, None, response=result.order), *_released(target, spent=False)]
    if isinstance(result, BreakerOpen):
        return _ended(target, Finish(Status.BLOCKED, result.error, reasons=(Reason.BREAKER_OPEN.value,)),
                      spent=False)
    if isinstance(result, RateLimited):
        wait = min(result.retry_after_s or 1.0, RATE_LIMIT_WAIT_MAX_S)
        return [Wait(wait), *retry(target, Status.THROTTLED, f"refused by the rate limit: {result.error}", rules)]
    if isinstance(result, Refused):
        actions = _ended(target, Finish(Status.ERROR, result.error), spent=False)
        if result.auth:
            actions.insert(1, Alert("error", f"order {target.identifier} refused: {result.error}"))
        return actions
    if isinstance(result, IdentifierTaken):
        return [Note(f"duplicate identifier: {result.error}"), LookUp()]
    # Unknown: it may or may not be on the venue
    if target.live:
        return [Note(result.error), LookUp()]
    return retry(target, Status.ERROR, f"test order outcome unknown: {result.error}", rules)


def adopt(target: Target, order: VenueOrder, source: str) -> list[Action]:
    """Take ``order`` as the attempt's — only when it is the order requested."""
    found = mismatches(order, target.request)
    if found:
        actions: list[Action] = [RefuseForeign(order, found, source)]
        if target.exit:
            actions.append(SettleExit(Outcome.NOT_EXECUTED, f"identifier {target.identifier} taken by a foreign order"))
        return [*actions, Unfollow(), *_released(target, spent=False)]
    status = status_of(order)
    actions = [Record(order, status, source)]
    if status is Status.SUBMITTED:
        return [*actions, Placed(), Follow()] if target.buy else [*actions, Follow()]
    if target.exit:
        executed = order.executed_volume > 0
        actions.append(SettleExit(Outcome.EXECUTED if executed else Outcome.NOT_EXECUTED,
                                  f"the venue {order.state} the order with nothing filled"))
    return [*actions, Unfollow(), *_released(target, spent=order.executed_volume > 0)]


def absent(lookups: tuple[datetime, ...], rules: LookupRules) -> bool:
    """Whether the "not found" answers prove the order was never placed: at least ``answers`` of them,
    spread over at least ``window_s`` (the venue lists a new order late; the window outlasts that)."""
    return len(lookups) >= rules.answers and (lookups[-1] - lookups[0]).total_seconds() >= rules.window_s


def after_lookup(target: Target, lookups: tuple[datetime, ...], result: LookupResult,
                 rules: LookupRules) -> tuple[tuple[datetime, ...], list[Action]]:
    """The answers so far (``lookups``: every "not found", persisted) and one more: what follows."""
    if isinstance(result, Found):
        return lookups, adopt(target, result.order, "lookup")
    if isinstance(result, NotFound):
        seen = (*lookups, result.at)
        if absent(seen, rules):
            span = (seen[-1] - seen[0]).total_seconds()
            return seen, [RecordNotFound(result.at),
                          *retry(target, Status.ERROR, f"never placed: not found by {len(seen)} lookups over "
                                                       f"{span:.1f} s", rules)]
        return seen, [RecordNotFound(result.at), Wait(rules.interval_s), LookUp()]
    # LookupFailed
    if result.elapsed_s <= rules.patience_s:
        return lookups, [Wait(rules.interval_s), LookUp()]
    why = f"every lookup failed, the last with: {result.error}"
    actions: list[Action] = []
    if target.review_since is None and target.created_at is not None:
        age = (result.at - target.created_at).total_seconds()
        if age >= rules.review_after_s:
            actions.append(StartReview(why, age))
    return lookups, [*actions, Park(why)]


def retry(target: Target, status: Status, error: str, rules: LookupRules) -> list[Action]:
    """End the attempt with ``status``; a next attempt follows unless the intent used its last one."""
    limit = rules.max_attempts
    if target.attempt >= limit:
        return _ended(target, Finish(status, f"{error}; no attempt {target.attempt + 1}: at most {limit} per intent"),
                      spent=False)
    return [OpenNext(status, error)]


def _ended(target: Target, finish: Finish, *, spent: bool) -> list[Action]:
    """A final status that executed nothing: the exit (if it is one) stays to do; the KRW is free."""
    actions: list[Action] = [finish]
    if target.exit:
        reasons = f" ({', '.join(finish.reasons)})" if finish.reasons else ""
        actions.append(SettleExit(Outcome.NOT_EXECUTED, f"{finish.status.value}{reasons}"
                                                        + (f": {finish.error}" if finish.error else "")))
    return [*actions, *_released(target, spent=spent)]


def _released(target: Target, *, spent: bool) -> list[Action]:
    return [Release(spent)] if target.buy else []
