"""execution.protocol: the exactly-once protocol's pure transitions, with no database and no venue.

First the transition table, case by case. Then Hypothesis drives the core through a minimal
in-memory shell — a venue that accepts, refuses, fails before or after placing, drops answers and
lists orders late, and a store that keeps only what a unit of work committed — with a crash
injected at any point of any unit of work (everything not committed is lost, the restarted shell
resumes every unknown attempt by lookup). Whatever the script and wherever the crash: at most one
venue order per intent, never an identifier twice, and once the venue behaves every attempt is
final and every venue order is adopted by the attempt that placed it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution import protocol as p
from model.reasons import Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = p.LookupRules(answers=3, window_s=2.0, review_after_s=60.0, max_attempts=3)
BUY = {"market": "KRW-BTC", "side": "bid", "ord_type": "price", "price": "100000", "identifier": "b-1-1-aaaa"}
SELL = {"market": "KRW-BTC", "side": "ask", "ord_type": "market", "volume": "0.001", "identifier": "b-2-1-bbbb"}


@dataclass(frozen=True)
class Order:
    """A venue order, shaped like exchange.models.Order as far as the protocol reads it."""

    uuid: str
    identifier: str | None
    market: str
    side: str
    ord_type: str
    price: Decimal | None
    volume: Decimal | None
    state: str = "wait"
    executed_volume: Decimal = Decimal(0)

    @property
    def is_open(self) -> bool:
        return self.state in ("wait", "watch")


def _order_for(request: dict[str, str], uuid: str = "u-1", **changes: object) -> Order:
    order = Order(uuid=uuid, identifier=request["identifier"], market=request["market"], side=request["side"],
                  ord_type=request["ord_type"], price=Decimal(request["price"]) if "price" in request else None,
                  volume=Decimal(request["volume"]) if "volume" in request else None)
    return replace(order, **changes)  # type: ignore[arg-type]


def _target(request: dict[str, str], *, mode: str = "live", attempt: int = 1, **extra: object) -> p.Target:
    return p.Target(attempt_id=7, paper_trade_id=1, attempt=attempt, market=request["market"], side=request["side"],
                    mode=mode, identifier=request["identifier"], request=request, **extra)  # type: ignore[arg-type]


def _kinds(actions: list[p.Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


# ---- the transition table ------------------------------------------------------------------------


def test_a_live_reply_is_adopted_followed_and_wakes_pending_exits() -> None:
    actions = p.after_send(_target(BUY), p.Accepted(_order_for(BUY)), RULES)
    assert _kinds(actions) == ["Record", "Placed", "Follow", "WakeExits"]
    assert actions[0] == p.Record(_order_for(BUY), Status.SUBMITTED, "reply")


def test_a_filled_live_exit_is_settled_executed_in_its_unit_of_work() -> None:
    done = _order_for(SELL, state="done", executed_volume=Decimal("0.001"))
    actions = p.after_send(_target(SELL), p.Accepted(done), RULES)
    assert _kinds(actions) == ["Record", "SettleExit", "Unfollow", "WakeExits"]
    assert actions[1] == p.SettleExit(p.Outcome.EXECUTED, "the venue done the order with nothing filled")


@pytest.mark.parametrize(("result", "kinds", "status"), [
    (p.BreakerOpen("open"), ["Finish", "SettleExit"], Status.BLOCKED),
    (p.Refused("under_min_total_ask"), ["Finish", "SettleExit"], Status.ERROR),
    (p.Refused("invalid key", auth=True), ["Finish", "Alert", "SettleExit"], Status.ERROR),
])
def test_a_live_exit_that_was_not_placed_stays_to_do(result: p.SendResult, kinds: list[str], status: Status) -> None:
    actions = p.after_send(_target(SELL), result, RULES)
    assert _kinds(actions) == kinds
    assert isinstance(actions[0], p.Finish) and actions[0].status is status
    assert actions[-1].outcome is p.Outcome.NOT_EXECUTED  # type: ignore[union-attr]


def test_a_refused_buy_frees_its_krw_and_a_test_order_is_never_an_exit() -> None:
    assert _kinds(p.after_send(_target(BUY), p.Refused("x"), RULES)) == ["Finish", "Release"]
    assert _kinds(p.after_send(_target(SELL, mode="test"), p.Refused("x"), RULES)) == ["Finish"]
    assert _kinds(p.after_send(_target(SELL, mode="test"), p.Accepted(_order_for(SELL)), RULES)) == ["Finish"]


def test_an_unknown_outcome_is_looked_up_live_and_simply_retried_in_test() -> None:
    assert _kinds(p.after_send(_target(BUY), p.Unknown("timeout"), RULES)) == ["Note", "LookUp"]
    assert _kinds(p.after_send(_target(BUY), p.IdentifierTaken("dup"), RULES)) == ["Note", "LookUp"]
    assert p.after_send(_target(BUY, mode="test"), p.Unknown("5xx"), RULES) == [
        p.OpenNext(Status.ERROR, "test order outcome unknown: 5xx")]


def test_a_rate_limit_waits_then_retries_and_the_last_attempt_finishes() -> None:
    assert p.after_send(_target(BUY), p.RateLimited("429", 30.0), RULES) == [
        p.Wait(5.0), p.OpenNext(Status.THROTTLED, "refused by the rate limit: 429")]
    last = p.after_send(_target(SELL, attempt=3), p.RateLimited("429"), RULES)
    assert _kinds(last) == ["Wait", "Finish", "SettleExit"]
    assert "no attempt 4: at most 3 per intent" in (last[1].error or "")  # type: ignore[union-attr]


def test_an_order_that_is_not_ours_is_never_adopted() -> None:
    foreign = _order_for(BUY, side="ask", ord_type="limit", price=Decimal(7000))
    actions = p.adopt(_target(SELL), foreign, "lookup")
    assert _kinds(actions) == ["RefuseForeign", "SettleExit", "Unfollow"]
    assert "side 'ask', we asked for 'bid'" not in actions[0].mismatches  # type: ignore[union-attr]
    assert any("ord_type" in m for m in actions[0].mismatches)  # type: ignore[union-attr]


def test_absent_needs_enough_answers_over_the_window() -> None:
    assert not p.absent((T0, T0 + timedelta(seconds=5)), RULES)  # two answers, three needed
    assert not p.absent((T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1.9)), RULES)  # within the window
    assert p.absent((T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)), RULES)


def test_lookups_count_up_to_absent_then_the_next_attempt() -> None:
    target = _target(BUY)
    seen, actions = p.after_lookup(target, (), p.NotFound(T0), RULES)
    assert seen == (T0,) and actions == [p.RecordNotFound(T0), p.Wait(1.0), p.LookUp()]
    seen, actions = p.after_lookup(target, (T0, T0 + timedelta(seconds=1)), p.NotFound(T0 + timedelta(seconds=2)),
                                   RULES)
    assert _kinds(actions) == ["RecordNotFound", "OpenNext"]
    assert "never placed: not found by 3 lookups over 2.0 s" in actions[1].error  # type: ignore[union-attr]


def test_failing_lookups_park_and_an_old_attempt_enters_review_once() -> None:
    young = _target(BUY, created_at=T0)
    assert _kinds(p.after_lookup(young, (), p.LookupFailed("503", T0, 1.0), RULES)[1]) == ["Wait", "LookUp"]
    parked = p.after_lookup(young, (), p.LookupFailed("503", T0 + timedelta(seconds=30), 99.0), RULES)[1]
    assert _kinds(parked) == ["Park"]
    old = p.after_lookup(young, (), p.LookupFailed("503", T0 + timedelta(seconds=61), 99.0), RULES)[1]
    assert _kinds(old) == ["StartReview", "Park"] and old[0].age_s == 61.0  # type: ignore[union-attr]
    in_review = replace(young, review_since=T0 + timedelta(seconds=61))
    assert _kinds(p.after_lookup(in_review, (), p.LookupFailed("503", T0 + timedelta(hours=1), 99.0),
                                 RULES)[1]) == ["Park"]


# ---- the core over every crash point, in memory -----------------------------------------------------


class Crash(Exception):
    """The process died here: what the store has not committed is lost."""


@dataclass
class Row:
    """An attempt as the store keeps it."""

    intent: int
    number: int
    identifier: str
    request: dict[str, str]
    status: str = "unknown"
    uuid: str | None = None
    lookups: tuple[datetime, ...] = ()
    created_at: datetime = T0


@dataclass
class Venue:
    """A venue in memory: scripted answers, a listing lag, identifiers never reused."""

    script: list[str]  # per request: accept | refuse | fail-before | fail-after | rate | dup-foreign
    lag: int  # lookups that do not see a new order yet
    orders: list[Order] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    hidden: dict[str, int] = field(default_factory=dict)
    uuids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _place(self, request: dict[str, str], identifier: str) -> Order:
        order = _order_for(request, uuid=f"u-{next(self.uuids)}")
        order = replace(order, identifier=identifier)
        self.orders.append(order)
        self.used.add(identifier)
        self.hidden[order.uuid] = self.lag
        return order

    def send(self, request: dict[str, str]) -> p.SendResult:
        answer = self.script.pop(0) if self.script else "accept"
        ident = request["identifier"]
        if ident in self.used:
            return p.IdentifierTaken("duplicate identifier")
        if answer == "refuse":
            self.used.add(ident)
            return p.Refused("refused")
        if answer == "fail-before":
            return p.Unknown("503 before processing")
        if answer == "rate":
            return p.RateLimited("429", 0.1)
        if answer == "dup-foreign":
            self.orders.append(Order(uuid=f"f-{next(self.uuids)}", identifier=ident, market="KRW-BTC", side="bid",
                                     ord_type="limit", price=Decimal(7000), volume=Decimal(1)))
            self.used.add(ident)
            return p.IdentifierTaken("duplicate identifier")
        order = self._place(request, ident)
        if answer == "fail-after":
            return p.Unknown("connection reset after the order was placed")
        return p.Accepted(order)

    def find(self, identifier: str) -> Order | None:
        for order in self.orders:
            if order.identifier == identifier:
                if self.hidden.get(order.uuid, 0) > 0:
                    self.hidden[order.uuid] -= 1
                    return None
                return order
        return None


@dataclass
class Shell:
    """The engine's shell, reduced to what the protocol needs; crashes at the chosen unit of work."""

    venue: Venue
    crash_at: int | None
    rows: dict[int, Row] = field(default_factory=dict)
    nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    clock: datetime = T0
    units: int = 0

    def _unit(self) -> None:
        self.units += 1
        if self.crash_at is not None and self.units == self.crash_at:
            self.crash_at = None
            raise Crash

    def _target(self, rid: int) -> p.Target:
        row = self.rows[rid]
        return p.Target(attempt_id=rid, paper_trade_id=row.intent, attempt=row.number, market="KRW-BTC",
                        side=row.request["side"], mode="live", identifier=row.identifier, request=row.request,
                        created_at=row.created_at)

    def begin(self, intent: int, side: str, number: int = 1, finishing: tuple[int, str] | None = None) -> None:
        base = dict(BUY if side == "bid" else SELL)
        base["identifier"] = f"b-{intent}-{number}-{next(self.nonces)}"
        self._unit()  # the attempt is committed before its request leaves (with the end of the one it follows)
        if finishing is not None:
            self.rows[finishing[0]].status = finishing[1]
        rid = len(self.rows) + 1
        self.rows[rid] = Row(intent=intent, number=number, identifier=base["identifier"], request=base,
                             created_at=self.clock)
        self._unit()  # the failpoint between commit and send
        result = self.venue.send(base)
        self._unit()  # the failpoint between the venue's answer and its record
        self.apply(rid, p.after_send(self._target(rid), result, RULES))

    def apply(self, rid: int, actions: list[p.Action]) -> None:
        row = self.rows[rid]
        staged = dict(status=row.status, uuid=row.uuid, lookups=row.lookups)
        for action in actions:  # the database actions of the unit of work, staged then committed
            if isinstance(action, p.Record):
                staged.update(status=action.status.value, uuid=action.order.uuid)
            elif isinstance(action, p.Finish | p.RefuseForeign):
                staged["status"] = "error" if isinstance(action, p.RefuseForeign) else action.status.value
            elif isinstance(action, p.RecordNotFound):
                staged["lookups"] = (*row.lookups, action.at)
        self._unit()
        row.status, row.uuid, row.lookups = staged["status"], staged["uuid"], staged["lookups"]  # type: ignore[assignment]
        for action in actions:
            if isinstance(action, p.OpenNext):  # finished together with the next attempt's commit
                self.begin(row.intent, row.request["side"], row.number + 1, finishing=(rid, action.status.value))
            elif isinstance(action, p.LookUp):
                self.resolve(rid)

    def resolve(self, rid: int) -> None:
        row = self.rows[rid]
        self.clock += timedelta(seconds=RULES.interval_s)
        order = self.venue.find(row.identifier)
        result: p.LookupResult = p.Found(order) if order is not None else p.NotFound(self.clock)
        _seen, actions = p.after_lookup(self._target(rid), row.lookups, result, RULES)
        self.apply(rid, actions)

    def restart(self) -> None:
        """A new incarnation: every attempt still unknown is resolved by lookup."""
        for rid, row in list(self.rows.items()):
            if row.status == "unknown":
                self.resolve(rid)


@settings(max_examples=300, deadline=None)
@given(scripts=st.lists(st.lists(st.sampled_from(["accept", "refuse", "fail-before", "fail-after", "rate",
                                                   "dup-foreign"]), max_size=4), min_size=1, max_size=4),
       lag=st.integers(0, 1), crash_at=st.none() | st.integers(1, 40), sides=st.lists(st.sampled_from(["bid", "ask"]),
                                                                                        min_size=4, max_size=4))
def test_whatever_crashes_at_most_one_venue_order_per_intent_and_every_attempt_ends(
        scripts: list[list[str]], lag: int, crash_at: int | None, sides: list[str]) -> None:
    venue = Venue(script=[answer for script in scripts for answer in script], lag=lag)
    shell = Shell(venue=venue, crash_at=crash_at)
    for intent, side in enumerate(sides[:len(scripts)], start=1):
        while True:
            try:
                if not any(r.intent == intent for r in shell.rows.values()):
                    shell.begin(intent, side)
                shell.restart()
                break
            except Crash:
                continue  # the restarted shell resumes from what was committed
    ours = [o for o in venue.orders if not o.uuid.startswith("f-")]
    per_intent: dict[str, int] = {}
    for order in ours:
        intent = order.identifier.split("-")[1]  # type: ignore[union-attr]
        per_intent[intent] = per_intent.get(intent, 0) + 1
    assert all(n == 1 for n in per_intent.values()), per_intent
    assert len({o.identifier for o in ours}) == len(ours)
    assert all(r.status != "unknown" for r in shell.rows.values()), shell.rows
    started = {r.intent for r in shell.rows.values()}
    assert started == set(range(1, len(scripts[:4]) + 1)) or started == set(range(1, min(len(scripts), 4) + 1))
    for intent in started:  # an intent's last attempt is final and no earlier one is open: never dropped half-way
        last = max((r for r in shell.rows.values() if r.intent == intent), key=lambda r: r.number)
        assert last.status in ("submitted", "done", "cancelled", "error", "blocked", "throttled"), last
    adopted = {r.uuid for r in shell.rows.values() if r.uuid}
    assert {o.uuid for o in ours} <= adopted  # every order of ours belongs to the attempt that placed it
    assert not any(o.uuid.startswith("f-") for o in venue.orders if o.uuid in adopted)  # nothing foreign adopted
