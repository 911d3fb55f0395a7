"""Reconciliation, the run: when one is due, when it waits, what it concludes and what it writes.

Values in, decisions out: nothing here reads a clock, the database or the exchange. The times
are passed in (the actor's injected clock: ``monotonic()`` for :class:`Schedule`, ``now()`` for
:func:`plan`). :mod:`execution.reconcile` holds the comparison itself; :mod:`actors.account` is
the shell: it reads the exchange (through the client) and the database (through
:mod:`persistence.account`), feeds what it read in here, and carries out the :class:`Plan` that
comes out, in one transaction.

Reconciliation contract
-----------------------
*When* (:class:`Schedule`). At start (trigger ``start``), every ``RECONCILE_INTERVAL_S`` after the
previous one ended (``periodic``), and whenever ``system_flags['reconcile_request']`` holds a
request (``command``; set with :func:`persistence.account.request_reconciliation`, which also
NOTIFYs). A request is served first: it takes the place of a start or periodic run that is due or
deferred, and the run that answers it counts as that one. The balances are polled every
``ACCOUNT_POLL_S`` (:meth:`Schedule.poll_due`), apart from reconciliation; a poll writes a snapshot
when anything changed since the last one written, or when that one is :data:`SNAPSHOT_EVERY` old
(:func:`snapshot_due`).

*What is compared* (the rules: :mod:`execution.reconcile`). The exchange's ``balance + locked``
per currency against the ledger (:mod:`persistence.account`: baseline + our live fills − fees);
its open orders (``wait`` and ``watch``) against our attempts' uuids and identifiers (unknown
orders); our ``submitted`` attempts against the exchange (missing orders: a lookup answered "not
found" for an attempt older than :data:`execution.reconcile.MISSING_AFTER_S`). A coin whose
balance moved is valued at its ticker's price, else at the account's ``avg_buy_price``
(:meth:`Balances.prices`). The first reconciliation, with no baseline yet, compares the exchange
with itself and takes its balances as the baseline (:attr:`Observation.baseline`).

*No false differences.* Balances are compared only when the ledger and the exchange describe the
same moment. One observation reads, in this order, and is :class:`Deferred` at the first of:

1. one of our live attempts is ``unknown`` (:func:`defer_unresolved`: no lookup can settle it now);
2. after the exchange's open orders and a lookup of each attempt not among them
   (:func:`to_look_up`): an attempt is unsettled (:func:`defer_unsettled`, i.e.
   :func:`execution.reconcile.unsettled`) — its order is finished on the exchange but not
   recorded, has fills we have not recorded, or was not found although it is younger than
   ``MISSING_AFTER_S`` (a just-placed order the exchange does not list yet is not missing);
3. after the balances and the ledger: our attempts, read again, changed (:func:`defer_changed`).

A deferred reconciliation writes nothing. Its trigger stays pending (a command stays pending in
its flag) and it is tried again on the next wake (about a second later). The first deferral is
logged (info) and, while it lasts, again every ``RECONCILE_INTERVAL_S`` (warning)
(:meth:`Schedule.deferred`).

*Confirmation.* A finding is reported only if a second, fresh observation finds it again: an
observation that is not ok is followed by a second one (:func:`needs_second_look`), and only the
findings of the second that the first had too are kept, with the second's values
(:func:`confirmed`). A second observation that is deferred defers the run.

*What is written* (:func:`plan`, in one transaction per reconciliation): the baseline, when taken
(with a ``reconcile_baseline`` event and an ``info`` alert listing it); a
``reconciliation_reports`` row; ``system_flags['reconciled'] = {"at", "ok", "report"}`` (with
``"note": "baseline taken"``); the request flag cleared (only the request that was answered: a
newer one that replaced it meanwhile stays). A report that is not ok — a balance difference, an
unknown open order or a missing order — also writes an ``execution_events`` row
(``reconcile_difference``) and an ``error`` alert (kind ``reconcile``, text = the report's
summary; not repeated while the findings of the last completed report are the same ones, except
on command), and, when ``RECONCILE_HALT=true``, ``system_flags['reconcile_halt'] = {"at",
"report", "why"}``: execution then refuses new entries (exits still go). The next ok report, when
a halt is set, sets it to ``false``, with a ``reconcile_resumed`` event and an ``info`` alert.
Unknown orders are never adopted; with ``RECONCILE_CANCEL_UNKNOWN=true`` they are cancelled
(:func:`to_cancel`) and the report says how each cancel went.

*Errors.* An exchange error ends the run with an error report (:class:`Failed`: ``ok=false``,
``error`` set, ``reconciled = {"at", "ok": false, "report", "error"}``, the request answered; no
event, alert or halt change); the next try is one interval later, like after any run
(:meth:`Schedule.finished`). It never stops the actor. A database error does: the supervisor
restarts it, and the new incarnation reconciles at once (a fresh :class:`Schedule`: ``start``).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeGuard, TypeVar

from exchange.models import Account
from execution.reconcile import QUOTE, Report, confirm, match_open, raw_deltas, reconcile, signature_of, unsettled
from model.reasons import Flag, Status
from model.reconciliation import ExchangeOrder, OurOrder

__all__ = [
    "ALERT_KIND", "SNAPSHOT_EVERY", "Action", "Balances", "ClearRequest", "Deferral", "Deferred", "Failed", "Look",
    "Observation", "PastReport", "Plan", "RaiseAlert", "RecordEvent", "Schedule", "SetFlag", "Trigger",
    "confirmed", "defer_changed", "defer_unresolved", "defer_unsettled", "needs_second_look", "observation",
    "plan", "snapshot_due", "to_cancel", "to_look_up",
]

Trigger = Literal["start", "periodic", "command"]
ALERT_KIND = "reconcile"
SNAPSHOT_EVERY = timedelta(minutes=10)
"""A balance snapshot is written at least this often, even when nothing changed."""

_H = TypeVar("_H", bound=Hashable)


# ---- what is due -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Deferral:
    """A schedule after a deferred run, and what to log about it (``None``: nothing new)."""

    schedule: Schedule
    say: str | None = None
    level: int = logging.INFO


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """What is due when (monotonic seconds): balance polls and reconciliations, and a deferral."""

    poll_s: float  # ACCOUNT_POLL_S
    interval_s: float  # RECONCILE_INTERVAL_S
    next_poll: float | None = None  # None: at once
    next_reconcile: float | None = None  # the next periodic run; None: none scheduled yet
    pending: Trigger | None = "start"  # a start or periodic run that is due now (it was deferred)
    deferred_since: float | None = None  # when the current deferral was last logged

    def __post_init__(self) -> None:
        """Both periods are positive."""
        if not (self.poll_s > 0 and self.interval_s > 0):
            msg = f"poll_s and interval_s must be positive, got {self.poll_s} and {self.interval_s}"
            raise ValueError(msg)

    def poll_due(self, now: float) -> bool:
        """Whether a balance poll is due at ``now``."""
        return self.next_poll is None or now >= self.next_poll

    def polled(self, now: float) -> Schedule:
        """After a poll (begun) at ``now``: the next one ``poll_s`` later."""
        return replace(self, next_poll=now + self.poll_s)

    def due(self, now: float, *, requested: bool) -> Trigger | None:
        """The reconciliation due at ``now`` (``requested``: a request flag is set), or ``None``."""
        if requested:
            return "command"
        if self.pending is not None:
            return self.pending
        if self.next_reconcile is not None and now >= self.next_reconcile:
            return "periodic"
        return None

    def deferred(self, trigger: Trigger, why: str, *, now: float) -> Deferral:
        """After the ``trigger`` run was deferred at ``now`` because of ``why``."""
        pending = self.pending if trigger == "command" else trigger  # a command stays pending in its flag
        since = self.deferred_since
        if since is None:
            return Deferral(schedule=replace(self, pending=pending, deferred_since=now),
                            say=f"{trigger} reconciliation deferred: {why}")
        if now - since >= self.interval_s:
            return Deferral(schedule=replace(self, pending=pending, deferred_since=now), level=logging.WARNING,
                            say=f"{trigger} reconciliation deferred for {now - since:.0f} s: {why}")
        return Deferral(schedule=replace(self, pending=pending))

    def finished(self, now: float) -> Schedule:
        """After a run (reported or failed) that ended at ``now``: the next one an interval later."""
        return replace(self, pending=None, deferred_since=None, next_reconcile=now + self.interval_s)


def snapshot_due(holdings: frozenset[_H], last: tuple[datetime, frozenset[_H]] | None, at: datetime) -> bool:
    """Whether a poll at ``at`` writes a snapshot, given the ``last`` one written (when, what)."""
    return last is None or holdings != last[1] or at - last[0] >= SNAPSHOT_EVERY


# ---- one observation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Deferred:
    """An observation that cannot be compared now, and why."""

    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One comparable observation: its report, and the baseline to take (none was taken yet)."""

    report: Report
    baseline: Mapping[str, Decimal] | None = None


Look = Observation | Deferred


def defer_unresolved(ours: Iterable[OurOrder]) -> Deferred | None:
    """Step 1: deferred while one of ``ours`` (unresolved live attempts) is not ``submitted``."""
    waiting = [a for a in ours if a.status != Status.SUBMITTED]
    return Deferred(why="; ".join(unsettled(waiting, {}))) if waiting else None


def to_look_up(ours: Iterable[OurOrder], open_orders: Iterable[ExchangeOrder]) -> tuple[
        dict[int, ExchangeOrder | None], tuple[OurOrder, ...]]:
    """Step 2: our attempts found among the open orders (attempt id → order), and those to look up."""
    ours = tuple(ours)
    seen: dict[int, ExchangeOrder | None] = dict(match_open(ours, open_orders))
    return seen, tuple(a for a in ours if a.attempt_id not in seen)


def defer_unsettled(ours: Iterable[OurOrder], seen: Mapping[int, ExchangeOrder | None]) -> Deferred | None:
    """Step 2: deferred while the exchange's orders (``seen``; ``None``: not found) and ours disagree."""
    why = unsettled(ours, seen)
    return Deferred(why="; ".join(why)) if why else None


def defer_changed(ours: Sequence[OurOrder], again: Sequence[OurOrder]) -> Deferred | None:
    """Step 3: deferred when our attempts read ``again`` (after the balances) are not ``ours`` (ages aside)."""
    if [replace(a, age_s=0.0) for a in again] != [replace(a, age_s=0.0) for a in ours]:
        return Deferred(why="our attempts changed while the exchange was read")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Balances:
    """The exchange's balances against our ledger, as one observation compares them."""

    actual: Mapping[str, Decimal]  # balance + locked per currency
    expected: Mapping[str, Decimal]  # our ledger's; the actual ones when there is no baseline yet
    avg_buy_price: Mapping[str, Decimal]
    first: bool  # no baseline yet: the actual balances become it

    @classmethod
    def of(cls, accounts: Iterable[Account], ledger: Mapping[str, Decimal] | None) -> Balances:
        """From the exchange's accounts and the ledger's expected balances (``None``: no baseline)."""
        accounts = tuple(accounts)
        actual = {a.currency: a.balance + a.locked for a in accounts}
        return cls(actual=actual, expected=actual if ledger is None else dict(ledger),
                   avg_buy_price={a.currency: a.avg_buy_price for a in accounts}, first=ledger is None)

    @property
    def to_value(self) -> tuple[str, ...]:
        """The coins whose balance moved: each needs a KRW price (ask the ticker)."""
        return tuple(c for c in raw_deltas(self.actual, self.expected) if c != QUOTE)

    def prices(self, tickers: Mapping[str, Decimal | None]) -> dict[str, Decimal]:
        """A price per coin to value: its ticker's (``None``: no answer), else a positive avg_buy_price."""
        found = {}
        for coin in self.to_value:
            ticker, avg = tickers.get(coin), self.avg_buy_price.get(coin, Decimal(0))
            if ticker is not None and ticker > 0:
                found[coin] = ticker
            elif avg > 0:
                found[coin] = avg
        return found


def observation(*, balances: Balances, prices: Mapping[str, Decimal], tolerance_krw: Decimal,
                open_orders: Sequence[ExchangeOrder], known_uuids: frozenset[str], known_identifiers: frozenset[str],
                ours: Sequence[OurOrder], seen: Mapping[int, ExchangeOrder | None], prefix: str) -> Observation:
    """The report of one settled observation (``prefix``: our bot's identifier prefix, ``{bot}-``)."""
    report = reconcile(actual=balances.actual, expected=balances.expected, prices=prices, tolerance_krw=tolerance_krw,
                       open_orders=open_orders, known_uuids=known_uuids, known_identifiers=known_identifiers,
                       ours=ours, seen=seen, prefix=prefix)
    return Observation(report=report, baseline=dict(balances.actual) if balances.first else None)


# ---- two observations ----------------------------------------------------------------------------


def needs_second_look(first: Look) -> TypeGuard[Observation]:
    """Whether ``first`` is an observation with findings, to confirm with a second, fresh one."""
    return isinstance(first, Observation) and not first.report.ok


def confirmed(first: Observation, second: Look) -> Look:
    """The second observation with only the findings ``first`` had too; deferred if ``second`` is."""
    if isinstance(second, Deferred):
        return second
    return replace(second, report=confirm(first.report, second.report))


def to_cancel(seen: Observation, *, cancel_unknown: bool) -> tuple[ExchangeOrder, ...]:
    """The unknown open orders to cancel (``RECONCILE_CANCEL_UNKNOWN``)."""
    return seen.report.unknown_orders if cancel_unknown else ()


# ---- what is written -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """A run an exchange error ended."""

    error: str


class PastReport(Protocol):
    """The last completed report, as stored (``persistence.account.ReportRow``)."""

    @property
    def ok(self) -> bool: ...
    @property
    def differences(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def unknown_orders(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def missing_orders(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SetFlag:
    """Write a ``system_flags`` value."""

    name: str
    value: object


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearRequest:
    """Answer a reconciliation request: clear its flag unless a newer request replaced it."""

    request: object


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordEvent:
    """Append an ``execution_events`` row."""

    kind: str
    detail: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseAlert:
    """Queue an alert (kind :data:`ALERT_KIND`)."""

    level: Literal["info", "error"]
    text: str


Action = SetFlag | ClearRequest | RecordEvent | RaiseAlert


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What one run writes, in one transaction: the baseline (if taken), the report row, then
    :meth:`actions` (which name the report's id)."""

    at: datetime
    trigger: Trigger
    ok: bool
    found: Mapping[str, list[dict[str, Any]]]  # Report.to_json(), each unknown order with its "cancel"
    summary: str
    halted: bool = False  # the report sets the halt
    error: str | None = None  # an error report (Failed)
    baseline: Mapping[str, Decimal] | None = None
    request: object = None  # the request this run answers (None: none)
    alert: bool = False  # alert the findings
    lifts: bool = False  # lift the halt that is set
    halted_by: object = None  # the report that set it

    def actions(self, report_id: int) -> tuple[Action, ...]:
        """What follows the report row (id ``report_id``), in order."""
        iso = self.at.astimezone(UTC).isoformat()
        acts: list[Action] = []
        reconciled: dict[str, object] = {"at": iso, "ok": self.ok, "report": report_id}
        if self.error is not None:
            reconciled["error"] = self.error
        if self.baseline is not None:
            reconciled["note"] = "baseline taken"
            listed = ", ".join(f"{c} {v}" for c, v in sorted(self.baseline.items())) or "nothing"
            acts += [RecordEvent(kind="reconcile_baseline", detail={
                         "report": report_id, "balances": {c: str(v) for c, v in self.baseline.items()}}),
                     RaiseAlert(level="info", text=f"reconciliation: baseline taken (report {report_id}): {listed}")]
        acts.append(SetFlag(name=Flag.RECONCILED.value, value=reconciled))
        if self.request is not None:
            acts.append(ClearRequest(request=self.request))
        if self.error is None and not self.ok:
            acts.append(RecordEvent(kind="reconcile_difference", detail={
                "report": report_id, "trigger": self.trigger, "summary": self.summary, "halted": self.halted,
                **self.found}))
            if self.alert:
                acts.append(RaiseAlert(level="error", text=self.summary))
            if self.halted:
                acts.append(SetFlag(name=Flag.RECONCILE_HALT.value,
                                    value={"at": iso, "report": report_id, "why": self.summary}))
        elif self.lifts:
            acts += [SetFlag(name=Flag.RECONCILE_HALT.value, value=False),
                     RecordEvent(kind="reconcile_resumed", detail={"report": report_id, "halted_by": self.halted_by}),
                     RaiseAlert(level="info", text=f"reconciliation ok again (report {report_id}): the halt set by "
                                                   f"report {self.halted_by} is lifted, new entries resume")]
        return tuple(acts)


def plan(*, trigger: Trigger, outcome: Observation | Failed, at: datetime, request: object,
         halt: object, last: PastReport | None, halt_on_difference: bool,
         cancels: Mapping[str, str] | None = None) -> Plan:
    """What to write for a run's ``outcome`` at ``at`` (a :class:`Deferred` run writes nothing: no plan).

    ``request``: the request the run answers (``None``: none); ``halt``: the halt flag's value and
    ``last``: the last completed report (both read in the writing transaction); ``cancels``: how
    the cancel of each unknown order went (uuid → text), for those cancelled.
    """
    if isinstance(outcome, Failed):
        return Plan(at=at, trigger=trigger, ok=False, found={}, summary=outcome.error, error=outcome.error,
                    request=request)
    report = outcome.report
    found = report.to_json()
    for order in found["unknown_orders"]:
        order["cancel"] = (cancels or {}).get(order["uuid"])
    return Plan(at=at, trigger=trigger, ok=report.ok, found=found, summary=report.summary(),
                halted=not report.ok and halt_on_difference, baseline=outcome.baseline, request=request,
                alert=not report.ok and (trigger == "command" or not _same_findings(last, report)),
                lifts=report.ok and bool(halt), halted_by=halt.get("report") if isinstance(halt, dict) else None)


def _same_findings(last: PastReport | None, report: Report) -> bool:
    """Whether ``last`` was not ok, with findings about the same things as ``report``'s."""
    return last is not None and not last.ok and signature_of({
        "differences": last.differences, "unknown_orders": last.unknown_orders,
        "missing_orders": last.missing_orders}) == report.signature()
