"""AccountActor: the exchange account — balances, positions, and reconciliation with our ledger.

Without an exchange client (no API keys) there is no account to read: the actor says why, once
(log and ``counters['reason']``), and idles under supervision.

With a client it is woken every ``tick_s`` (1 s), on ``NOTIFY reconcile`` and once at start, and
does what is due (timers run on the injected clock's ``monotonic()``):

**Balance poll** (every ``ACCOUNT_POLL_S``): ``GET /v1/accounts``. ``account_snapshots`` gets one
row per currency, stamped ``clock.now()``, when anything changed since the last snapshot written,
or when that one is 10 minutes old. ``live_positions`` is rewritten every poll: one row per coin
held (``KRW-{coin}``), rows of coins no longer held deleted.

Reconciliation contract
-----------------------
*When.* At start (trigger ``start``), every ``RECONCILE_INTERVAL_S`` after the previous one ended
(``periodic``), and whenever ``system_flags['reconcile_request']`` holds a request (``command``;
set with :func:`persistence.account.request_reconciliation`, which also NOTIFYs).

*What is compared* (the rules: :mod:`execution.reconcile`). The exchange's ``balance + locked``
per currency against the ledger (:mod:`persistence.account`: baseline + our live fills − fees);
its open orders (``wait`` and ``watch``) against our attempts' uuids and identifiers (unknown
orders); our ``submitted`` attempts against the exchange (missing orders: a lookup answered "not
found"). The first reconciliation with an empty ``account_baseline`` copies every currency the
exchange reports into it ("baseline taken": an info alert and a ``reconcile_baseline`` event).

*No false differences.* Balances are compared only when the ledger and the exchange describe
the same moment (:func:`execution.reconcile.unsettled`): while a live attempt is ``unknown``, or
``submitted`` with an order the exchange already finished or whose fills we have not all
recorded, the reconciliation is *deferred*: nothing is written, and it is tried again on the next
wake (about a second later). The attempts are read again after the balances; any change defers
too. A finding is reported only if a second, fresh observation finds it again.

*What is written*, in one transaction per reconciliation: a ``reconciliation_reports`` row;
``system_flags['reconciled'] = {"at", "ok", "report"}``; the request flag cleared (only the
request that was answered: a newer one that replaced it meanwhile stays). A report that is not ok —
a balance difference, an unknown open order or a missing order — also writes an
``execution_events`` row (``reconcile_difference``) and an ``error`` alert (kind ``reconcile``,
text = the report's summary; not repeated while the same findings persist, except on command),
and, when ``RECONCILE_HALT=true``, ``system_flags['reconcile_halt'] = {"at", "report", "why"}``:
execution then refuses new entries (exits still go). The next ok report sets the halt to
``false``, with an ``info`` alert and a ``reconcile_resumed`` event. Unknown orders are never
adopted; with ``RECONCILE_CANCEL_UNKNOWN=true`` they are cancelled and the report says so.

*Errors.* An exchange error (any ``ExchangeError``) is logged and counted; it writes an error
report (``ok=false``, ``error`` set, ``reconciled.ok=false``) and the next try is one interval
later. It never stops the actor. A database error does: the supervisor restarts it, and the new
incarnation reconciles at once (trigger ``start``).

Counters: ``reconciliations``, ``differences`` (reports not ok), ``errors``, ``deferred``,
``last_ok``, ``last_report``, ``polls``, ``reason``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from actors.board import StatusBoard
from actors.node_actor import NodeActor
from actors.woken import WokenActor
from config.settings import AccountSettings
from exchange.errors import ExchangeError, OrderNotFound
from exchange.models import Account
from exchange.rest import UpbitClient
from model.reasons import Flag, Status
from execution.reconcile import QUOTE, Report, confirm, match_open, raw_deltas, reconcile, signature_of, unsettled
from model.reconciliation import ExchangeOrder, OurOrder
from persistence import account as account_repo
from persistence import alerts
from persistence.account import RECONCILE, Holding
from persistence.control import set_flag
from persistence.errors import translated
from model.clock import Clock

log = logging.getLogger(__name__)

BY = "account"  # system_flags.updated_by
SNAPSHOT_EVERY = timedelta(minutes=10)
OPEN_PAGE = 100
NO_KEYS = "no exchange API keys: no account to read (paper trading and shadow execution only)"


@dataclass(frozen=True, slots=True)
class _Observation:
    report: Report
    new_baseline: dict[str, Decimal] | None  # the balances to take as baseline, when there is none


@dataclass(frozen=True, slots=True)
class _Deferred:
    why: str


class AccountActor(WokenActor):
    """Polls the account and reconciles it with our ledger (module docstring: the contract)."""

    channels = (RECONCILE,)

    def __init__(self, *, client: UpbitClient | None, settings: AccountSettings, bot_id: str, db_url: str,
                 clock: Clock | None = None, board: StatusBoard | None = None, tick_s: float = 1.0,
                 **kw: Any) -> None:
        """``tick_s``: how often the actor wakes to see what is due; ``kw``: ``context`` (supervision)."""
        super().__init__(db_url=db_url, poll_s=tick_s, clock=clock, board=board, **kw)
        self.client = client
        self.settings = settings
        self.bot_id = bot_id
        self._pending: str | None = "start"  # a reconciliation due now (or deferred): its trigger
        self._next_reconcile: float | None = None
        self._next_poll: float | None = None
        self._deferred_since: float | None = None
        self._written: frozenset[Holding] | None = None
        self._written_at: datetime | None = None
        self.counters.update(reconciliations=0, differences=0, errors=0, deferred=0, polls=0, last_ok=None,
                             last_report=None, reason="")

    # ---- lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        if self.client is None:
            NodeActor.setup(self)  # publish on the board; no connection, no waker: nothing to do
            log.info("%s", NO_KEYS)
            self.counters.update(reason=NO_KEYS, idle=True)
            return
        super().setup()

    def prepare(self, conn: psycopg.Connection) -> None:
        with translated():
            latest = account_repo.latest_snapshot(conn)
            conn.commit()
        if latest is not None:
            self._written_at, self._written = latest[0], frozenset(latest[1])

    def drain(self, conn: psycopg.Connection) -> None:
        now = self._clock.monotonic()
        if self._next_poll is None or now >= self._next_poll:
            self._next_poll = now + self.settings.poll_s
            self._poll(conn)
        with translated():
            request = account_repo.pending_request(conn)
            conn.commit()
        if request is not None:
            trigger = "command"
        elif self._pending is not None:
            trigger = self._pending
        elif self._next_reconcile is not None and now >= self._next_reconcile:
            trigger = "periodic"
        else:
            return
        self._reconcile(conn, trigger, request)

    # ---- balance poll ------------------------------------------------------------------------

    def _poll(self, conn: psycopg.Connection) -> None:
        assert self.client is not None
        try:
            accounts = self.client.accounts()
        except ExchangeError as exc:
            self._exchange_error("balance poll", exc)
            return
        holdings = frozenset(_holding(a) for a in accounts)
        at = self._clock.now()
        write = holdings != self._written or self._written_at is None or at - self._written_at >= SNAPSHOT_EVERY
        ordered = sorted(holdings, key=lambda h: h.currency)
        with translated():
            with conn.cursor() as cur:
                if write:
                    account_repo.write_snapshot(cur, at, ordered)
                account_repo.sync_positions(cur, ordered, at)
            conn.commit()
        if write:
            self._written, self._written_at = holdings, at
        self.counters["polls"] += 1

    # ---- reconciliation ----------------------------------------------------------------------

    def _reconcile(self, conn: psycopg.Connection, trigger: str, request: Any) -> None:
        try:
            first = self._observe(conn)
            if isinstance(first, _Deferred):
                self._defer(trigger, first.why)
                return
            seen = first
            if not first.report.ok:  # confirm with fresh reads before reporting anything
                second = self._observe(conn)
                if isinstance(second, _Deferred):
                    self._defer(trigger, second.why)
                    return
                seen = replace(second, report=confirm(first.report, second.report))
            cancels = self._cancel_unknown(seen.report.unknown_orders) if self.settings.cancel_unknown else {}
        except ExchangeError as exc:
            self._exchange_error(f"{trigger} reconciliation", exc)
            self._write_error(conn, trigger, request, str(exc))
        else:
            self._write(conn, trigger, request, seen, cancels)
        self._pending, self._deferred_since = None, None
        self._next_reconcile = self._clock.monotonic() + self.settings.reconcile_interval_s

    def _observe(self, conn: psycopg.Connection) -> _Observation | _Deferred:
        """Read the exchange and the ledger once; deferred when they cannot be compared now."""
        assert self.client is not None
        with translated():
            ours = account_repo.unresolved_live(conn)
            conn.commit()
        if any(a.status != Status.SUBMITTED for a in ours):  # no lookup can settle these now
            return _Deferred("; ".join(unsettled([a for a in ours if a.status != Status.SUBMITTED], {})))
        open_orders = self._open_orders()
        seen: dict[int, ExchangeOrder | None] = dict(match_open(ours, open_orders))
        for attempt in ours:
            if attempt.attempt_id not in seen:
                seen[attempt.attempt_id] = self._lookup(attempt)
        why = unsettled(ours, seen)
        if why:
            return _Deferred("; ".join(why))
        accounts = self.client.accounts()
        with translated():
            again = account_repo.unresolved_live(conn)
            ledger = account_repo.expected_balances(conn)
            known_uuids, known_identifiers = account_repo.known_orders(
                conn, [o.uuid for o in open_orders], [o.identifier for o in open_orders if o.identifier])
            conn.commit()
        if [replace(a, age_s=0.0) for a in again] != [replace(a, age_s=0.0) for a in ours]:
            return _Deferred("our attempts changed while the exchange was read")
        actual = {a.currency: a.balance + a.locked for a in accounts}
        expected = actual if ledger is None else ledger[1]
        report = reconcile(
            actual=actual, expected=expected, prices=self._prices(raw_deltas(actual, expected), accounts),
            tolerance_krw=self.settings.tolerance_krw, open_orders=open_orders, known_uuids=known_uuids,
            known_identifiers=known_identifiers, ours=ours, seen=seen, prefix=f"{self.bot_id}-",
        )
        return _Observation(report=report, new_baseline=dict(actual) if ledger is None else None)

    def _open_orders(self) -> tuple[ExchangeOrder, ...]:
        assert self.client is not None
        found: list[ExchangeOrder] = []
        page = 1
        while True:
            batch = self.client.open_orders(states=("wait", "watch"), page=page, limit=OPEN_PAGE)
            found.extend(ExchangeOrder.from_order(o) for o in batch)
            if len(batch) < OPEN_PAGE:
                return tuple(found)
            page += 1

    def _lookup(self, attempt: OurOrder) -> ExchangeOrder | None:
        assert self.client is not None
        try:
            if attempt.uuid:
                return ExchangeOrder.from_order(self.client.get_order(uuid=attempt.uuid))
            return ExchangeOrder.from_order(self.client.get_order(identifier=attempt.identifier))
        except OrderNotFound:
            return None

    def _prices(self, deltas: dict[str, Decimal], accounts: tuple[Account, ...]) -> dict[str, Decimal]:
        """A KRW price for each coin whose balance moved: the ticker, else the account's avg_buy_price."""
        assert self.client is not None
        avg = {a.currency: a.avg_buy_price for a in accounts}
        prices = {}
        for currency in deltas:
            if currency == QUOTE:
                continue
            try:
                tickers = self.client.tickers([f"{QUOTE}-{currency}"])
                if tickers and tickers[0].trade_price > 0:
                    prices[currency] = tickers[0].trade_price
                    continue
            except ExchangeError as exc:
                log.info("no ticker for %s-%s (%s): valuing at avg_buy_price", QUOTE, currency, exc)
            if avg.get(currency, Decimal(0)) > 0:
                prices[currency] = avg[currency]
        return prices

    def _cancel_unknown(self, orders: tuple[ExchangeOrder, ...]) -> dict[str, str]:
        assert self.client is not None
        results = {}
        for order in orders:
            try:
                self.client.cancel_order(uuid=order.uuid)
                results[order.uuid] = "cancelled"
                log.warning("cancelled unknown open order %s", order.text())
            except ExchangeError as exc:
                results[order.uuid] = f"cancel failed: {exc}"
                log.warning("could not cancel unknown open order %s: %s", order.uuid, exc)
        return results

    def _defer(self, trigger: str, why: str) -> None:
        if trigger != "command":  # a command stays pending in its flag
            self._pending = trigger
        now = self._clock.monotonic()
        if self._deferred_since is None:
            self._deferred_since = now
            log.info("%s reconciliation deferred: %s", trigger, why)
        elif now - self._deferred_since >= self.settings.reconcile_interval_s:
            log.warning("%s reconciliation deferred for %.0f s: %s", trigger, now - self._deferred_since, why)
            self._deferred_since = now
        self.counters["deferred"] += 1
        self.counters["deferred_why"] = why

    # ---- recording ---------------------------------------------------------------------------

    def _write(self, conn: psycopg.Connection, trigger: str, request: Any, seen: _Observation,
               cancels: dict[str, str]) -> None:
        report, at = seen.report, self._clock.now()
        iso = at.astimezone(UTC).isoformat()
        summary = report.summary()
        found = report.to_json()
        for order in found["unknown_orders"]:
            order["cancel"] = cancels.get(order["uuid"])
        halted = not report.ok and self.settings.halt_on_difference
        with translated():
            halt_before = account_repo.flag(conn, Flag.RECONCILE_HALT.value)
            last = account_repo.last_completed_report(conn)
            with conn.cursor() as cur:
                if seen.new_baseline is not None:
                    account_repo.insert_baseline(cur, seen.new_baseline, at)
                report_id = account_repo.insert_report(cur, at=at, trigger=trigger, ok=report.ok, found=found,
                                                       halted=halted)
                reconciled: dict[str, Any] = {"at": iso, "ok": report.ok, "report": report_id}
                if seen.new_baseline is not None:
                    reconciled["note"] = "baseline taken"
                    self._baseline_taken(cur, at, report_id, seen.new_baseline)
                set_flag(cur, Flag.RECONCILED.value, reconciled, BY)
                if request is not None:
                    account_repo.clear_request(cur, request, by=BY)
                if not report.ok:
                    account_repo.record_event(cur, at=at, kind="reconcile_difference", detail={
                        "report": report_id, "trigger": trigger, "summary": summary, "halted": halted, **found})
                    repeated = last is not None and not last.ok and signature_of({
                        "differences": last.differences, "unknown_orders": last.unknown_orders,
                        "missing_orders": last.missing_orders}) == report.signature()
                    if not repeated or trigger == "command":
                        alerts.enqueue(cur, kind="reconcile", level="error", text=summary)
                    if halted:
                        set_flag(cur, Flag.RECONCILE_HALT.value, {"at": iso, "report": report_id, "why": summary}, BY)
                elif halt_before:
                    set_flag(cur, Flag.RECONCILE_HALT.value, False, BY)
                    before = halt_before.get("report") if isinstance(halt_before, dict) else None
                    account_repo.record_event(cur, at=at, kind="reconcile_resumed",
                                              detail={"report": report_id, "halted_by": before})
                    alerts.enqueue(cur, kind="reconcile", level="info",
                                   text=f"reconciliation ok again (report {report_id}): the halt set by report "
                                        f"{before} is lifted, new entries resume")
            conn.commit()
        self.counters["reconciliations"] += 1
        self.counters["differences"] += 0 if report.ok else 1
        self.counters.update(last_ok=report.ok, last_report=report_id)
        log.log(logging.INFO if report.ok else logging.ERROR, "%s reconciliation, report %d: %s", trigger,
                report_id, summary)

    def _baseline_taken(self, cur: psycopg.Cursor, at: datetime, report_id: int,
                        balances: dict[str, Decimal]) -> None:
        listed = ", ".join(f"{c} {v}" for c, v in sorted(balances.items())) or "nothing"
        account_repo.record_event(cur, at=at, kind="reconcile_baseline",
                                  detail={"report": report_id, "balances": {c: str(v) for c, v in balances.items()}})
        alerts.enqueue(cur, kind="reconcile", level="info",
                       text=f"reconciliation: baseline taken (report {report_id}): {listed}")

    def _write_error(self, conn: psycopg.Connection, trigger: str, request: Any, error: str) -> None:
        at = self._clock.now()
        with translated():
            conn.rollback()
            with conn.cursor() as cur:
                report_id = account_repo.insert_report(cur, at=at, trigger=trigger, ok=False, found={}, error=error)
                set_flag(cur, Flag.RECONCILED.value, {"at": at.astimezone(UTC).isoformat(), "ok": False,
                                                      "report": report_id, "error": error}, BY)
                if request is not None:
                    account_repo.clear_request(cur, request, by=BY)
            conn.commit()
        self.counters.update(last_ok=False, last_report=report_id)

    def _exchange_error(self, what: str, exc: ExchangeError) -> None:
        log.warning("%s failed: %s", what, exc)
        self.counters["errors"] += 1
        self.counters["last_error"] = f"{what}: {exc}"[:300]


def _holding(a: Account) -> Holding:
    return Holding(currency=a.currency, balance=a.balance, locked=a.locked, avg_buy_price=a.avg_buy_price,
                   unit_currency=a.unit_currency)
