"""AccountActor: the exchange account — balances, positions, and reconciliation with our ledger.

A thin shell around :mod:`execution.reconcile_run`, which holds the reconciliation contract (when
a run is due or deferred, what it concludes, what it writes). The actor owns the database
connection and the exchange client: it reads both, feeds the values to the core, and writes the
core's plan in one transaction. Without a client (no API keys) there is no account to read: it
says why, once (log and ``counters['reason']``), and idles under supervision. With one it is woken
every ``tick_s`` (1 s), on ``NOTIFY reconcile`` and once at start, and does what its
:class:`~execution.reconcile_run.Schedule` says is due (on the injected clock's ``monotonic()``).

**Balance poll** (every ``ACCOUNT_POLL_S``): ``GET /v1/accounts``; an ``account_snapshots`` row per
currency, stamped ``clock.now()``, when :func:`~execution.reconcile_run.snapshot_due`;
``live_positions`` rewritten every poll (one row per coin held, ``KRW-{coin}``; others deleted).

Errors are classified where they enter: a lookup's ``OrderNotFound`` is the answer "not found", a
failed ticker values the coin at ``avg_buy_price``, a failed cancel is written in the report; any
other ``ExchangeError`` ends the run with an error report (the actor lives on). A database error
stops the actor; its supervisor restarts it, and the new incarnation reconciles at once.

Counters: ``reconciliations``, ``differences`` (reports not ok), ``errors`` (``last_error``),
``deferred`` (``deferred_why``), ``last_ok``, ``last_report``, ``polls``, ``reason`` (``idle``).
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, assert_never

import psycopg

from actors.board import StatusBoard
from actors.node_actor import NodeActor
from actors.woken import WokenActor
from config.settings import AccountSettings
from exchange.errors import ExchangeError, OrderNotFound
from exchange.rest import UpbitClient
from execution import reconcile_run as run
from execution.reconcile import QUOTE
from model.clock import Clock
from model.reasons import Flag
from model.reconciliation import ExchangeOrder, OurOrder
from persistence import account as account_repo
from persistence import alerts
from persistence.account import RECONCILE, Holding
from persistence.control import set_flag
from persistence.errors import translated

log = logging.getLogger(__name__)

BY = "account"  # system_flags.updated_by
OPEN_PAGE = 100
NO_KEYS = "no exchange API keys: no account to read (paper trading and shadow execution only)"


class AccountActor(WokenActor):
    """Polls the account and reconciles it with our ledger (the contract: :mod:`execution.reconcile_run`)."""

    channels = (RECONCILE,)

    def __init__(self, *, client: UpbitClient | None, settings: AccountSettings, bot_id: str, db_url: str,
                 clock: Clock | None = None, board: StatusBoard | None = None, tick_s: float = 1.0,
                 **kw: Any) -> None:
        """``tick_s``: how often the actor wakes to see what is due; ``kw``: ``context`` (supervision)."""
        super().__init__(db_url=db_url, poll_s=tick_s, clock=clock, board=board, **kw)
        self.client = client
        self.settings = settings
        self.bot_id = bot_id
        self._schedule = run.Schedule(poll_s=settings.poll_s, interval_s=settings.reconcile_interval_s)
        self._snapshot: tuple[datetime, frozenset[Holding]] | None = None  # the last one written
        self.counters.update(reconciliations=0, differences=0, errors=0, deferred=0, polls=0, last_ok=None,
                             last_report=None, reason="")

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
        self._snapshot = None if latest is None else (latest[0], frozenset(latest[1]))

    def drain(self, conn: psycopg.Connection) -> None:
        assert self.client is not None
        now = self._clock.monotonic()
        if self._schedule.poll_due(now):
            self._schedule = self._schedule.polled(now)
            self._poll(conn, self.client)
        with translated():
            request = account_repo.pending_request(conn)
            conn.commit()
        trigger = self._schedule.due(now, requested=request is not None)
        if trigger is not None:
            self._reconcile(conn, self.client, trigger, request)

    def _poll(self, conn: psycopg.Connection, client: UpbitClient) -> None:
        try:
            accounts = client.accounts()
        except ExchangeError as exc:
            self._exchange_error("balance poll", exc)
            return
        at = self._clock.now()
        holdings = frozenset(Holding(currency=a.currency, balance=a.balance, locked=a.locked,
                                     avg_buy_price=a.avg_buy_price, unit_currency=a.unit_currency) for a in accounts)
        write, ordered = run.snapshot_due(holdings, self._snapshot, at), sorted(holdings, key=lambda h: h.currency)
        with translated():
            with conn.cursor() as cur:
                if write:
                    account_repo.write_snapshot(cur, at, ordered)
                account_repo.sync_positions(cur, ordered, at)
            conn.commit()
        if write:
            self._snapshot = (at, holdings)
        self.counters["polls"] += 1

    def _reconcile(self, conn: psycopg.Connection, client: UpbitClient, trigger: run.Trigger, request: Any) -> None:
        cancels: dict[str, str] = {}
        outcome: run.Observation | run.Failed
        try:
            looked = self._observe(conn, client)
            if run.needs_second_look(looked):
                looked = run.confirmed(looked, self._observe(conn, client))
            if isinstance(looked, run.Deferred):
                self._defer(trigger, looked.why)
                return
            for order in run.to_cancel(looked, cancel_unknown=self.settings.cancel_unknown):
                cancels[order.uuid] = _cancel(client, order)
            outcome = looked
        except ExchangeError as exc:
            self._exchange_error(f"{trigger} reconciliation", exc)
            outcome = run.Failed(error=str(exc))
        self._write(conn, trigger, request, outcome, cancels)
        self._schedule = self._schedule.finished(self._clock.monotonic())

    def _observe(self, conn: psycopg.Connection, client: UpbitClient) -> run.Look:
        """Read the exchange and the ledger once, as far as the core lets the observation go."""
        with translated():
            ours = account_repo.unresolved_live(conn)
            conn.commit()
        if (waiting := run.defer_unresolved(ours)) is not None:
            return waiting
        open_orders = _open_orders(client)
        seen, rest = run.to_look_up(ours, open_orders)
        seen.update({attempt.attempt_id: _lookup(client, attempt) for attempt in rest})
        if (waiting := run.defer_unsettled(ours, seen)) is not None:
            return waiting
        accounts = client.accounts()
        with translated():
            again = account_repo.unresolved_live(conn)
            ledger = account_repo.expected_balances(conn)
            known_uuids, known_identifiers = account_repo.known_orders(
                conn, [o.uuid for o in open_orders], [o.identifier for o in open_orders if o.identifier])
            conn.commit()
        if (waiting := run.defer_changed(ours, again)) is not None:
            return waiting
        balances = run.Balances.of(accounts, None if ledger is None else ledger[1])
        prices = balances.prices({coin: _ticker(client, coin) for coin in balances.to_value})
        return run.observation(balances=balances, prices=prices, tolerance_krw=self.settings.tolerance_krw,
                               open_orders=open_orders, known_uuids=known_uuids, known_identifiers=known_identifiers,
                               ours=ours, seen=seen, prefix=f"{self.bot_id}-")

    def _defer(self, trigger: run.Trigger, why: str) -> None:
        deferral = self._schedule.deferred(trigger, why, now=self._clock.monotonic())
        self._schedule = deferral.schedule
        if deferral.say is not None:
            log.log(deferral.level, "%s", deferral.say)
        self.counters["deferred"] += 1
        self.counters["deferred_why"] = why

    def _write(self, conn: psycopg.Connection, trigger: run.Trigger, request: Any,
               outcome: run.Observation | run.Failed, cancels: dict[str, str]) -> None:
        at = self._clock.now()
        with translated():
            conn.rollback()
            plan = run.plan(trigger=trigger, outcome=outcome, at=at, request=request, cancels=cancels,
                            halt=account_repo.flag(conn, Flag.RECONCILE_HALT.value),
                            last=account_repo.last_completed_report(conn),
                            halt_on_difference=self.settings.halt_on_difference)
            with conn.cursor() as cur:
                if plan.baseline is not None:
                    account_repo.insert_baseline(cur, plan.baseline, at)
                report_id = account_repo.insert_report(cur, at=at, trigger=trigger, ok=plan.ok, found=plan.found,
                                                       halted=plan.halted, error=plan.error)
                for action in plan.actions(report_id):
                    _carry_out(cur, at, action)
            conn.commit()
        if plan.error is None:
            self.counters["reconciliations"] += 1
            self.counters["differences"] += 0 if plan.ok else 1
            log.log(logging.INFO if plan.ok else logging.ERROR, "%s reconciliation, report %d: %s", trigger,
                    report_id, plan.summary)
        self.counters.update(last_ok=plan.ok, last_report=report_id)

    def _exchange_error(self, what: str, exc: ExchangeError) -> None:
        log.warning("%s failed: %s", what, exc)
        self.counters["errors"] += 1
        self.counters["last_error"] = f"{what}: {exc}"[:300]


def _carry_out(cur: psycopg.Cursor[Any], at: datetime, action: run.Action) -> None:
    match action:
        case run.SetFlag():
            set_flag(cur, action.name, action.value, BY)
        case run.ClearRequest():
            account_repo.clear_request(cur, action.request, by=BY)
        case run.RecordEvent():
            account_repo.record_event(cur, at=at, kind=action.kind, detail=action.detail)
        case run.RaiseAlert():
            alerts.enqueue(cur, kind=run.ALERT_KIND, level=action.level, text=action.text)
        case _:
            assert_never(action)


# ---- the exchange: answers, and the errors that are answers too ------------------------------------


def _open_orders(client: UpbitClient) -> tuple[ExchangeOrder, ...]:
    found: list[ExchangeOrder] = []
    for page in itertools.count(1):
        batch = client.open_orders(states=("wait", "watch"), page=page, limit=OPEN_PAGE)
        found += [ExchangeOrder.from_order(o) for o in batch]
        if len(batch) < OPEN_PAGE:
            break
    return tuple(found)


def _lookup(client: UpbitClient, attempt: OurOrder) -> ExchangeOrder | None:
    try:  # by uuid, else by identifier
        return ExchangeOrder.from_order(client.get_order(uuid=attempt.uuid, identifier=attempt.identifier))
    except OrderNotFound:
        return None


def _ticker(client: UpbitClient, coin: str) -> Decimal | None:
    try:
        tickers = client.tickers([f"{QUOTE}-{coin}"])
    except ExchangeError as exc:
        log.info("no ticker for %s-%s (%s): valuing at avg_buy_price", QUOTE, coin, exc)
        return None
    return tickers[0].trade_price if tickers else None


def _cancel(client: UpbitClient, order: ExchangeOrder) -> str:
    try:
        client.cancel_order(uuid=order.uuid)
    except ExchangeError as exc:
        log.warning("could not cancel unknown open order %s: %s", order.uuid, exc)
        return f"cancel failed: {exc}"
    log.warning("cancelled unknown open order %s", order.text())
    return "cancelled"
