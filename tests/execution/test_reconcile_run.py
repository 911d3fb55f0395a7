"""execution.reconcile_run: when a reconciliation is due, when it waits, what it concludes and writes.

Values in, values out: no clock, no database, no exchange. The properties the contract promises
are checked over many generated cases (hypothesis); the examples pin the exact texts and order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.models import Account
from execution.reconcile import MISSING_AFTER_S, Difference, Report
from execution.reconcile_run import (
    ALERT_KIND,
    SNAPSHOT_EVERY,
    Action,
    Balances,
    ClearRequest,
    Deferred,
    Failed,
    Observation,
    Plan,
    RaiseAlert,
    RecordEvent,
    Schedule,
    SetFlag,
    Trigger,
    confirmed,
    defer_changed,
    defer_unresolved,
    defer_unsettled,
    needs_second_look,
    observation,
    plan,
    snapshot_due,
    to_cancel,
    to_look_up,
)
from model.reconciliation import ExchangeOrder, OurOrder

AT = datetime(2024, 5, 1, 12, tzinfo=UTC)
ISO = AT.isoformat()
POLL, INTERVAL = 5.0, 60.0
HALT, RECONCILED = "reconcile_halt", "reconciled"
TRIGGERS: tuple[Trigger, ...] = ("start", "periodic", "command")


def _order(uuid: str, identifier: str | None = None, *, state: str = "wait", executed: str = "0",
           fee: str = "0") -> ExchangeOrder:
    return ExchangeOrder(uuid=uuid, identifier=identifier, market="KRW-BTC", side="bid", ord_type="limit",
                         state=state, price=D(90_000_000), volume=D("0.001"), executed_volume=D(executed),
                         paid_fee=D(fee))


def _ours(attempt_id: int, *, status: str = "submitted", uuid: str | None = None, executed: str = "0",
          fee: str = "0", age_s: float = float("inf")) -> OurOrder:
    return OurOrder(attempt_id=attempt_id, identifier=f"bot-{attempt_id}-1", status=status, market="KRW-BTC",
                    uuid=uuid, executed_volume=D(executed), paid_fee=D(fee), age_s=age_s)


def _account(currency: str, balance: str, locked: str = "0", avg: str = "0") -> Account:
    return Account(currency=currency, balance=D(balance), locked=D(locked), avg_buy_price=D(avg),
                   avg_buy_price_modified=False, unit_currency="KRW")


def _schedule() -> Schedule:
    return Schedule(poll_s=POLL, interval_s=INTERVAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """A completed report as stored (what ``persistence.account.ReportRow`` gives the core)."""

    ok: bool
    differences: list[dict[str, Any]]
    unknown_orders: list[dict[str, Any]]
    missing_orders: list[dict[str, Any]]

    @classmethod
    def of(cls, written: Plan) -> Row:
        return cls(ok=written.ok, differences=list(written.found["differences"]),
                   unknown_orders=list(written.found["unknown_orders"]),
                   missing_orders=list(written.found["missing_orders"]))


def _plan(outcome: Observation | Failed, *, trigger: Trigger = "periodic", request: object = None,
          halt: object = None, last: Row | None = None, halt_on: bool = True,
          cancels: dict[str, str] | None = None) -> Plan:
    return plan(trigger=trigger, outcome=outcome, at=AT, request=request, halt=halt, last=last,
                halt_on_difference=halt_on, cancels=cancels)


def _flags(actions: tuple[Action, ...], name: str) -> list[object]:
    """The values ``actions`` set the flag ``name`` to, in order."""
    return [a.value for a in actions if isinstance(a, SetFlag) and a.name == name]


KRW_DIFF = Difference(currency="KRW", expected=D(10_000_000), actual=D(10_050_000), value_krw=D(50_000))
FINDINGS = Report(differences=(KRW_DIFF,), unknown_orders=(_order("u-9", "manual-1"),),
                  missing_orders=(_ours(5, uuid="gone"),))


# ---- what is due -------------------------------------------------------------------------------


def test_a_new_schedule_polls_and_reconciles_at_once_and_a_request_comes_first() -> None:
    s = _schedule()
    assert s.poll_due(0.0)
    assert s.due(0.0, requested=False) == "start"
    assert s.due(0.0, requested=True) == "command"


def test_polls_fall_due_every_poll_s_from_when_the_last_began() -> None:
    s = _schedule().polled(10.0)
    assert not s.poll_due(10.0) and not s.poll_due(14.999)
    assert s.poll_due(15.0)
    assert s.due(12.0, requested=False) == "start"  # polling changes nothing about reconciling


def test_after_a_run_the_next_is_periodic_one_interval_after_it_ended() -> None:
    s = _schedule().finished(100.0)
    assert s.due(100.0, requested=False) is None
    assert s.due(159.999, requested=False) is None
    assert s.due(160.0, requested=False) == "periodic"
    assert s.due(101.0, requested=True) == "command"


@pytest.mark.parametrize("trigger", ["start", "periodic"])
def test_a_deferred_start_or_periodic_run_stays_due_on_every_wake_until_a_run_finishes(trigger: Trigger) -> None:
    s = _schedule().finished(0.0) if trigger == "periodic" else _schedule()
    s = s.deferred(trigger, "attempt 1: outcome unknown", now=61.0).schedule
    assert s.due(61.5, requested=False) == trigger
    assert s.due(61.5, requested=True) == "command"
    done = s.finished(62.0)
    assert done.due(62.5, requested=False) is None and done.due(122.0, requested=False) == "periodic"


def test_a_deferred_command_leaves_what_was_pending_as_it_was() -> None:
    # the request stays in its flag; the start it took the place of is still owed
    s = _schedule().deferred("command", "why", now=0.0).schedule
    assert s.due(1.0, requested=False) == "start"
    s = _schedule().finished(0.0).deferred("command", "why", now=1.0).schedule
    assert s.due(2.0, requested=False) is None
    assert s.due(60.0, requested=False) == "periodic"


def test_a_deferral_is_said_when_it_begins_and_again_once_per_interval_while_it_lasts() -> None:
    first = _schedule().deferred("start", "attempt 1: outcome unknown", now=10.0)
    assert (first.say, first.level) == ("start reconciliation deferred: attempt 1: outcome unknown", logging.INFO)
    quiet = first.schedule.deferred("start", "attempt 1: outcome unknown", now=69.9)
    assert quiet.say is None
    late = quiet.schedule.deferred("start", "attempt 1: outcome unknown", now=70.0)
    assert (late.say, late.level) == ("start reconciliation deferred for 60 s: attempt 1: outcome unknown",
                                      logging.WARNING)
    assert late.schedule.deferred("start", "x", now=129.0).say is None
    # a run that finishes ends the deferral: the next one is said at once
    again = late.schedule.finished(130.0).deferred("periodic", "y", now=190.0)
    assert (again.say, again.level) == ("periodic reconciliation deferred: y", logging.INFO)


@pytest.mark.parametrize(("poll_s", "interval_s"), [(0.0, 60.0), (5.0, 0.0), (-1.0, 60.0)])
def test_a_schedule_needs_positive_periods(poll_s: float, interval_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Schedule(poll_s=poll_s, interval_s=interval_s)


WAKE = st.tuples(st.floats(min_value=0.0, max_value=150.0, allow_nan=False), st.booleans(),
                 st.sampled_from(["deferred", "finished"]))


@settings(max_examples=300, deadline=None)
@given(wakes=st.lists(WAKE, max_size=40))
def test_what_is_due_over_any_sequence_of_wakes(wakes: list[tuple[float, bool, str]]) -> None:
    """A request is served at once; the start is owed until a run finishes; a periodic run comes
    no sooner than an interval after the last one ended; a deferred run is owed until one finishes;
    a deferral is said when it begins and then at most once per interval."""
    s, now = _schedule(), 0.0
    finished_at: float | None = None  # when the last run ended
    owed: Trigger | None = "start"  # a start or periodic run due, deferred
    said_at: float | None = None  # when the current deferral was last said
    for step, requested, outcome in wakes:
        now += step
        trigger = s.due(now, requested=requested)
        if requested:
            assert trigger == "command"
        elif owed is not None:
            assert trigger == owed
        else:
            assert finished_at is not None
            assert (trigger == "periodic") == (now >= finished_at + INTERVAL)
            assert trigger in ("periodic", None)
        if trigger is None:
            continue
        if outcome == "finished":
            s, finished_at, owed, said_at = s.finished(now), now, None, None
            continue
        deferral = s.deferred(trigger, "why", now=now)
        s = deferral.schedule
        if trigger != "command":
            owed = trigger
        if said_at is None:
            assert deferral.say is not None and deferral.level == logging.INFO
        elif now - said_at >= INTERVAL:
            assert deferral.say is not None and deferral.level == logging.WARNING
        else:
            assert deferral.say is None
        if deferral.say is not None:
            said_at = now


def test_a_snapshot_is_written_when_the_holdings_change_or_the_last_is_ten_minutes_old() -> None:
    held = frozenset({("KRW", D(10))})
    assert snapshot_due(held, None, AT)
    assert not snapshot_due(held, (AT, held), AT + timedelta(minutes=9, seconds=59))
    assert snapshot_due(held, (AT, held), AT + SNAPSHOT_EVERY)
    assert snapshot_due(frozenset({("KRW", D(11))}), (AT, held), AT + timedelta(seconds=1))
    assert snapshot_due(frozenset(), (AT, held), AT)


# ---- one observation -----------------------------------------------------------------------------


def test_an_attempt_whose_outcome_is_unknown_defers_before_anything_is_read() -> None:
    assert defer_unresolved([_ours(1, uuid="u-1"), _ours(2)]) is None
    assert defer_unresolved([]) is None
    waiting = defer_unresolved([_ours(1, uuid="u-1"), _ours(2, status="unknown"), _ours(3, status="unknown")])
    assert isinstance(waiting, Deferred)
    assert waiting.why == ("attempt 2 (bot-2-1, KRW-BTC, uuid unknown): outcome unknown; "
                           "attempt 3 (bot-3-1, KRW-BTC, uuid unknown): outcome unknown")


def test_only_the_attempts_not_among_the_open_orders_are_looked_up() -> None:
    ours = [_ours(1, uuid="u-1"), _ours(2), _ours(3, uuid="u-3")]
    seen, rest = to_look_up(ours, [_order("u-1"), _order("u-x", "bot-2-1")])
    assert {k: v.uuid if v else None for k, v in seen.items()} == {1: "u-1", 2: "u-x"}
    assert [a.attempt_id for a in rest] == [3]


def test_a_just_placed_order_the_exchange_does_not_list_yet_defers_an_old_one_is_missing() -> None:
    young = _ours(1, uuid="u-1", age_s=MISSING_AFTER_S - 0.01)
    old = _ours(2, uuid="u-2", age_s=MISSING_AFTER_S)
    waiting = defer_unsettled([young, old], {1: None, 2: None})
    assert isinstance(waiting, Deferred) and "not listed by the exchange yet" in waiting.why
    assert "attempt 2" not in waiting.why
    assert defer_unsettled([old], {2: None}) is None
    assert defer_unsettled([_ours(3, uuid="u-3", executed="0.001", fee="50")],
                           {3: _order("u-3", executed="0.001", fee="50")}) is None  # resting, all recorded
    finished = defer_unsettled([_ours(4, uuid="u-4")], {4: _order("u-4", state="done", executed="0.001")})
    assert isinstance(finished, Deferred) and "done on the exchange, not yet recorded" in finished.why


def test_attempts_that_changed_while_the_exchange_was_read_defer_their_ages_do_not() -> None:
    ours = [_ours(1, uuid="u-1", age_s=3.0)]
    assert defer_changed(ours, [replace(ours[0], age_s=4.5)]) is None
    for again in ([], [*ours, _ours(2, status="unknown")], [replace(ours[0], executed_volume=D("0.001"))],
                  [replace(ours[0], status="unknown")]):
        assert defer_changed(ours, again) == Deferred(why="our attempts changed while the exchange was read")


def test_balances_are_balance_plus_locked_and_without_a_ledger_the_exchange_is_compared_with_itself() -> None:
    accounts = [_account("KRW", "900000", "100050"), _account("BTC", "0.5", "0.1", avg="90000000")]
    first = Balances.of(accounts, None)
    assert first.actual == {"KRW": D(1_000_050), "BTC": D("0.6")} and first.expected == first.actual
    assert first.first and first.to_value == ()
    seen = observation(balances=first, prices={}, tolerance_krw=D(1), open_orders=[], known_uuids=frozenset(),
                       known_identifiers=frozenset(), ours=[], seen={}, prefix="bot-")
    assert seen.report.ok and seen.baseline == {"KRW": D(1_000_050), "BTC": D("0.6")}
    later = Balances.of(accounts, {"KRW": D(1_000_050), "BTC": D("0.5")})
    assert not later.first and later.to_value == ("BTC",)


def test_a_moved_coin_is_valued_at_its_ticker_else_at_a_positive_avg_buy_price_else_not_at_all() -> None:
    accounts = [_account("KRW", "1000"), _account("BTC", "2", avg="90"), _account("ETH", "2", avg="40"),
                _account("XRP", "2"), _account("SOL", "1", avg="7")]
    balances = Balances.of(accounts, {"KRW": D(1000), "BTC": D(1), "ETH": D(1), "XRP": D(1), "SOL": D(1)})
    assert balances.to_value == ("BTC", "ETH", "XRP")  # SOL did not move, KRW needs no price
    prices = balances.prices({"BTC": D(100), "ETH": D(0), "XRP": None})
    assert prices == {"BTC": D(100), "ETH": D(40)}
    seen = observation(balances=balances, prices=prices, tolerance_krw=D(50), open_orders=[],
                       known_uuids=frozenset(), known_identifiers=frozenset(), ours=[], seen={}, prefix="bot-")
    assert [(d.currency, d.value_krw) for d in seen.report.differences] == [("BTC", D(100)), ("XRP", None)]
    assert seen.baseline is None


def test_an_observation_reports_unknown_and_missing_orders() -> None:
    balances = Balances.of([_account("KRW", "1000")], {"KRW": D(1000)})
    seen = observation(balances=balances, prices={}, tolerance_krw=D(1), prefix="bot-",
                       open_orders=[_order("u-1"), _order("u-2", "bot-77-1"), _order("u-3", "bot-3-1")],
                       known_uuids=frozenset({"u-1"}), known_identifiers=frozenset({"bot-3-1"}),
                       ours=[_ours(9, uuid="gone")], seen={9: None})
    assert [(o.uuid, o.ours_by_prefix) for o in seen.report.unknown_orders] == [("u-2", True)]
    assert [o.attempt_id for o in seen.report.missing_orders] == [9]


# ---- two observations ----------------------------------------------------------------------------


def test_only_an_observation_with_findings_is_looked_at_twice() -> None:
    assert needs_second_look(Observation(report=FINDINGS))
    assert not needs_second_look(Observation(report=Report()))
    assert not needs_second_look(Deferred(why="x"))


def test_a_second_observation_that_is_deferred_defers_the_run() -> None:
    waiting = Deferred(why="attempt 4: fills not yet recorded")
    assert confirmed(Observation(report=FINDINGS), waiting) is waiting


CURRENCIES, UUIDS, ATTEMPTS = ("KRW", "BTC", "ETH"), ("u-1", "u-2", "u-3"), (1, 2, 3)


@st.composite
def reports(draw: st.DrawFn) -> Report:
    """A report whose findings are drawn from a small universe, with values that differ per draw."""
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), unique=True))
    uuids = draw(st.lists(st.sampled_from(UUIDS), unique=True))
    attempts = draw(st.lists(st.sampled_from(ATTEMPTS), unique=True))
    amount = st.integers(min_value=2, max_value=10**9).map(D)
    return Report(
        differences=tuple(Difference(currency=c, expected=D(0), actual=draw(amount), value_krw=draw(amount))
                          for c in sorted(currencies)),
        unknown_orders=tuple(_order(u, draw(st.sampled_from([None, "manual-1", "bot-9-1"]))) for u in sorted(uuids)),
        missing_orders=tuple(_ours(a, uuid=f"gone-{a}") for a in sorted(attempts)))


def _keys(report: Report) -> tuple[set[str], set[str], set[int]]:
    return ({d.currency for d in report.differences}, {o.uuid for o in report.unknown_orders},
            {o.attempt_id for o in report.missing_orders})


@settings(max_examples=300, deadline=None)
@given(first=reports(), second=reports(), baseline=st.booleans())
def test_a_finding_is_reported_only_if_the_second_observation_has_it_too(first: Report, second: Report,
                                                                         baseline: bool) -> None:
    taken = {"KRW": D(5)} if baseline else None
    looked = Observation(report=first)
    if not needs_second_look(looked):
        assert first.ok  # nothing found: reported as seen, once
        return
    result = confirmed(looked, Observation(report=second, baseline=taken))
    assert isinstance(result, Observation) and result.baseline == taken  # the fresh observation's
    kept, (c1, u1, a1), (c2, u2, a2) = _keys(result.report), _keys(first), _keys(second)
    assert kept == (c1 & c2, u1 & u2, a1 & a2)
    fresh = {d.currency: d for d in second.differences}
    assert all(d == fresh[d.currency] for d in result.report.differences)  # with the second's values
    written = _plan(result)
    assert {d["currency"] for d in written.found["differences"]} == kept[0]
    assert {o["uuid"] for o in written.found["unknown_orders"]} == kept[1]
    assert {o["attempt_id"] for o in written.found["missing_orders"]} == kept[2]


def test_unknown_orders_are_cancelled_only_when_configured() -> None:
    seen = Observation(report=FINDINGS)
    assert to_cancel(seen, cancel_unknown=False) == ()
    assert [o.uuid for o in to_cancel(seen, cancel_unknown=True)] == ["u-9"]
    assert to_cancel(Observation(report=Report()), cancel_unknown=True) == ()


# ---- what is written -----------------------------------------------------------------------------


def test_the_first_run_takes_the_baseline_and_says_so() -> None:
    written = _plan(Observation(report=Report(), baseline={"KRW": D(10_000_000), "BTC": D(1)}), trigger="start",
                    request={"id": 3, "by": "cli"})
    assert (written.ok, written.halted, written.error, written.trigger) == (True, False, None, "start")
    assert written.baseline == {"KRW": D(10_000_000), "BTC": D(1)}
    assert written.found == {"differences": [], "unknown_orders": [], "missing_orders": []}
    assert written.actions(7) == (
        RecordEvent(kind="reconcile_baseline", detail={"report": 7, "balances": {"KRW": "10000000", "BTC": "1"}}),
        RaiseAlert(level="info", text="reconciliation: baseline taken (report 7): BTC 1, KRW 10000000"),
        SetFlag(name=RECONCILED, value={"at": ISO, "ok": True, "report": 7, "note": "baseline taken"}),
        ClearRequest(request={"id": 3, "by": "cli"}),
    )


def test_an_empty_baseline_is_listed_as_nothing() -> None:
    (_event, alert, *_rest) = _plan(Observation(report=Report(), baseline={})).actions(1)
    assert alert == RaiseAlert(level="info", text="reconciliation: baseline taken (report 1): nothing")


def test_a_plain_ok_run_writes_the_report_and_the_reconciled_flag_only() -> None:
    written = _plan(Observation(report=Report()), halt=False)
    assert written.actions(2) == (SetFlag(name=RECONCILED, value={"at": ISO, "ok": True, "report": 2}),)
    assert written.baseline is None


def test_findings_write_an_event_an_error_alert_and_the_halt() -> None:
    written = _plan(Observation(report=FINDINGS), cancels={"u-9": "cancelled"})
    summary = FINDINGS.summary()
    found = FINDINGS.to_json()
    found["unknown_orders"][0]["cancel"] = "cancelled"
    assert (written.ok, written.halted, written.summary, written.found) == (False, True, summary, found)
    assert written.actions(8) == (
        SetFlag(name=RECONCILED, value={"at": ISO, "ok": False, "report": 8}),
        RecordEvent(kind="reconcile_difference", detail={"report": 8, "trigger": "periodic", "summary": summary,
                                                         "halted": True, **found}),
        RaiseAlert(level="error", text=summary),
        SetFlag(name=HALT, value={"at": ISO, "report": 8, "why": summary}),
    )
    assert ALERT_KIND == "reconcile"


def test_an_unknown_order_not_cancelled_says_so_with_none() -> None:
    written = _plan(Observation(report=FINDINGS), cancels={"other": "cancelled"})
    assert [o["cancel"] for o in written.found["unknown_orders"]] == [None]
    assert [o["cancel"] for o in _plan(Observation(report=FINDINGS)).found["unknown_orders"]] == [None]
    failed = _plan(Observation(report=FINDINGS), cancels={"u-9": "cancel failed: 503"})
    assert [o["cancel"] for o in failed.found["unknown_orders"]] == ["cancel failed: 503"]


def test_the_next_ok_report_lifts_the_halt_with_an_event_and_an_info_alert() -> None:
    written = _plan(Observation(report=Report()), halt={"at": ISO, "report": 8, "why": "x"})
    assert (written.halted, written.lifts, written.halted_by) == (False, True, 8)
    assert written.actions(9) == (
        SetFlag(name=RECONCILED, value={"at": ISO, "ok": True, "report": 9}),
        SetFlag(name=HALT, value=False),
        RecordEvent(kind="reconcile_resumed", detail={"report": 9, "halted_by": 8}),
        RaiseAlert(level="info", text="reconciliation ok again (report 9): the halt set by report 8 is lifted, "
                                      "new entries resume"),
    )


def test_an_exchange_error_writes_an_error_report_and_answers_the_request_nothing_else() -> None:
    for halt in (None, False, {"at": ISO, "report": 8, "why": "x"}):
        written = _plan(Failed(error="503 Service Unavailable"), trigger="command", request={"id": 4}, halt=halt,
                        last=Row(ok=False, differences=[], unknown_orders=[], missing_orders=[]))
        assert (written.ok, written.halted, written.error, written.found) == (
            False, False, "503 Service Unavailable", {})
        assert written.baseline is None and not written.lifts
        assert written.actions(10) == (
            SetFlag(name=RECONCILED, value={"at": ISO, "ok": False, "report": 10, "error": "503 Service Unavailable"}),
            ClearRequest(request={"id": 4}),
        )


LOOKS = st.one_of(st.just(Deferred(why="attempt 1: outcome unknown")), reports().map(lambda r: Observation(report=r)))


@settings(max_examples=200, deadline=None)
@given(first=LOOKS, second=LOOKS, trigger=st.sampled_from(TRIGGERS), requested=st.booleans())
def test_a_run_deferred_at_either_observation_concludes_nothing_and_is_due_again(
        first: Observation | Deferred, second: Observation | Deferred, trigger: Trigger, requested: bool) -> None:
    """Nothing is written while deferred: there is no plan for a deferred run, only the same
    trigger due again on the next wake (a command: while its request is set)."""
    looked = confirmed(first, second) if needs_second_look(first) else first
    if isinstance(first, Deferred) or (needs_second_look(first) and isinstance(second, Deferred)):
        assert isinstance(looked, Deferred)
    else:
        assert isinstance(looked, Observation)
        return
    start = _schedule() if trigger == "start" else _schedule().finished(0.0)
    after = start.deferred(trigger, looked.why, now=INTERVAL).schedule
    again = after.due(INTERVAL + 1.0, requested=requested or trigger == "command")
    assert again == ("command" if requested or trigger == "command" else trigger)
    assert after.next_reconcile == start.next_reconcile  # the interval counts from a run that ended


HALT_FLAGS = st.sampled_from([None, False, {"at": ISO, "report": 3, "why": "x"}, {"at": ISO, "report": None}])
OUTCOMES = st.one_of(reports().map(lambda r: Observation(report=r)), st.just(Failed(error="timeout")))


@settings(max_examples=400, deadline=None)
@given(outcome=OUTCOMES, trigger=st.sampled_from(TRIGGERS), halt=HALT_FLAGS, halt_on=st.booleans(),
       request=st.sampled_from([None, {"id": 1, "by": "cli"}]), last=st.one_of(st.none(), reports()))
def test_what_a_run_writes_follows_from_its_report(outcome: Observation | Failed, trigger: Trigger, halt: object,
                                                   halt_on: bool, request: object, last: Report | None) -> None:
    row = None if last is None else Row.of(_plan(Observation(report=last)))
    written = _plan(outcome, trigger=trigger, request=request, halt=halt, last=row, halt_on=halt_on)
    actions = written.actions(42)
    report = outcome.report if isinstance(outcome, Observation) else None
    ok = report is not None and report.ok
    findings = report is not None and not report.ok
    halts = _flags(actions, HALT)
    events = [a.kind for a in actions if isinstance(a, RecordEvent)]
    errors = [a for a in actions if isinstance(a, RaiseAlert) and a.level == "error"]
    # the report row and the reconciled flag, once, always
    assert written.ok == ok
    assert _flags(actions, RECONCILED) == [
        {"at": ISO, "ok": ok, "report": 42, **({"error": "timeout"} if report is None else {})}]
    # the request answered iff there was one
    assert [a for a in actions if isinstance(a, ClearRequest)] == ([] if request is None else
                                                                   [ClearRequest(request=request)])
    # the halt: set iff not ok and RECONCILE_HALT is on; lifted iff ok and a halt is set; never both
    assert written.halted == (findings and halt_on)
    assert halts == ([{"at": ISO, "report": 42, "why": written.summary}] if findings and halt_on else
                     [False] if ok and halt else [])
    assert written.lifts == (ok and bool(halt))
    # a difference event iff there are findings; a resumed event iff the halt is lifted
    assert events.count("reconcile_difference") == (1 if findings else 0)
    assert events.count("reconcile_resumed") == (1 if ok and halt else 0)
    # the error alert: for findings, unless the last completed report had the same ones (except on command)
    same = last is not None and not last.ok and report is not None and last.signature() == report.signature()
    assert len(errors) == (1 if findings and (trigger == "command" or not same) else 0)
    assert all(a.text == written.summary for a in errors)


RUN = st.tuples(OUTCOMES, st.sampled_from(TRIGGERS))


@settings(max_examples=300, deadline=None)
@given(runs=st.lists(RUN, min_size=1, max_size=12))
def test_an_alert_is_not_repeated_while_the_same_findings_persist_except_on_command(
        runs: list[tuple[Observation | Failed, Trigger]]) -> None:
    """Runs in a row, each given the last completed report as it was stored: within a stretch of
    completed reports with the same findings, only the first alerts (and any on command); an ok
    report ends the stretch, an error report neither ends it nor alerts."""
    last: Row | None = None
    stretch: object = None  # the findings of the current stretch (their signature); None: none
    for outcome, trigger in runs:
        written = _plan(outcome, trigger=trigger, last=last)
        errors = [a for a in written.actions(1) if isinstance(a, RaiseAlert) and a.level == "error"]
        if isinstance(outcome, Failed):
            assert errors == []
            continue
        report = outcome.report
        if report.ok:
            assert errors == []
            stretch = None
        elif report.signature() != stretch:
            assert len(errors) == 1, "new findings are alerted"
            stretch = report.signature()
        else:
            assert len(errors) == (1 if trigger == "command" else 0), "the same findings again"
        last = Row.of(written)
